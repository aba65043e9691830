"""The generated OpenAPI document is valid and describes exactly what the API accepts."""

import json

import jsonschema
import pytest
from openapi_spec_validator import validate as validate_spec
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from ml_api.api.flask_app import create_app
from ml_api.composition import build_scoring
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


def test_try_it_out_examples_predict_as_they_are(document, settings, service):
    """The examples Swagger UI prefills (V1 body forms, V2 infer) are accepted unchanged."""
    client = create_app(settings, service).test_client()
    v1 = document["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]
    assert set(v1["examples"]) == {"positional", "named", "records"}
    for example in v1["examples"].values():
        r = client.post("/predict", json=example["value"])
        assert r.status_code == 200, r.get_json()
        assert r.get_json()["prediction"][0] in {"Adelie", "Chinstrap", "Gentoo"}
    infer = document["paths"]["/v2/models/{name}/infer"]
    name = infer["parameters"][0]["schema"]["default"]
    example = infer["post"]["requestBody"]["content"]["application/json"]["example"]
    r = client.post(f"/v2/models/{name}/infer", json=example)
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["outputs"][0]["data"][0] in {"Adelie", "Chinstrap", "Gentoo"}


def test_no_security_schemes_without_keys(document):
    assert "security" not in document
    assert "securitySchemes" not in document["components"]


def test_security_schemes_declared_with_keys(settings, model_root):
    from pydantic import SecretStr

    keyed = settings.model_copy(update={"api_keys": [SecretStr("k-123")]})
    client = create_app(keyed, build_scoring(keyed)).test_client()
    r = client.get("/openapi.json")  # public, no key
    assert r.status_code == 200
    document = r.get_json()
    validate_spec(document)
    assert set(document["components"]["securitySchemes"]) == {"bearer", "apiKey"}
    assert document["security"] == [{"bearer": []}, {"apiKey": []}]
    assert document["paths"]["/health"]["get"]["security"] == []
    assert "security" not in document["paths"]["/predict"]["post"]
    for path in ("/docs", "/docs/swagger-ui.css", "/docs/swagger-ui-bundle.js"):
        assert client.get(path).status_code == 200, path
    assert client.post("/predict", json={"features": []}).status_code == 401


def test_docs_page_is_swagger_ui_from_local_assets(settings, service):
    client = create_app(settings, service).test_client()
    r = client.get("/docs")
    assert r.status_code == 200 and r.content_type.startswith("text/html")
    page = r.get_data(as_text=True)
    assert "http" not in page  # nothing from another origin
    for src in ("docs/swagger-ui-bundle.js", "docs/swagger-initializer.js", "docs/swagger-ui.css"):
        assert src in page
        asset = client.get("/" + src)
        assert asset.status_code == 200 and len(asset.data) > 0
    assert client.get("/docs/swagger-ui-bundle.js").content_type.startswith("text/javascript")
    assert client.get("/docs/swagger-ui.css").content_type.startswith("text/css")
    assert client.get("/docs/LICENSE").status_code == 404
    assert b"openapi.json" in client.get("/docs/swagger-initializer.js").data
