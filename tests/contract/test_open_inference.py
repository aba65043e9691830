"""Open Inference Protocol (V2) conformance: every response against the spec's own schemas.

Runs through both adapters (the ``app`` fixture), so both frameworks are held to the protocol.
"""

import json

import pytest

from tests.contract.open_inference import PENGUIN, infer_request, spec_paths, validate


class V2Client:
    """``call(method, path, body) -> (status, json)`` on one app (the ``app`` fixture)."""

    def __init__(self, app):
        self.app = app

    def call(self, method, path, body=None, content_type="application/json"):
        data = json.dumps(body) if body is not None and not isinstance(body, str) else body
        if data is None:
            r = self.app.call(method, path)
        else:
            r = self.app.call(method, path, data.encode(), content_type if data else None)
        return r.status, r.json()


@pytest.fixture
def client(app):
    return V2Client(app)


def test_our_v2_paths_are_the_specs():
    ours = {
        "/v2/health/live",
        "/v2/health/ready",
        "/v2",
        "/v2/models/{MODEL_NAME}/versions/{MODEL_VERSION}",
        "/v2/models/{MODEL_NAME}/versions/{MODEL_VERSION}/ready",
        "/v2/models/{MODEL_NAME}/versions/{MODEL_VERSION}/infer",
    }
    assert ours == spec_paths()


def test_server_endpoints(client):
    status, body = client.call("GET", "/v2")
    assert status == 200
    validate(body, "metadata_server_response")
    assert body["name"] == "ml-api"
    for path in ("/v2/health/live", "/v2/health/ready"):
        assert client.call("GET", path)[0] == 200


@pytest.mark.parametrize("path", ["/v2/models/penguins", "/v2/models/penguins/versions/1"])
def test_model_metadata(client, path):
    status, body = client.call("GET", path)
    assert status == 200
    validate(body, "metadata_model_response")
    assert body["name"] == "penguins" and body["versions"] == ["1"]
    assert body["inputs"][0]["name"] == "island"
    assert {t["name"]: t["datatype"] for t in body["inputs"]}["sex"] == "BYTES"
    assert [t["name"] for t in body["outputs"]] == ["predict", "predict_proba"]
    assert client.call("GET", path + "/ready") == (200, {"name": "penguins", "ready": True})


@pytest.mark.parametrize(
    "path",
    [
        "/v2/models/nope",
        "/v2/models/penguins/versions/2",
        "/v2/models/nope/ready",
        "/v2/models/penguins/versions/0/ready",
    ],
)
def test_unknown_model_or_version_is_404(client, path):
    status, body = client.call("GET", path)
    assert status == 404
    validate(body, "metadata_model_error_response")


@pytest.mark.parametrize(
    "path", ["/v2/models/penguins/infer", "/v2/models/penguins/versions/1/infer"]
)
def test_infer(client, path):
    rows = [PENGUIN, ["Dream", 46.5, 17.9, 192.0, 3500.0, None]]
    status, body = client.call("POST", path, infer_request(rows, parameters={"x": 1}))
    assert status == 200, body
    validate(body, "inference_response")
    assert body["id"] == "req-1" and body["model_name"] == "penguins"
    label, proba = body["outputs"]
    assert label == {
        "name": "predict",
        "datatype": "BYTES",
        "shape": [2],
        "data": ["Gentoo", "Chinstrap"],
    }
    assert proba["shape"] == [2, 3] and len(proba["data"]) == 6
    assert abs(sum(proba["data"][:3]) - 1) < 1e-9


def test_infer_agrees_with_predict(client):
    rows = [PENGUIN, ["Torgersen", 39.1, 18.7, 181.0, 3750.0, "female"]]
    _, v2 = client.call("POST", "/v2/models/penguins/infer", infer_request(rows))
    _, simple = client.call("POST", "/predict", {"features": rows})
    assert v2["outputs"][0]["data"] == simple["prediction"]
    flat = [p[c] for p in simple["probabilities"] for c in ("Adelie", "Chinstrap", "Gentoo")]
    assert v2["outputs"][1]["data"] == pytest.approx(flat, rel=1e-12, abs=1e-15)


