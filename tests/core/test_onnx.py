"""The ONNX form of a model: conversion, the acceptance gate, the artifact file, the runtime choice.

Models are fitted in tmp_path; no model file is committed.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin

from ml_api import onnx_export, preprocess
from ml_api import train as train_module
from ml_api.composition import build, build_scoring
from ml_api.core.model.artifact import load_artifact
from ml_api.core.model.integrity import ArtifactError, sha256_file
from ml_api.core.model.validation import Validator
from ml_api.core.protocols.v1 import V1Protocol, model_metadata
from ml_api.core.runtimes.onnx_runtime import OnnxSession
from ml_api.core.runtimes.registry import choose_runtime, load_predictor
from ml_api.settings import Settings
from ml_api.train import TrainingOptions, train


def _penguins(root, name="p", estimator="linear"):
    return train(
        TrainingOptions(
            preprocess.PENGUINS_CSV, "species", drop=preprocess.PENGUINS_DROP, estimator=estimator
        ),
        model_root=root,
        name=name,
    )


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """A penguins logistic regression, trained once with its ONNX form."""
    root = tmp_path_factory.mktemp("onnx-models")
    _penguins(root)
    return root


def test_the_default_pipeline_converts_and_passes_on_every_row(converted):
    card = json.loads((converted / "p" / "1" / "metadata.json").read_text())
    section = card["onnx"]
    assert section["passed"] is True and section["reason"] is None
    assert card["runtime"] == "onnxruntime"
    gate = section["gate"]
    assert gate["rows"] == card["training"]["rows"] == 344  # every row, not the held-out part
    assert gate["labels_identical"] is True
    assert 0 < gate["max_abs_diff"] <= onnx_export.TOLERANCE
    onnx_file = converted / "p" / "1" / "model.onnx"
    assert section["file"] == {
        "name": "model.onnx",
        "sha256": sha256_file(onnx_file),
        "bytes": onnx_file.stat().st_size,
    }
    assert {"onnx", "onnxruntime", "skl2onnx"} <= set(section["versions"])


def test_missing_categories_go_through_onnx_as_empty_strings(converted):
    """The penguins data has missing `sex`: the converted imputer fills them like scikit-learn."""
    artifact = load_artifact(converted, "p")
    frame = pd.read_csv(preprocess.PENGUINS_CSV)
    X = artifact.schema.coerce_training_frame(frame[list(artifact.schema.names)])
    missing = X[X["sex"].isna()]
    assert len(missing) > 0
    session = OnnxSession(
        artifact.forms["onnx"], artifact.schema, array_input=False, classes=artifact.classes
    )
    labels, proba = session.run(session.feed_from(missing))
    assert labels.tolist() == artifact.model.predict(missing).tolist()
    assert np.abs(proba - artifact.model.predict_proba(missing)).max() <= 1e-5
    assert proba.shape == (len(missing), 3) and proba.dtype == np.float32


class FirstClass(ClassifierMixin, BaseEstimator):
    """A classifier skl2onnx has no converter for."""

    def fit(self, X, y):
        self.classes_ = np.unique(y)
        return self

    def predict_proba(self, X):
        proba = np.zeros((len(X), len(self.classes_)))
        proba[:, 0] = 1.0
        return proba

    def predict(self, X):
        return self.classes_[np.zeros(len(X), dtype=int)]


def test_a_model_the_converter_cannot_handle_falls_back_with_the_reason(tmp_path, monkeypatch):
    monkeypatch.setattr(train_module, "make_estimator", lambda *a: (FirstClass(), False))
    result = _penguins(tmp_path)
    section = result.metadata["onnx"]
    assert section["passed"] is False and section["gate"] is None
    assert section["reason"] == (
        "skl2onnx has no converter for FirstClass (step 'model', class "
        "tests.core.test_onnx.FirstClass)"
    )
    assert "\n" not in section["reason"]
    assert result.metadata["runtime"] == "scikit-learn"
    assert not (result.path / "model.onnx").exists()
    card = json.loads((result.path / "metadata.json").read_text())
    assert card["onnx"]["reason"] == section["reason"]
    service = build_scoring(Settings(model_root=tmp_path, model_name="p"))
    assert service.predictor.runtime == "scikit-learn"
    assert model_metadata(service)["onnx"]["reason"] == section["reason"]


def test_a_model_whose_onnx_output_disagrees_falls_back(tmp_path, monkeypatch):
    real_run = OnnxSession.run

    def off_on_row_7(self, feed):
        labels, proba = real_run(self, feed)
        proba = proba.copy()
        proba[7, 1] += 3e-4
        return labels, proba

    monkeypatch.setattr(OnnxSession, "run", off_on_row_7)
    result = _penguins(tmp_path)
    section = result.metadata["onnx"]
    assert section["passed"] is False
    assert section["gate"]["worst_row"] == 7
    assert section["gate"]["max_abs_diff"] == pytest.approx(3e-4, rel=1e-2)
    assert "row 7, probability of class 'Chinstrap'" in section["reason"]
    assert "the gate allows 1e-05 absolute" in section["reason"]
    assert result.metadata["runtime"] == "scikit-learn"
    assert not (result.path / "model.onnx").exists()


def test_a_label_that_differs_fails_the_gate_whatever_the_probabilities(tmp_path, monkeypatch):
    real_run = OnnxSession.run

    def swap_row_3(self, feed):
        labels, proba = real_run(self, feed)
        labels = labels.copy()
        labels[3] = "Gentoo" if labels[3] != "Gentoo" else "Adelie"
        return labels, proba

    monkeypatch.setattr(OnnxSession, "run", swap_row_3)
    section = _penguins(tmp_path).metadata["onnx"]
    assert section["passed"] is False and section["gate"]["labels_identical"] is False
    assert section["reason"].startswith("labels differ on 1 of 344 rows; first row 3:")


def test_regression_outputs_beyond_the_tolerance_fall_back(tmp_path, diabetes_csv):
    """A real case, no patching: float32 cannot hold the diabetes target (25 to 346) to 1e-5."""
    result = train(TrainingOptions(diabetes_csv, "target"), model_root=tmp_path, name="d")
    section = result.metadata["onnx"]
    assert result.metadata["task"] == "regression"
    assert section["passed"] is False
    assert section["gate"]["max_abs_diff"] > onnx_export.TOLERANCE
    assert f"row {section['gate']['worst_row']}, prediction: scikit-learn " in section["reason"]


def test_an_all_numeric_classifier_runs_on_one_matrix_input(tmp_path, diabetes_csv):
    frame = pd.read_csv(diabetes_csv)
    frame["target"] = (frame["target"] > 140).astype(int)
    path = tmp_path / "c.csv"
    frame.to_csv(path, index=False)
    result = train(
        TrainingOptions(path, "target", estimator="random_forest"), model_root=tmp_path, name="c"
    )
    assert result.metadata["input"] == "array" and result.metadata["onnx"]["passed"]
    service = build_scoring(Settings(model_root=tmp_path, model_name="c"))
    assert service.predictor.runtime == "onnxruntime"
    rows = frame.drop(columns="target").head(20).to_dict("records")
    body = V1Protocol(service).predict_instances(rows)
    expected = service.artifact.model.predict(frame.drop(columns="target").head(20).to_numpy())
    assert body["prediction"] == expected.tolist()  # integer labels stay integers
    assert all(type(v) is int for v in body["prediction"])
    assert list(body["probabilities"][0]) == ["0", "1"]


def test_a_tampered_onnx_file_is_refused_at_load(tmp_path):
    _penguins(tmp_path)
    onnx_file = tmp_path / "p" / "1" / "model.onnx"
    with open(onnx_file, "ab") as fh:
        fh.write(b"\0")
    for runtime in ("auto", "sklearn", "onnx"):
        with pytest.raises(ArtifactError) as info:
            build_scoring(Settings(model_root=tmp_path, model_name="p", runtime=runtime))
        message = str(info.value)
        assert "\n" not in message
        assert str(onnx_file.resolve()) in message and "does not match its card" in message


def test_a_missing_onnx_file_is_refused_at_load(tmp_path):
    _penguins(tmp_path)
    (tmp_path / "p" / "1" / "model.onnx").unlink()
    with pytest.raises(ArtifactError, match=r"ONNX file missing: .*model\.onnx$"):
        load_artifact(tmp_path, "p")


def _as_old_artifact(src, dst):
    """A copy of a version as ml-api wrote it before models were converted (no ONNX at all)."""
    shutil.copytree(src, dst)
    version = dst / "p" / "1"
    (version / "model.onnx").unlink()
    card = json.loads((version / "metadata.json").read_text())
    del card["onnx"], card["runtime"]
    (version / "metadata.json").write_text(json.dumps(card))


def test_runtime_setting_choices(converted, tmp_path):
    artifact = load_artifact(converted, "p")
    assert choose_runtime(artifact, "auto") == "onnxruntime"
    assert choose_runtime(artifact, "onnx") == "onnxruntime"
    assert choose_runtime(artifact, "sklearn") == "scikit-learn"
    assert load_predictor(artifact, "sklearn").runtime == "scikit-learn"
    assert load_predictor(artifact, "onnx").runtime == "onnxruntime"
    with pytest.raises(ValueError, match="unknown runtime setting"):
        choose_runtime(artifact, "tensorrt")
    with pytest.raises(ValueError):
        Settings(runtime="tensorrt")

    _as_old_artifact(converted, tmp_path / "old")
    old = load_artifact(tmp_path / "old", "p")
    assert old.forms == {}
    assert choose_runtime(old, "auto") == "scikit-learn"  # old artifacts keep serving
    with pytest.raises(ArtifactError) as info:
        build_scoring(Settings(model_root=tmp_path / "old", model_name="p", runtime="onnx"))
    message = str(info.value)
    assert "\n" not in message and message.startswith("ML_API_RUNTIME=onnx but model ")
    assert str((tmp_path / "old" / "p" / "1").resolve()) in message
    assert "saved without an ONNX form" in message


def test_runtime_setting_is_read_from_the_environment(monkeypatch):
    monkeypatch.setenv("ML_API_RUNTIME", "sklearn")
    assert Settings().runtime == "sklearn"
    monkeypatch.delenv("ML_API_RUNTIME")
    assert Settings().runtime == "auto"


def test_metadata_and_metrics_name_the_runtime(converted):
    from ml_api.core import metrics

    for setting, name in (("sklearn", "scikit-learn"), ("onnx", "onnxruntime")):
        settings = Settings(model_root=converted, model_name="p", runtime=setting, batching=False)
        service = build_scoring(settings)
        meta = model_metadata(service)
        assert meta["runtime"] == name
        assert meta["onnx"]["passed"] is True and meta["onnx"]["file"]["name"] == "model.onnx"
        app = build(settings, service=service)
        assert app.v2.model_metadata("p")["platform"] == name
        V1Protocol(service).predict_instances([["Biscoe", 50.0, 15.0, 220.0, 5500.0, "male"]])
        labels = {"model_name": "p", "model_version": "1", "runtime": name}
        for family in (metrics.PREDICTION_DURATION, metrics.REQUEST_INSTANCES):
            sample = family.collect()[0].samples
            counts = [s for s in sample if s.name.endswith("_count") and s.labels == labels]
            assert counts and counts[0].value >= 1


def test_onnx_probabilities_come_in_the_cards_class_order(converted):
    artifact = load_artifact(converted, "p")
    predictor = load_predictor(artifact, "onnx")
    rows = [["Biscoe", 50.0, 15.0, 220.0, 5500.0, None]] * 3
    columns = Validator(artifact.schema).validate_columns(rows)
    result = predictor.predict(columns)
    assert result.classes == ("Adelie", "Chinstrap", "Gentoo")
    assert result.probabilities.shape == (3, 3) and result.probabilities.dtype == np.float64
    assert result.labels.tolist() == ["Gentoo"] * 3


def test_values_onnx_runtime_refuses_are_a_422(converted, monkeypatch):
    from onnxruntime.capi.onnxruntime_pybind11_state import InvalidArgument

    from ml_api.core.errors import InvalidInput

    artifact = load_artifact(converted, "p")
    predictor = load_predictor(artifact, "onnx")

    def refuse(self, feed, rows=None):
        raise InvalidArgument("[ONNXRuntimeError] : 2 : INVALID_ARGUMENT : bad input\nmore")

    monkeypatch.setattr(OnnxSession, "run", refuse)
    columns = Validator(artifact.schema).validate_columns(
        [["Biscoe", 50.0, 15.0, 220.0, 5500.0, None]]
    )
    with pytest.raises(InvalidInput, match=r"could not use these values: .*bad input$"):
        predictor.predict(columns)


def test_numbers_beyond_float32_are_predicted_by_scikit_learn(converted):
    """ONNX Runtime takes float32: an instance with 1e39 gets scikit-learn's answer, not inf/NaN;
    the other instances of its batch keep ONNX Runtime's (the fallback is per row)."""
    artifact = load_artifact(converted, "p")
    onnx, sklearn = load_predictor(artifact, "onnx"), load_predictor(artifact, "sklearn")
    rows = [["Biscoe", 50.0, 15.0, 220.0, 1e39, "male"], ["Dream", 46.5, 17.9, 192.0, 3500.0, None]]
    validate = Validator(artifact.schema).validate_columns
    got = onnx.predict(validate(rows))
    wide, other = sklearn.predict(validate(rows[:1])), onnx.predict(validate(rows[1:]))
    assert got.labels.tolist() == [wide.labels[0], other.labels[0]]
    np.testing.assert_array_equal(got.probabilities[0], wide.probabilities[0])  # exactly
    np.testing.assert_array_equal(got.probabilities[1], other.probabilities[0])
    assert np.isfinite(got.probabilities).all()


