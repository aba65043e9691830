"""Values outside the training range (``ML_API_OUT_OF_RANGE``): V1 and V2, Flask and Django alike.

Every test runs against both adapters (the parametrized ``app`` fixture) and asserts exact bodies,
so the two frameworks answer byte for byte the same. The penguins model was trained on flipper
lengths of 172 to 231 mm and body masses of 2700 to 6300 g.
"""

from __future__ import annotations

import json

import jsonschema
import pytest
from prometheus_client.parser import text_string_to_metric_families
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from ml_api.composition import build_scoring
from ml_api.core.codecs import dumps
from ml_api.core.protocols.v1 import V1Protocol
from tests.contract.open_inference import PENGUIN, infer_request, validate

INSIDE = ["Biscoe", 50.0, 15.0, 220.0, 5500.0, "male"]
LONG_FLIPPER = ["Biscoe", 50.0, 15.0, 900.0, 5500.0, "male"]  # flipper 900 > 231
TWO_OUTSIDE = ["Dream", 50.0, 15.0, 100.0, 90000, "female"]  # flipper 100 < 172, mass > 6300
V2_INFER = "/v2/models/penguins/infer"

FLIPPER_900 = {
    "instance": 1,
    "field": "flipper_length_mm",
    "problem": "900 is outside the training range 172 to 231",
}


def predict(app, rows) -> tuple[int, dict]:
    r = app.post("/predict", json.dumps({"features": rows}).encode())
    return r.status, r.json()


def counted(app, feature: str) -> float:
    """``ml_api_out_of_range_total`` for the penguins model and ``feature`` in ``/metrics``."""
    text = app.get("/metrics").body.decode()
    for family in text_string_to_metric_families(text):
        if family.name == "ml_api_out_of_range":
            for sample in family.samples:
                if sample.name.endswith("_total") and sample.labels["feature"] == feature:
                    assert sample.labels["model_name"] == "penguins"
                    assert sample.labels["model_version"] == "1"
                    return sample.value
    return 0.0


@pytest.fixture
def policy_app(app, app_around, service, settings):
    """``app``'s framework around a service whose settings say ``ML_API_OUT_OF_RANGE=policy``."""

    def build(policy: str):
        changed = settings.model_copy(update={"out_of_range": policy})
        return app_around(build_scoring(changed, artifact=service.artifact))

    return build


def test_inside_the_range_the_body_is_unchanged(app):
    r = app.post("/predict", json.dumps({"features": [INSIDE, INSIDE]}).encode())
    assert r.status == 200
    assert list(r.json()) == ["prediction", "probabilities", "model"]  # no warnings key
    r2 = app.post(V2_INFER, json.dumps(infer_request([INSIDE])).encode())
    assert "parameters" not in r2.json()


def test_warn_names_instance_feature_value_and_range(app):
    status, body = predict(app, [INSIDE, LONG_FLIPPER, TWO_OUTSIDE])
    assert status == 200
    assert len(body["prediction"]) == 3  # still answered
    assert list(body)[-1] == "warnings"  # additive, after the existing keys
    assert body["warnings"] == [
        FLIPPER_900,
        {
            "instance": 2,
            "field": "flipper_length_mm",
            "problem": "100 is outside the training range 172 to 231",
        },
        {
            "instance": 2,
            "field": "body_mass_g",
            "problem": "90000 is outside the training range 2700 to 6300",
        },
    ]
    document = app.get("/openapi.json").json()
    prediction = document["components"]["schemas"]["Prediction"]
    assert set(body) <= set(prediction["properties"])  # every key is documented
    resource = Resource(contents=document, specification=DRAFT202012)
    registry = Registry().with_resource("doc", resource)
    jsonschema.Draft202012Validator(
        {"$ref": "doc#/components/schemas/Prediction"}, registry=registry
    ).validate(body)


