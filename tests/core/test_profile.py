"""The reference profile: bins and shares from training data, stored and verified with the artifact,
and the drift score (PSI) computed against it."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ml_api import preprocess
from ml_api.core.model.artifact import ArtifactError, load_artifact
from ml_api.core.model.profile import (
    EPSILON,
    MAX_CATEGORIES,
    MISSING,
    NUMERIC_BINS,
    OTHER,
    PREDICTION,
    PROFILE_FILE,
    FeatureProfile,
    Profile,
    ProfileError,
    build_profile,
    load_profile,
    psi,
)
from ml_api.core.model.schema import Feature, FeatureKind, FeatureSchema


def test_training_stores_a_verified_profile(model_root: Path, penguins_frame: pd.DataFrame) -> None:
    artifact = load_artifact(model_root, "penguins")
    listed = artifact.card.raw["files"][PROFILE_FILE]
    assert listed["bytes"] == (artifact.path / PROFILE_FILE).stat().st_size < 16_384
    profile = load_profile(artifact.card.raw, artifact.path)
    assert profile is not None and profile.source == "training"
    rows = len(penguins_frame.dropna(subset=["species"]))
    assert profile.rows == rows
    assert [f.name for f in profile.features] == list(artifact.schema.names)
    mass = profile.feature("body_mass_g")
    assert mass.kind == "numeric" and len(mass.bins) == NUMERIC_BINS + 1
    assert mass.bins[-1] == MISSING
    # deciles: each value bin holds about a tenth of the rows (ties move a few)
    assert all(0.05 < s < 0.15 for s in mass.shares[:-1]), mass.shares
    island = profile.feature("island")
    counts = penguins_frame["island"].value_counts(normalize=True)
    for name, share in zip(island.bins, island.shares, strict=True):
        if name not in (MISSING, OTHER):
            assert share == pytest.approx(counts[name])
    sex = profile.feature("sex")
    assert sex.shares[sex.missing_bin] == pytest.approx(
        penguins_frame["sex"].isna().sum() / rows, abs=1 / rows
    )
    assert profile.prediction is not None and profile.prediction.name == PREDICTION
    assert set(profile.prediction.categories) <= {"Adelie", "Chinstrap", "Gentoo"}
    for f in (*profile.features, profile.prediction):
        assert math.isclose(sum(f.shares), 1.0)


def test_a_modified_profile_is_refused(model_root: Path, tmp_path: Path) -> None:
    artifact = load_artifact(model_root, "penguins")
    copy = tmp_path / "v"
    copy.mkdir()
    data = json.loads((artifact.path / PROFILE_FILE).read_text())
    data["features"][0]["shares"][0] += 0.5
    (copy / PROFILE_FILE).write_text(json.dumps(data))
    with pytest.raises(ArtifactError, match="does not match its card"):
        load_profile(artifact.card.raw, copy)
    with pytest.raises(ArtifactError, match="missing"):
        load_profile(artifact.card.raw, tmp_path / "nowhere")


def test_a_card_without_profile_has_none(tmp_path: Path) -> None:
    assert load_profile({"files": {"charts/x.svg": {}}}, tmp_path) is None
    assert load_profile({}, tmp_path) is None


def test_an_unknown_format_is_a_profile_error() -> None:
    with pytest.raises(ProfileError, match="format 99"):
        Profile.from_bytes(b'{"format": 99}')
    with pytest.raises(ProfileError, match="unreadable"):
        Profile.from_bytes(b"not json")
    with pytest.raises(ProfileError, match="unreadable"):
        Profile.from_bytes(b'{"format": 1, "rows": 3, "source": "training", "features": [{}]}')


SCHEMA = FeatureSchema(
    (
        Feature("x", FeatureKind.NUMERIC, "float64", nullable=True, minimum=0.0, maximum=99.0),
        Feature("c", FeatureKind.CATEGORICAL, "object", nullable=True, categories=("a", "b")),
    )
)


def test_bins_are_assigned_as_the_profile_was_built() -> None:
    x = np.arange(100, dtype="float64")
    profile = build_profile(
        SCHEMA, {"x": x, "c": ["a"] * 70 + ["b"] * 30}, None, classifier=True, source="training"
    )
    fx = profile.feature("x")
    assert fx.edges == tuple(np.quantile(x, np.arange(1, 10) / 10))
    assert fx.shares == (0.1,) * 10 + (0.0,)
    # edges[i-1] <= x < edges[i]; open-ended ends; NaN in the missing bin
    got = fx.assign([-1e9, 0.0, fx.edges[0], 50.0, 1e9, float("nan")]).tolist()
    assert got == [0, 0, 1, 5, 9, 10]
    fc = profile.feature("c")
    assert fc.bins == ("a", "b", OTHER, MISSING) and fc.shares == (0.7, 0.3, 0.0, 0.0)
    assert fc.assign(["b", float("nan"), None, "a", "zz"]).tolist() == [1, 3, 3, 0, 2]
    assert fc.knows("a") and not fc.knows("zz") and not fc.knows(["unhashable"])
    assert fx.bin_text(0) == "< 9.9" and fx.bin_text(9) == ">= 89.1"
    assert fx.bin_text(10) == MISSING


def test_categories_past_the_limit_share_other_and_sizes_stay_bounded() -> None:
    many = [f"k{i:03d}" for i in range(200)]
    values = [c for i, c in enumerate(many) for _ in range(200 - i)]
    schema = FeatureSchema(
        (Feature("c", FeatureKind.CATEGORICAL, "object", nullable=False, categories=tuple(many)),)
    )
    profile = build_profile(schema, {"c": values}, None, classifier=True, source="import")
    fc = profile.feature("c")
    assert len(fc.bins) == MAX_CATEGORIES + 2 and fc.bins[-2:] == (OTHER, MISSING)
    assert fc.categories[0] == "k000"  # most frequent first
    assert fc.assign(["k199", "k000"]).tolist() == [MAX_CATEGORIES, 0]
    assert len(profile.to_bytes()) < 4_096
    assert Profile.from_bytes(profile.to_bytes()) == profile


def test_a_constant_feature_has_one_value_bin() -> None:
    profile = build_profile(
        SCHEMA, {"x": [5.0] * 10, "c": ["a"] * 10}, [1.0] * 10, classifier=False, source="import"
    )
    fx = profile.feature("x")
    assert fx.edges == () and fx.bins == ("00", MISSING) and fx.shares == (1.0, 0.0)
    assert fx.assign([5.0, -3.0]).tolist() == [0, 0]
    assert profile.prediction is not None and profile.prediction.kind == "numeric"


def test_numeric_codes_are_binned_by_code() -> None:
    schema = FeatureSchema((Feature.coded("zip", "int64", False, [2134, 2135]),))
    profile = build_profile(
        schema, {"zip": [2134] * 3 + [2135]}, None, classifier=True, source="training"
    )
    fz = profile.feature("zip")
    assert fz.categories == ("2134", "2135")
    assert fz.assign([2135, 2134.0, 2134]).tolist() == [1, 0, 0]
    assert FeatureProfile.from_dict(fz.to_dict()).assign([2135]).tolist() == [1]


def test_psi() -> None:
    q = np.full(10, 0.1)
    assert psi(q, q * 1000) == 0.0
    assert math.isnan(psi(q, np.zeros(10)))
    # every instance in one bin: (1-.1)ln(1/.1) + 9 (eps-.1)ln(eps/.1)
    one = np.zeros(10)
    one[3] = 50
    expected = 0.9 * math.log(10) + 9 * (EPSILON - 0.1) * math.log(EPSILON / 0.1)
    assert psi(q, one) == pytest.approx(expected)
    # a small shift is small, and the score is symmetric
    p = np.array([0.12, 0.08] + [0.1] * 8)
    assert psi(q, p) == pytest.approx(psi(p, q)) and psi(q, p) < 0.01


def test_penguins_shifted_body_mass_and_island_drift(
    model_root: Path, penguins_frame: pd.DataFrame
) -> None:
    """The live test's scenario in process: only the two changed features pass 0.25."""
    artifact = load_artifact(model_root, "penguins")
    profile = load_profile(artifact.card.raw, artifact.path)
    assert profile is not None
    rng = np.random.default_rng(7)
    frame = penguins_frame.dropna(subset=["species"]).drop(columns=list(preprocess.PENGUINS_DROP))
    sample = frame.iloc[rng.integers(0, len(frame), 2000)].reset_index(drop=True)
    shifted = sample.assign(body_mass_g=sample["body_mass_g"] * 1.3, island="Biscoe")
    for data, drifted in ((sample, set()), (shifted, {"body_mass_g", "island"})):
        scores = {f.name: psi(f.shares, f.counts(data[f.name].tolist())) for f in profile.features}
        assert {n for n, s in scores.items() if s > 0.25} == drifted, scores
        assert all(s < 0.1 for n, s in scores.items() if n not in drifted), scores


def test_one_value_at_a_time_bins_as_the_vectorised_pass(
    model_root: Path, penguins_frame: pd.DataFrame
) -> None:
    """``bin_of`` (small requests) and ``assign`` (large ones) agree on every value."""
    artifact = load_artifact(model_root, "penguins")
    profile = load_profile(artifact.card.raw, artifact.path)
    assert profile is not None
    rng = np.random.default_rng(3)
    for f in profile.features:
        if f.kind == "numeric":
            values = [*f.edges, *(e + d for e in f.edges for d in (-1e-9, 1e-9)), float("nan")]
            values += rng.normal(np.mean(f.edges), np.std(f.edges) * 3, 500).tolist()
        else:
            values = [*f.categories, "unknown", None, float("nan")]
        assert [f.bin_of(v) for v in values] == f.assign(values).tolist(), f.name