def test_loading_onnx_runtime_writes_nothing_and_prints_nothing(converted, tmp_path):
    """ONNX Runtime's telemetry would write a device id under $XDG_CACHE_HOME when imported (and
    print a non-JSON warning on a read-only root); the runtime turns it off before the import."""
    import os
    import subprocess
    import sys

    code = (
        "from pathlib import Path\n"
        "from ml_api.core.model.artifact import load_artifact\n"
        "from ml_api.core.runtimes.registry import load_predictor\n"
        f"load_predictor(load_artifact(Path({str(converted)!r}), 'p'), 'onnx')\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "ORT_DISABLE_TELEMETRY"}
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "" and proc.stdout == ""
    assert not (tmp_path / "cache").exists()


MISSING_LIKE = [None, float("nan"), np.nan, np.float64("nan"), pd.NA, pd.NaT, np.datetime64("NaT")]
PRESENT = ["Biscoe", "", "nan", "None", 0, 1.5, True]


@pytest.mark.parametrize("value", MISSING_LIKE + PRESENT, ids=repr)
def test_a_category_is_missing_exactly_where_pandas_says(converted, value):
    """The string inputs mark missing categories where ``pandas.isna`` does, alone and beside
    other values (the fast pass and its fallback for ``pd.NA``)."""
    artifact = load_artifact(converted, "p")
    session = OnnxSession(
        artifact.forms["onnx"], artifact.schema, array_input=False, classes=artifact.classes
    )
    names = list(artifact.schema.names)
    columns = [[value, "Dream", None] if n == "sex" else [1.0, 2.0, 3.0] for n in names]
    sex = session.feed_columns(columns)["sex"].ravel().tolist()
    assert sex[1:] == ["Dream", ""]
    assert sex[0] == ("" if pd.isna(value) else value)
