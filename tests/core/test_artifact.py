import json
from pathlib import Path

import pytest

from ml_api import preprocess
from ml_api.core.model.artifact import load_artifact
from ml_api.core.model.integrity import ArtifactError
from ml_api.core.model.versions import list_versions
from ml_api.train import TrainingOptions, train


def _train(root: Path, **kw):
    options = TrainingOptions(
        preprocess.PENGUINS_CSV, "species", drop=preprocess.PENGUINS_DROP, **kw
    )
    return train(options, model_root=root, name="penguins")


def test_card_has_the_documented_fields(model_root):
    card = json.loads((model_root / "penguins" / "1" / "metadata.json").read_text())
    for key in (
        "name",
        "version",
        "created_at",
        "task",
        "target",
        "features",
        "classes",
        "metrics",
        "training",
        "model_file",
        "versions",
    ):
        assert key in card, key
    assert [f["name"] for f in card["features"]] == [
        "island",
        "bill_length_mm",
        "bill_depth_mm",
        "flipper_length_mm",
        "body_mass_g",
        "sex",
    ]
    assert card["classes"] == ["Adelie", "Chinstrap", "Gentoo"]
    assert len(card["training"]["data_sha256"]) == 64
    assert len(card["model_file"]["sha256"]) == 64
    for lib in ("python", "scikit-learn", "numpy", "pandas"):
        assert card["versions"][lib]
    sex = next(f for f in card["features"] if f["name"] == "sex")
    assert sex["kind"] == "categorical" and sex["nullable"] is True
    assert sex["categories"] == ["female", "male"]
    island = next(f for f in card["features"] if f["name"] == "island")
    assert island["nullable"] is False


def test_newest_version_is_served_unless_pinned(tmp_path):
    _train(tmp_path)
    _train(tmp_path, estimator="random_forest")
    assert list_versions(tmp_path, "penguins") == [1, 2]
    assert load_artifact(tmp_path, "penguins").version == "2"
    assert load_artifact(tmp_path, "penguins", "1").version == "1"
    with pytest.raises(ArtifactError, match="available: 1, 2"):
        load_artifact(tmp_path, "penguins", "7")


def test_tampered_model_file_is_refused(tmp_path):
    path = _train(tmp_path).path
    model_file = path / "model.joblib"
    data = bytearray(model_file.read_bytes())
    data[-10] ^= 0xFF
    model_file.write_bytes(bytes(data))
    with pytest.raises(ArtifactError) as info:
        load_artifact(tmp_path, "penguins")
    assert str(model_file.resolve()) in str(info.value)
    assert "does not match" in str(info.value)


def test_missing_model_names_absolute_path(tmp_path):
    with pytest.raises(ArtifactError) as info:
        load_artifact(tmp_path / "nowhere", "penguins")
    assert str((tmp_path / "nowhere" / "penguins").resolve()) in str(info.value)
    assert "ml-api train" in str(info.value)


def test_missing_model_file_is_refused(tmp_path):
    path = _train(tmp_path).path
    (path / "model.joblib").unlink()
    with pytest.raises(ArtifactError, match="model file missing"):
        load_artifact(tmp_path, "penguins")


def test_sklearn_minor_mismatch_refused_unless_allowed(tmp_path):
    path = _train(tmp_path).path
    card_path = path / "metadata.json"
    card = json.loads(card_path.read_text())
    card["versions"]["scikit-learn"] = "0.99.0"
    card_path.write_text(json.dumps(card))
    with pytest.raises(ArtifactError, match=r"fitted with scikit-learn 0\.99\.0"):
        load_artifact(tmp_path, "penguins")
    assert load_artifact(tmp_path, "penguins", allow_version_mismatch=True).version == "1"


def test_corrupt_card_is_refused(tmp_path):
    path = _train(tmp_path).path
    (path / "metadata.json").write_text("{not json")
    with pytest.raises(ArtifactError, match="unreadable model card"):
        load_artifact(tmp_path, "penguins")


def test_skops_format_roundtrip(tmp_path, penguins_frame):
    result = _train(tmp_path, fmt="skops")
    assert (result.path / "model.skops").is_file()
    artifact = load_artifact(tmp_path, "penguins")
    names = list(artifact.schema.names)
    frame = artifact.schema.coerce_training_frame(penguins_frame[names].head(5))
    assert list(artifact.model.predict(frame)) == list(penguins_frame["species"].head(5))


@pytest.mark.parametrize(
    ("estimator", "node_type"),
    [
        ("random_forest", "sklearn.tree._tree.Tree"),
        (
            "hist_gradient_boosting",
            "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
        ),
    ],
)
def test_a_trained_skops_forest_records_its_tree_type_and_loads_by_it(
    tmp_path, estimator, node_type
):
    """Trees ml-api fitted itself are trusted by name in the card; nothing else is."""
    result = _train(tmp_path, fmt="skops", estimator=estimator)
    card = json.loads((result.path / "metadata.json").read_text())
    assert card["model_file"]["trusted_types"] == [node_type]
    load_artifact(tmp_path, "penguins")
    del card["model_file"]["trusted_types"]  # a card that does not list it: refused by name
    (result.path / "metadata.json").write_text(json.dumps(card))
    with pytest.raises(ArtifactError, match=f"does not list as trusted: {node_type}"):
        load_artifact(tmp_path, "penguins")


def test_bad_model_name_refused(tmp_path):
    with pytest.raises(ValueError, match="model name"):
        train(
            TrainingOptions(preprocess.PENGUINS_CSV, "species"), model_root=tmp_path, name="../evil"
        )
