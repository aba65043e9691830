"""The typed model card: parsed once, unknown keys kept, the runtime named by the card."""

import json

import pytest

from ml_api.core.model.artifact import load_artifact
from ml_api.core.model.card import ModelCard
from ml_api.core.model.integrity import ArtifactError
from ml_api.core.model.schema import FeatureKind
from ml_api.core.protocols.v1 import model_metadata


def _card_json(model_root):
    return json.loads((model_root / "penguins" / "1" / "metadata.json").read_text())


def test_card_fields_come_from_metadata_json(model_root):
    raw = _card_json(model_root)
    card = ModelCard.from_dict(raw)
    assert (card.name, card.version) == ("penguins", "1")
    assert card.classes == ("Adelie", "Chinstrap", "Gentoo") and not card.integer_classes
    assert card.input == "frame" and card.task == "classification"
    assert card.model_file.sha256 == raw["model_file"]["sha256"]
    assert card.model_file.format == "joblib"
    # the default pipeline's ONNX form passed the gate at training (card "runtime": onnxruntime)
    assert card.runtime == raw["runtime"] == "onnxruntime"
    assert card.library_versions["scikit-learn"] == raw["versions"]["scikit-learn"]
    assert card.class_distribution == raw["training"]["class_distribution"]
    assert [f.kind for f in card.schema.features][:2] == [
        FeatureKind.CATEGORICAL,
        FeatureKind.NUMERIC,
    ]
    assert card.to_dict() == raw


def test_feature_kind_serializes_as_before(model_root):
    raw = _card_json(model_root)
    card = ModelCard.from_dict(raw)
    assert card.schema.to_list() == raw["features"]
    assert json.dumps(card.schema.to_list()) == json.dumps(raw["features"])


def test_unknown_keys_are_kept_and_served(tmp_path, model_root):
    import shutil

    from ml_api.composition import build_scoring
    from ml_api.core.codecs import dumps
    from ml_api.settings import Settings

    shutil.copytree(model_root / "penguins", tmp_path / "penguins")
    path = tmp_path / "penguins" / "1" / "metadata.json"
    raw = json.loads(path.read_text())
    raw["owner"] = "team-x"
    raw["training"]["note"] = "kept"
    path.write_text(json.dumps(raw))
    artifact = load_artifact(tmp_path, "penguins")
    assert artifact.card.raw["owner"] == "team-x" and artifact.metadata == raw
    served = model_metadata(build_scoring(Settings(model_root=tmp_path)))
    assert served["training"]["note"] == "kept"
    assert dumps(served["features"]) == dumps(raw["features"])


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"input": "tensor"}, "unknown input layout"),
        ({"model_file": {"name": "model.joblib"}}, "sha256"),
    ],
)
def test_malformed_cards_are_refused(tmp_path, model_root, change, match):
    import shutil

    shutil.copytree(model_root / "penguins", tmp_path / "penguins")
    path = tmp_path / "penguins" / "1" / "metadata.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **change}))
    with pytest.raises(ArtifactError, match=match):
        load_artifact(tmp_path, "penguins")


def test_an_unknown_runtime_is_refused(tmp_path, model_root):
    import shutil

    from ml_api.core.runtimes.registry import load_predictor

    shutil.copytree(model_root / "penguins", tmp_path / "penguins")
    path = tmp_path / "penguins" / "1" / "metadata.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "runtime": "tensorflow"}))
    artifact = load_artifact(tmp_path, "penguins")
    assert artifact.card.runtime == "tensorflow"
    with pytest.raises(ArtifactError, match="tensorflow"):
        load_predictor(artifact)
