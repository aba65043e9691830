"""The runtime registry: every runtime declared in one place, one choice, the fallback there.

Uses the session's penguins model (its ONNX form passed the gate) and copies of it.
"""

from __future__ import annotations

import json
import shutil
import typing
from pathlib import Path

import numpy as np
import pytest

from ml_api.core.model.artifact import Artifact, load_artifact, save_artifact, served_forms
from ml_api.core.model.card import NewCard
from ml_api.core.model.validation import validate_columns
from ml_api.core.runtimes import registry
from ml_api.core.runtimes.onnx_runtime import OnnxPredictor
from ml_api.core.runtimes.predictor import (
    Capabilities,
    Declined,
    PredictionResult,
    Runtime,
)
from ml_api.core.runtimes.registry import FALLBACK, RUNTIMES, WithFallback, load_predictor
from ml_api.core.runtimes.scikit_learn import SklearnPredictor
from ml_api.settings import Settings
from tests.conftest import VALID_ROW

BEYOND_FLOAT32 = ["Biscoe", 50.0, 15.0, 220.0, 1e39, "male"]


@pytest.fixture(scope="module")
def artifact(model_root: Path) -> Artifact:
    return load_artifact(model_root, "penguins")


def test_every_runtime_declares_what_the_registry_reads():
    assert RUNTIMES[0] is FALLBACK is SklearnPredictor
    names = [cls.runtime for cls in RUNTIMES]
    settings = [cls.setting for cls in RUNTIMES]
    assert len(set(names)) == len(names) and len(set(settings)) == len(settings)
    for cls in RUNTIMES:
        assert issubclass(cls, Runtime)
        assert isinstance(cls.capabilities, Capabilities)
        assert isinstance(cls.capabilities.batches_across_requests, bool)
        assert cls.title
    assert FALLBACK.form is None and FALLBACK.capabilities.takes_every_batch
    assert OnnxPredictor.form == "onnx" and not OnnxPredictor.capabilities.takes_every_batch


def test_the_settings_accept_exactly_the_registered_runtimes():
    """ML_API_RUNTIME is validated before anything loads (settings sit below the core): its
    values are the registry's, so a runtime added there and not here fails this test."""
    allowed = typing.get_args(Settings.model_fields["runtime"].annotation)
    assert allowed == ("auto", *registry.RUNTIME_SETTINGS)


def test_the_onnx_runtime_declines_what_float32_cannot_hold_and_builds_no_other_runtime(artifact):
    onnx = OnnxPredictor(artifact)
    assert not hasattr(onnx, "_fallback")
    columns = validate_columns(artifact.schema, [BEYOND_FLOAT32, VALID_ROW])
    with pytest.raises(Declined, match="float32"):
        onnx.predict(columns)
    ok = onnx.predict(validate_columns(artifact.schema, [VALID_ROW]))
    assert ok.labels.shape == (1,)


def test_the_registry_composes_the_fallback_for_a_runtime_that_declines(artifact):
    predictor = load_predictor(artifact, "onnx")
    assert isinstance(predictor, WithFallback) and isinstance(predictor.primary, OnnxPredictor)
    assert predictor.runtime == "onnxruntime" and predictor.classes == predictor.primary.classes
    assert predictor.capabilities == Capabilities(True, True)
    columns = validate_columns(artifact.schema, [BEYOND_FLOAT32, VALID_ROW])
    got = predictor.predict(columns)
    want = SklearnPredictor(artifact).predict(columns)
    assert got.labels.tolist() == want.labels.tolist()
    np.testing.assert_array_equal(got.probabilities, want.probabilities)
    # a runtime that takes every batch is not wrapped
    assert type(load_predictor(artifact, "sklearn")) is SklearnPredictor


class _Refusing(Runtime):
    """A runtime that declines every batch, as a new runtime with a narrow input range would."""

    runtime = "refusing"
    setting = "refusing"
    title = "Refusing"
    capabilities = Capabilities(batches_across_requests=False, takes_every_batch=False)

    def __init__(self, artifact: Artifact) -> None:
        self.classes = ()

    @property
    def runtime_version(self) -> str:
        return "0"

    @property
    def is_classifier(self) -> bool:
        return True

    @property
    def has_probabilities(self) -> bool:
        return True

    def predict(self, columns):  # type: ignore[no-untyped-def]
        raise Declined("never")


def test_the_wrapper_answers_declined_batches_with_the_fallback(artifact):
    wrapped = WithFallback(_Refusing(artifact), artifact)
    assert wrapped.capabilities.batches_across_requests is False  # the stricter of the two
    columns = validate_columns(artifact.schema, [VALID_ROW, VALID_ROW])
    result = wrapped.predict(columns)
    want = SklearnPredictor(artifact).predict(columns)
    assert isinstance(result, PredictionResult)
    assert result.labels.tolist() == want.labels.tolist()
    np.testing.assert_array_equal(result.probabilities, want.probabilities)
    assert wrapped.runtime == "refusing" and wrapped.runtime_version == "0"


def test_an_unknown_card_runtime_is_refused_in_one_line(tmp_path, model_root):
    shutil.copytree(model_root / "penguins", tmp_path / "m")
    card_path = tmp_path / "m" / "1" / "metadata.json"
    card = json.loads(card_path.read_text())
    card["runtime"] = "tensorrt"
    card_path.write_text(json.dumps(card, indent=2) + "\n")
    artifact = load_artifact(tmp_path, "m")
    assert registry.choose_runtime(artifact) == "tensorrt"
    with pytest.raises(Exception, match=r"needs the runtime 'tensorrt', which is unknown$"):
        load_predictor(artifact)


def test_the_artifact_holds_its_forms_by_name(artifact):
    assert set(artifact.forms) == {"onnx"} == set(served_forms(artifact.metadata))
    assert (
        artifact.forms["onnx"][:2]
        and (artifact.path / "model.onnx").read_bytes() == (artifact.forms["onnx"])
    )


def test_a_plain_file_name_in_a_card_section_is_not_a_form():
    """An imported model's ``source`` names its original file as a string: not a served form."""
    card = {"source": {"format": "pickle", "file": "model.pkl", "sha256": "ab"}, "onnx": {}}
    assert served_forms(card) == []
    card["onnx"] = {"passed": True, "file": {"name": "model.onnx", "sha256": "cd", "bytes": 1}}
    assert served_forms(card) == ["onnx"]


def test_save_writes_each_form_and_its_card_entry_in_place(tmp_path, artifact):
    onnx = {k: v for k, v in artifact.metadata["onnx"].items() if k != "file"}
    new = NewCard(schema=artifact.schema, forms={"onnx": onnx}, runtime="onnxruntime")
    path = save_artifact(
        artifact.model,
        model_root=tmp_path,
        name="m",
        card=new,
        forms={"onnx": artifact.forms["onnx"]},
    )
    card = json.loads((path / "metadata.json").read_text())
    assert list(card)[-4:] == ["onnx", "runtime", "model_file", "versions"]  # section in place
    assert list(card["onnx"]) == ["passed", "reason", "gate", "versions", "file"]
    assert card["onnx"]["file"] == artifact.metadata["onnx"]["file"]
    assert load_artifact(tmp_path, "m").forms == artifact.forms
    with pytest.raises(ValueError, match="needs the card's 'other' section"):
        save_artifact(artifact.model, model_root=tmp_path, name="m", card=new, forms={"other": b""})
