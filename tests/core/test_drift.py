"""Drift counting: served instances counted into the profile's bins, written to the counters in
one flush, every series present from the start, and /metadata saying whether drift is measured."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import REGISTRY

from ml_api.composition import build_scoring
from ml_api.core.drift import SMALL_REQUEST, DriftCounter
from ml_api.core.model.profile import MISSING, OTHER, build_profile
from ml_api.core.model.schema import Feature, FeatureKind, FeatureSchema
from ml_api.core.protocols.v1 import model_metadata
from ml_api.settings import Settings
from tests.conftest import VALID_ROW

SCHEMA = FeatureSchema(
    (
        Feature("x", FeatureKind.NUMERIC, "float64", nullable=True, minimum=0.0, maximum=99.0),
        Feature("c", FeatureKind.CATEGORICAL, "object", nullable=True, categories=("a", "b")),
    )
)


def _value(model: tuple[str, str], feature: str, bin_: str) -> float | None:
    return REGISTRY.get_sample_value(
        "ml_api_feature_values_total",
        {"model_name": model[0], "model_version": model[1], "feature": feature, "bin": bin_},
    )


@pytest.fixture
def counter() -> tuple[DriftCounter, tuple[str, str]]:
    profile = build_profile(
        SCHEMA,
        {"x": np.arange(100.0), "c": ["a"] * 60 + ["b"] * 40},
        None,
        classifier=True,
        source="training",
    )
    model = (f"drift-{uuid.uuid4().hex[:8]}", "1")
    return DriftCounter(profile, SCHEMA, model), model


def test_every_series_exists_at_zero_with_its_reference_share(
    counter: tuple[DriftCounter, tuple[str, str]],
) -> None:
    _, model = counter
    for b in ("00", "09", MISSING):
        assert _value(model, "x", b) == 0.0
    assert _value(model, "c", "b") == 0.0
    ratio = REGISTRY.get_sample_value(
        "ml_api_feature_reference_ratio",
        {"model_name": model[0], "model_version": model[1], "feature": "c", "bin": "a"},
    )
    assert ratio == pytest.approx(0.6)


@pytest.mark.parametrize("repeat", [1, 10, 40])  # one instance, small and numpy paths
def test_counts_are_exact_once_per_request(
    counter: tuple[DriftCounter, tuple[str, str]], repeat: int
) -> None:
    drift, model = counter
    drift.observe([[1.0, 95.0, float("nan")] * repeat, ["a", "a", "b"] * repeat], 3 * repeat)
    drift.observe([[2.0], [float("nan")]], 1)
    assert _value(model, "x", "00") == 1.0 * repeat + 1
    assert _value(model, "x", "09") == 1.0 * repeat
    assert _value(model, "x", MISSING) == 1.0 * repeat
    assert (_value(model, "c", "a"), _value(model, "c", "b")) == (2.0 * repeat, 1.0 * repeat)
    assert _value(model, "c", MISSING) == 1.0
    assert _value(model, "c", OTHER) == 0.0
    assert drift.features == ["x", "c"]


def test_serving_counts_and_metadata_says_so(model_root: Path) -> None:
    settings = Settings(model_root=model_root, model_name="penguins")
    service = build_scoring(settings, monitored=True)
    assert sum(isinstance(o, DriftCounter) for o in service.observers) == 1
    meta = model_metadata(service)["drift"]
    assert meta["measured"] is True and meta["profile"]["source"] == "training"
    assert meta["profile"]["features"] == list(service.schema.names)
    before = _penguins("island", "Biscoe")
    service.predict_rows([VALID_ROW, VALID_ROW])
    assert _penguins("island", "Biscoe") == before + 2
    # batch scoring does not count; off by the setting
    assert build_scoring(settings).observers == ()
    off = build_scoring(Settings(model_root=model_root, drift=False), monitored=True)
    assert model_metadata(off)["drift"]["measured"] is False


def _penguins(feature: str, bin_: str) -> float:
    value = _value(("penguins", "1"), feature, bin_)
    assert value is not None
    return value


def test_a_version_without_profile_serves_and_says_drift_is_off(model_root: Path) -> None:
    from ml_api.core.model.artifact import load_artifact

    artifact = load_artifact(model_root, "penguins")
    card = dict(artifact.card.raw)
    card["files"] = {k: v for k, v in card["files"].items() if k != "profile.json"}
    from ml_api.core.model.card import ModelCard

    old = type(artifact)(artifact.model, ModelCard.from_dict(card), artifact.path, artifact.forms)
    service = build_scoring(Settings(model_root=model_root), artifact=old, monitored=True)
    assert service.observers == () and service.profile is None
    meta = model_metadata(service)["drift"]
    assert meta["measured"] is False and "no reference profile" in meta["note"]
    assert service.predict_rows([VALID_ROW]).labels.shape == (1,)


@settings(max_examples=60, deadline=None)
@given(
    numbers=st.lists(
        st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.none(), st.integers(-5, 120)),
        min_size=SMALL_REQUEST + 1,
        max_size=80,
    ),
    labels=st.lists(st.sampled_from(["a", "b", "zz", "", None, float("nan")]), min_size=80),
)
def test_large_requests_bin_as_each_value_alone(numbers: list[Any], labels: list[Any]) -> None:
    """The vectorised count of a large request (one float matrix, categories counted by distinct
    value) puts every instance in the bin it gets alone (``bin_of``, as a 1-instance request)."""
    profile = build_profile(
        SCHEMA,
        {"x": np.arange(100.0), "c": ["a"] * 60 + ["b"] * 40},
        None,
        classifier=True,
        source="training",
    )
    drift = DriftCounter(profile, SCHEMA, (f"prop-{uuid.uuid4().hex[:8]}", "1"))
    n = len(numbers)
    columns = [[np.nan if v is None else float(v) for v in numbers], labels[:n]]
    expected = np.zeros(len(drift._children), dtype=np.int64)
    for (j, f), off in drift._plan:
        for value in columns[j]:
            expected[off + f.bin_of(value)] += 1
    assert drift._count(columns).tolist() == expected.tolist()