def test_warnings_are_bounded_and_say_how_many_more(app):
    status, body = predict(app, [TWO_OUTSIDE] * 50)  # 100 values outside
    assert status == 200
    warnings = body["warnings"]
    assert len(warnings) == 51
    assert warnings[49]["instance"] == 24 and warnings[49]["field"] == "body_mass_g"
    assert warnings[50] == {
        "instance": None,
        "field": None,
        "problem": "50 more values outside the training range not listed (100 in all)",
    }


def test_v2_names_them_in_the_response_parameters(app):
    r = app.post(V2_INFER, json.dumps(infer_request([PENGUIN, LONG_FLIPPER])).encode())
    assert r.status == 200
    body = r.json()
    validate(body, "inference_response")
    assert body["parameters"]["out_of_range_count"] == 1
    assert json.loads(body["parameters"]["out_of_range"]) == [FLIPPER_900]
    assert all(not isinstance(v, dict | list) for v in body["parameters"].values())  # scalars


def test_the_counter_counts_per_feature(app):
    flipper, mass = counted(app, "flipper_length_mm"), counted(app, "body_mass_g")
    predict(app, [TWO_OUTSIDE, LONG_FLIPPER])
    app.post(V2_INFER, json.dumps(infer_request([TWO_OUTSIDE])).encode())
    assert counted(app, "flipper_length_mm") == flipper + 3
    assert counted(app, "body_mass_g") == mass + 2


def test_reject_is_422_in_v1_and_400_in_v2(policy_app):
    app = policy_app("reject")
    flipper = counted(app, "flipper_length_mm")
    r = app.post("/predict", json.dumps({"features": [INSIDE, LONG_FLIPPER]}).encode())
    assert r.status == 422
    body = r.json()
    assert body["error"] == (
        "invalid instance: instance 1, field 'flipper_length_mm': 900 is outside the training "
        "range 172 to 231 (ML_API_OUT_OF_RANGE=reject)"
    )
    assert body["details"] == [FLIPPER_900]
    assert counted(app, "flipper_length_mm") == flipper + 1  # refused values are counted too
    r2 = app.post(V2_INFER, json.dumps(infer_request([INSIDE, LONG_FLIPPER])).encode())
    assert r2.status == 400
    assert r2.json()["error"] == body["error"] and r2.json()["details"] == [FLIPPER_900]
    ok = app.post("/predict", json.dumps({"features": [INSIDE]}).encode())
    assert ok.status == 200


def test_reject_lists_every_value_in_details(policy_app):
    r = policy_app("reject").post(
        "/predict", json.dumps({"features": [TWO_OUTSIDE, LONG_FLIPPER]}).encode()
    )
    assert r.status == 422
    assert r.json()["error"].startswith("3 values outside the training range (listed in details)")
    assert [(d["instance"], d["field"]) for d in r.json()["details"]] == [
        (0, "flipper_length_mm"),
        (0, "body_mass_g"),
        (1, "flipper_length_mm"),
    ]


def test_accept_changes_nothing_and_counts_nothing(policy_app, app):
    accepting = policy_app("accept")
    before = counted(accepting, "body_mass_g")
    r = accepting.post("/predict", json.dumps({"features": [INSIDE, TWO_OUTSIDE]}).encode())
    assert r.status == 200 and "warnings" not in r.json()
    r2 = accepting.post(V2_INFER, json.dumps(infer_request([TWO_OUTSIDE])).encode())
    assert r2.status == 200 and "parameters" not in r2.json()
    assert counted(accepting, "body_mass_g") == before
    assert accepting.get("/metadata").json()["limits"]["out_of_range"] == "accept"


def test_metadata_shows_the_policy(app):
    assert app.get("/metadata").json()["limits"]["out_of_range"] == "warn"


def test_warning_bodies_are_identical_across_frameworks(app, service):
    """The body is the core's dict, serialised once: the same bytes from either adapter."""
    r = app.post("/predict", json.dumps({"features": [INSIDE, LONG_FLIPPER]}).encode())
    expected = V1Protocol(service).predict_instances([INSIDE, LONG_FLIPPER])
    assert r.body == dumps(expected)
