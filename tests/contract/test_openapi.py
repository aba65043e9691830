"""The generated OpenAPI document is valid and describes exactly what the API accepts."""

import json

import jsonschema
import pytest
from openapi_spec_validator import validate as validate_spec
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from ml_api.api.flask_app import create_app
from tests.cases import body_bytes, load_cases

# JSON Schema cannot express one rule: 1e400 is a valid JSON number until it overflows a float.
NOT_EXPRESSIBLE = {"bad_overflow_number"}
CASES = [
    (n, c)
    for n, c in load_cases()
    if c["expect"]["status"] in (200, 422) and n not in NOT_EXPRESSIBLE
]


@pytest.fixture(scope="module")
def document(settings, service):
    client = create_app(settings, service).test_client()
    r = client.get("/openapi.json")
    assert r.status_code == 200
    return r.get_json()


def _validator(document, ref):
    registry = Registry().with_resource(
        "doc", Resource(contents=document, specification=DRAFT202012)
    )
    return jsonschema.Draft202012Validator({"$ref": f"doc#{ref}"}, registry=registry)


def test_document_is_valid_openapi(document):
    validate_spec(document)
    assert document["openapi"].startswith("3.1")
    island = document["components"]["schemas"]["NamedInstance"]["properties"]["island"]
    assert island["enum"] == ["Biscoe", "Dream", "Torgersen"]


@pytest.mark.parametrize(("name", "case"), CASES, ids=[n for n, _ in CASES])
def test_request_schema_matches_the_validator(document, name, case):
    ref = "/paths/~1predict/post/requestBody/content/application~1json/schema"
    body = json.loads(body_bytes(case))
    valid = _validator(document, ref).is_valid(body)
    assert valid == (case["expect"]["status"] == 200)


def test_examples_in_the_document_are_accepted(document, settings, service):
    client = create_app(settings, service).test_client()
    schema = document["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]
    for example in schema["schema"]["examples"]:
        r = client.post("/predict", json=example)
        assert r.status_code == 200, r.get_json()
        _validator(document, "/components/schemas/Prediction").validate(r.get_json())
    bad = client.post("/predict", json={"features": [1]})
    _validator(document, "/components/schemas/Error").validate(bad.get_json())


def test_docs_page_is_html_without_scripts(settings, service):
    r = create_app(settings, service).test_client().get("/docs")
    assert r.status_code == 200 and r.content_type.startswith("text/html")
    page = r.get_data(as_text=True)
    assert "<script" not in page and "bill_length_mm" in page and "/openapi.json" in page
