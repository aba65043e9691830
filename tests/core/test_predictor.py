"""The predictor interface and the scikit-learn runtime: one neutral result, split per request."""

import numpy as np
import pytest

from ml_api.core.errors import InvalidInput
from ml_api.core.model.artifact import load_artifact
from ml_api.core.model.validation import validate_columns
from ml_api.core.protocols.v1 import encode_v1
from ml_api.core.runtimes.predictor import PredictionResult, Predictor
from ml_api.core.runtimes.registry import load_predictor
from ml_api.core.runtimes.scikit_learn import SklearnPredictor
from ml_api.train import TrainingOptions, train
from tests.conftest import VALID_ROW

ROWS = [VALID_ROW, ["Dream", 46.5, 17.9, 192.0, 3500.0, "female"], VALID_ROW]


@pytest.fixture(scope="module")
def artifact(model_root):
    return load_artifact(model_root, "penguins")


def test_the_sklearn_setting_picks_the_scikit_learn_runtime(artifact):
    assert load_predictor(artifact).runtime == "onnxruntime"  # auto: its ONNX form passed
    predictor = load_predictor(artifact, "sklearn")
    assert isinstance(predictor, SklearnPredictor)
    assert predictor.runtime == "scikit-learn" and predictor.runtime_version
    assert predictor.classes == ("Adelie", "Chinstrap", "Gentoo") and predictor.is_classifier
    _: Predictor = predictor  # the runtime satisfies the interface (checked by mypy)


def test_result_is_neutral_arrays(artifact):
    predictor = load_predictor(artifact)
    result = predictor.predict(validate_columns(artifact.schema, ROWS))
    assert isinstance(result.labels, np.ndarray) and result.labels.shape == (3,)
    assert result.probabilities is not None and result.probabilities.shape == (3, 3)
    np.testing.assert_allclose(result.probabilities.sum(axis=1), 1.0)
    assert list(result.labels) == list(artifact.model.predict(artifact.schema.frame(
        validate_columns(artifact.schema, ROWS))))  # fmt: skip
    assert result.class_keys == ("Adelie", "Chinstrap", "Gentoo") and len(result) == 3


def test_split_gives_each_request_its_rows(artifact):
    result = load_predictor(artifact).predict(validate_columns(artifact.schema, ROWS))
    first, second = result.split([1, 2])
    assert list(first.labels) == list(result.labels[:1])
    assert list(second.labels) == list(result.labels[1:])
    assert second.probabilities is not None and result.probabilities is not None
    np.testing.assert_array_equal(second.probabilities, result.probabilities[1:])
    assert result.split([3]) == [result]


def test_v1_encoding_of_the_result():
    result = PredictionResult(
        labels=np.array(["a", "b"], dtype=object),
        probabilities=np.array([[0.25, 0.75], [np.nan, 1.0]]),
        classes=("a", "b"),
    )
    body = encode_v1(result, {"name": "m", "version": "1"})
    assert body == {
        "prediction": ["a", "b"],
        "probabilities": [{"a": 0.25, "b": 0.75}, {"a": None, "b": 1.0}],
        "model": {"name": "m", "version": "1"},
    }
    regression = PredictionResult(labels=np.array([1.5, np.inf]), probabilities=None)
    assert encode_v1(regression, {"name": "m", "version": "1"})["prediction"] == [1.5, None]


def test_forest_labels_from_probabilities_match_predict(tmp_path):
    from ml_api import preprocess

    train(
        TrainingOptions(
            preprocess.PENGUINS_CSV,
            "species",
            drop=preprocess.PENGUINS_DROP,
            estimator="random_forest",
        ),
        model_root=tmp_path,
        name="rf",
    )
    artifact = load_artifact(tmp_path, "rf")
    predictor = load_predictor(artifact, "sklearn")
    assert predictor._labels_from_proba and predictor._transform is not None
    columns = validate_columns(artifact.schema, ROWS * 5)
    result = predictor.predict(columns)
    expected = artifact.model.predict(artifact.schema.frame(columns))
    assert list(result.labels) == list(expected)


def test_values_the_model_refuses_are_a_422(artifact, monkeypatch):
    predictor = load_predictor(artifact, "sklearn")

    def refuse(features):
        raise ValueError("Input contains NaN\nmore")

    monkeypatch.setattr(predictor, "_transform", refuse)
    with pytest.raises(InvalidInput, match=r"could not use these values: Input contains NaN$"):
        predictor.predict(validate_columns(artifact.schema, ROWS))


def test_class_keys_tell_bool_classes_from_int_ones():
    """(False, True) == (0, 1) in Python: the keys' cache must not hand one the other's keys."""
    from ml_api.core.runtimes.predictor import class_keys

    assert class_keys((0, 1)) == ("0", "1")
    assert class_keys((False, True)) == ("False", "True")
    assert class_keys((0.0, 1.0)) == ("0.0", "1.0")