def test_requested_outputs_and_nested_data(client):
    req = infer_request([PENGUIN], outputs=[{"name": "predict_proba"}])
    req["inputs"][1] = {
        "name": "bill_length_mm",
        "datatype": "FP32",
        "shape": [1, 1],
        "data": [[50.0]],
    }
    status, body = client.call("POST", "/v2/models/penguins/infer", req)
    assert status == 200, body
    assert [o["name"] for o in body["outputs"]] == ["predict_proba"]
    del req["id"]
    status, body = client.call("POST", "/v2/models/penguins/infer", req)
    assert status == 200 and "id" not in body


def _bad(mutate):
    req = infer_request([PENGUIN])
    mutate(req)
    return req


BAD = {
    "not_json": "{",
    "not_object": [1],
    "no_inputs": {"id": "x"},
    "empty_inputs": {"inputs": []},
    "id_not_string": _bad(lambda r: r.update(id=5)),
    "shape_mismatch": _bad(lambda r: r["inputs"][1].update(shape=[2])),
    "bad_shape_type": _bad(lambda r: r["inputs"][1].update(shape="1")),
    "unknown_datatype": _bad(lambda r: r["inputs"][1].update(datatype="FP128")),
    "string_for_fp64": _bad(lambda r: r["inputs"][1].update(data=["50"])),
    "bool_for_fp64": _bad(lambda r: r["inputs"][1].update(data=[True])),
    "fp_for_bytes_feature": _bad(lambda r: r["inputs"][0].update(datatype="FP64", data=[1.0])),
    "missing_feature": _bad(lambda r: r["inputs"].pop(5)),
    "unknown_feature": _bad(
        lambda r: r["inputs"].append(
            {"name": "year", "datatype": "INT64", "shape": [1], "data": [2007]}
        )
    ),
    "unseen_category": _bad(lambda r: r["inputs"][0].update(data=["Atlantis"])),
    "null_not_nullable": _bad(lambda r: r["inputs"][0].update(data=[None])),
    "unknown_output": _bad(lambda r: r.update(outputs=[{"name": "logits"}])),
    "uneven_columns": _bad(lambda r: r["inputs"][1].update(shape=[2], data=[1.0, 2.0])),
    "duplicate_input": _bad(lambda r: r["inputs"].append(dict(r["inputs"][0]))),
    "one_matrix_for_mixed_model": {
        "inputs": [
            {"name": "input-0", "datatype": "FP64", "shape": [1, 6], "data": [1, 2, 3, 4, 5, 6]}
        ]
    },
    # the user's request from issue 15: BYTES, since the model takes strings too
    "one_bytes_matrix_for_mixed_model": {
        "inputs": [
            {
                "name": "input-0",
                "datatype": "BYTES",
                "shape": [1, 6],
                "data": [["Biscoe", 50.0, 15.0, 220.0, 5500.0, "male"]],
            }
        ]
    },
    "one_row_named_after_a_feature": {
        "inputs": [
            {
                "name": "island",
                "datatype": "BYTES",
                "shape": [1, 6],
                "data": ["Biscoe", 50.0, 15.0, 220.0, 5500.0, "male"],
            }
        ]
    },
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_inference_requests_are_400(client, name):
    status, body = client.call("POST", "/v2/models/penguins/infer", BAD[name])
    assert status == 400, body
    validate(body, "inference_error_response")
    assert isinstance(body["error"], str) and body["error"]
    if "for_mixed_model" in name or name == "one_row_named_after_a_feature":
        assert "takes one tensor per feature" in body["error"], body
        assert "island (BYTES), bill_length_mm (FP64)" in body["error"], body


def test_infer_unknown_model_404(client):
    status, body = client.call("POST", "/v2/models/other/infer", infer_request([PENGUIN]))
    assert status == 404
    validate(body, "inference_error_response")


def test_infer_over_instance_cap_is_413(client):
    status, body = client.call("POST", "/v2/models/penguins/infer", infer_request([PENGUIN] * 51))
    assert status == 413 and body["error"]
