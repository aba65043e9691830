import json

import pandas as pd
import pytest

from ml_api import preprocess
from ml_api.composition import build_scoring
from ml_api.core.model.artifact import load_artifact
from ml_api.core.protocols.v1 import V1Protocol
from ml_api.settings import Settings
from ml_api.train import ESTIMATORS, TrainingOptions, train
from ml_api.training_data import infer_task


def test_penguins_metrics_are_good_and_reproducible(tmp_path):
    options = TrainingOptions(preprocess.PENGUINS_CSV, "species", drop=preprocess.PENGUINS_DROP)
    kw = dict(model_root=tmp_path, name="penguins", processed_dir=tmp_path / "processed")
    a = train(options, **kw)
    b = train(options, **kw)
    assert a.metrics == b.metrics
    assert a.metrics["accuracy"] >= 0.95 and a.metrics["f1_macro"] >= 0.95
    assert a.metadata["training"]["rows"] == 344
    train_csv = pd.read_csv(tmp_path / "processed" / "train.csv")
    test_csv = pd.read_csv(tmp_path / "processed" / "test.csv")
    assert len(train_csv) + len(test_csv) == 344
    assert "year" not in train_csv.columns and "species" in train_csv.columns


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_each_estimator_trains_and_serves(tmp_path, estimator):
    result = train(
        TrainingOptions(
            preprocess.PENGUINS_CSV, "species", drop=preprocess.PENGUINS_DROP, estimator=estimator
        ),
        model_root=tmp_path,
        name="p",
    )
    assert result.metrics["accuracy"] >= 0.9
    service = build_scoring(Settings(model_root=tmp_path, model_name="p"))
    body = V1Protocol(service).predict_instances([["Biscoe", 50.0, 15.0, 220.0, 5500.0, "male"]])
    assert body["prediction"] == ["Gentoo"]


def test_regression_on_real_data(tmp_path, diabetes_csv):
    result = train(TrainingOptions(diabetes_csv, "target"), model_root=tmp_path, name="diabetes")
    assert result.metadata["task"] == "regression"
    assert set(result.metrics) == {"r2", "mae", "rmse"}
    assert 0.3 < result.metrics["r2"] < 0.7  # the diabetes data's known ceiling for linear models
    card = json.loads((result.path / "metadata.json").read_text())
    assert card["classes"] is None
    service = build_scoring(Settings(model_root=tmp_path, model_name="diabetes"))
    frame = pd.read_csv(diabetes_csv).drop(columns="target").head(3)
    body = V1Protocol(service).predict_instances(frame.to_dict("records"))
    assert "probabilities" not in body
    assert all(isinstance(v, float) for v in body["prediction"])


def test_regression_with_forest(tmp_path, diabetes_csv):
    result = train(
        TrainingOptions(diabetes_csv, "target", estimator="hist_gradient_boosting"),
        model_root=tmp_path,
        name="d",
    )
    assert result.metrics["r2"] > 0.2
    assert load_artifact(tmp_path, "d").metadata["estimator_class"] == (
        "HistGradientBoostingRegressor"
    )


def test_task_inference():
    assert infer_task(pd.Series(["a", "b"])) == "classification"
    assert infer_task(pd.Series([0, 1, 1, 0])) == "classification"
    assert infer_task(pd.Series([0.5, 1.25, 3.0])) == "regression"
    assert infer_task(pd.Series(range(100))) == "regression"


def test_task_override(tmp_path, diabetes_csv):
    frame = pd.read_csv(diabetes_csv)
    frame["target"] = (frame["target"] > 140).astype(int)
    path = tmp_path / "d.csv"
    frame.to_csv(path, index=False)
    result = train(
        TrainingOptions(path, "target", task="regression"), model_root=tmp_path, name="d"
    )
    assert result.metadata["task"] == "regression"


def test_unknown_target_and_estimator(tmp_path):
    with pytest.raises(KeyError, match="nope"):
        train(TrainingOptions(preprocess.PENGUINS_CSV, "nope"), model_root=tmp_path, name="p")
    with pytest.raises(ValueError, match="unknown estimator"):
        train(
            TrainingOptions(preprocess.PENGUINS_CSV, "species", estimator="svm"),
            model_root=tmp_path,
            name="p",
        )


@pytest.mark.parametrize("runtime", ["sklearn", "auto"])
@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_served_labels_equal_the_pipelines_own_predict(
    tmp_path, estimator, runtime, penguins_frame
):
    """The predictor takes shortcuts (one transform; labels from probabilities for forests and
    boosting), or runs the ONNX form: the labels must still be exactly the pipeline's predict(),
    the probabilities exactly its predict_proba() (within the ONNX gate's 1e-5 under ONNX)."""
    train(
        TrainingOptions(
            preprocess.PENGUINS_CSV, "species", drop=preprocess.PENGUINS_DROP, estimator=estimator
        ),
        model_root=tmp_path,
        name="p",
    )
    service = build_scoring(
        Settings(model_root=tmp_path, model_name="p", batching=False, runtime=runtime)
    )
    # auto serves ONNX wherever the version passed the gate (HistGradientBoosting does not)
    passed = json.loads((tmp_path / "p" / "1" / "metadata.json").read_text())["onnx"]["passed"]
    assert service.predictor.runtime == (
        "onnxruntime" if runtime == "auto" and passed else "scikit-learn"
    )
    names = list(service.schema.names)
    raw = penguins_frame[names].astype(object)
    rows = raw.where(raw.notna(), None).values.tolist()
    frame = service.schema.coerce_training_frame(penguins_frame[names])
    pipeline = service.artifact.model
    body = V1Protocol(service).predict_instances(rows)
    assert body["prediction"] == pipeline.predict(frame).tolist()
    proba = pipeline.predict_proba(frame)
    tol = 0 if service.predictor.runtime == "scikit-learn" else 1e-5
    for got, want in zip(body["probabilities"], proba, strict=True):
        assert list(got.values()) == pytest.approx(want.tolist(), rel=0, abs=tol)


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_all_numeric_models_take_a_matrix(tmp_path, diabetes_csv, estimator):
    import warnings

    import numpy as np

    frame = pd.read_csv(diabetes_csv)
    frame["target"] = (frame["target"] > 140).astype(int)  # a classifier too
    path = tmp_path / "d.csv"
    frame.to_csv(path, index=False)
    result = train(
        TrainingOptions(path, "target", estimator=estimator), model_root=tmp_path, name="d"
    )
    assert result.metadata["input"] == "array"
    settings = Settings(model_root=tmp_path, model_name="d", runtime="sklearn")
    service = build_scoring(settings)
    X = frame.drop(columns="target")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. "X does not have valid feature names"
        body = V1Protocol(service).predict_instances(X.head(50).to_dict("records"))
    assert body["prediction"] == service.artifact.model.predict(X.head(50).to_numpy()).tolist()
    proba = service.artifact.model.predict_proba(X.head(50).to_numpy())
    got = np.array([list(p.values()) for p in body["probabilities"]])
    # equal to the last bits only: a C-ordered matrix may take another BLAS path than pandas'
    assert np.allclose(got, proba, rtol=1e-12, atol=1e-15)


def test_mixed_models_keep_the_frame(model_root):
    import json

    card = json.loads((model_root / "penguins" / "1" / "metadata.json").read_text())
    assert card["input"] == "frame"
