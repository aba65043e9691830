"""The service at the core level: one neutral result, each protocol's encoding, by type."""

import json

import numpy as np
import pytest

from ml_api.composition import build
from ml_api.core.codecs import dumps
from ml_api.core.errors import InvalidInput, ModelNotReady
from ml_api.core.protocols.request import Request
from ml_api.core.protocols.v1 import V1Protocol, encode_v1, model_metadata
from ml_api.core.runtimes.predictor import PredictionResult
from ml_api.predict import encode_csv_columns
from ml_api.settings import Settings
from tests.conftest import VALID_NAMED, VALID_ROW


@pytest.fixture(scope="module")
def application(settings):
    return build(settings)


def test_predict_rows_is_the_neutral_result_every_protocol_encodes(application):
    service = application.service
    result = service.predict_rows([VALID_ROW, VALID_NAMED])
    assert isinstance(result, PredictionResult) and len(result) == 2
    assert result.probabilities is not None and result.probabilities.shape == (2, 3)
    v1 = V1Protocol(service).predict_instances([VALID_ROW, VALID_NAMED])
    assert dumps(v1) == dumps(encode_v1(result, service.model_ref))
    csv = encode_csv_columns(result)
    assert list(csv["prediction"]) == v1["prediction"]  # arrays: whole columns, vectorised
    assert list(csv["probability_Gentoo"]) == [p["Gentoo"] for p in v1["probabilities"]]


def test_v2_encodes_the_same_result(application):
    v2 = application.v2
    body = json.dumps(
        {
            "inputs": [
                {
                    "name": k,
                    "datatype": "BYTES" if isinstance(v, str) else "FP64",
                    "shape": [1],
                    "data": [v],
                }
                for k, v in VALID_NAMED.items()
            ]
        }
    ).encode()
    response = v2.infer(Request.of(body, {"Content-Type": "application/json"}), "penguins")
    v1 = V1Protocol(application.service).predict_instances([VALID_ROW])
    outputs = {o["name"]: o for o in response["outputs"]}
    assert outputs["predict"]["data"] == v1["prediction"]
    assert outputs["predict_proba"]["data"] == list(v1["probabilities"][0].values())
    # the runtime serving it: ONNX Runtime, since the default model's ONNX form passed the gate
    assert v2.model_metadata("penguins")["platform"] == application.service.predictor.runtime
    assert application.service.predictor.runtime == "onnxruntime"


def test_metadata_shows_the_card_and_the_limits(application, model_root):
    raw = json.loads((model_root / "penguins" / "1" / "metadata.json").read_text())
    card = model_metadata(application.service)
    for key in ("features", "classes", "metrics", "training", "model_file", "versions"):
        assert dumps(card[key]) == dumps(raw[key])
    assert card["estimator"] == raw["estimator_class"]
    assert card["limits"] == {
        "max_body_bytes": 65_536,
        "max_instances": 50,
        "request_timeout_seconds": 10.0,
        "out_of_range": "warn",
    }


def test_invalid_rows_never_reach_the_runtime(application, monkeypatch):
    def refuse(columns):
        raise AssertionError("the runtime was called")

    monkeypatch.setattr(application.service.predictor, "predict", refuse)
    with pytest.raises(InvalidInput, match="unknown category 'Atlantis'"):
        application.service.predict_rows([["Atlantis", *VALID_ROW[1:]]])


def test_draining_reaches_v2_readiness(model_root):
    application = build(Settings(model_root=model_root))
    assert application.v2.server_ready() == {"ready": True}
    application.service.start_draining()
    with pytest.raises(ModelNotReady):
        application.v2.server_ready()


def test_build_around_a_given_artifact(model_root):
    from ml_api.core.model.artifact import load_artifact

    artifact = load_artifact(model_root, "penguins")
    application = build(Settings(model_root=model_root, batching=False), artifact=artifact)
    assert application.service.artifact is artifact
    labels = application.service.predict_rows([VALID_ROW]).labels
    assert isinstance(labels, np.ndarray) and labels.tolist() == ["Gentoo"]
