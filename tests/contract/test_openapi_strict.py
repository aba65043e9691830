"""The OpenAPI document is as strict as the server on V2 requests and on Content-Encoding.

Each constraint of the document is checked against the server itself: what the document allows
is answered, what it leaves out is refused.
"""

from __future__ import annotations

import gzip
import json
import re
import zlib

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from ml_api.api.flask_app import create_app
from ml_api.core.errors import UnsupportedMediaType
from ml_api.core.protocols.body import CONTENT_ENCODING_PATTERN, check_content_encoding
from tests.contract.table import FEATURES, ROW, _v2_tensors

INFER = "/v2/models/penguins/infer"


@pytest.fixture(scope="module")
def client(settings, service):
    return create_app(settings, service).test_client()


@pytest.fixture(scope="module")
def document(client):
    return client.get("/openapi.json").get_json()


def _schemas(document) -> dict:
    return document["components"]["schemas"]


def _request_validator(document):
    registry = Registry().with_resource(
        "doc", Resource(contents=document, specification=DRAFT202012)
    )
    ref = {"$ref": "doc#/components/schemas/V2InferenceRequest"}
    return jsonschema.Draft202012Validator(ref, registry=registry)


def _infer(client, body, **headers):
    return client.post(
        INFER, data=json.dumps(body), content_type="application/json", headers=headers
    )


def test_tensor_names_are_the_features(document):
    assert _schemas(document)["V2RequestInput"]["properties"]["name"]["enum"] == list(FEATURES)


def test_datatypes_are_exactly_those_the_server_knows(document, client):
    enum = _schemas(document)["V2RequestInput"]["properties"]["datatype"]["enum"]
    assert "BYTES" in enum and "FP64" in enum and "STRING" not in enum
    for datatype in enum:  # each a datatype the server reads (400s say which feature takes it)
        body = _v2_tensors(ROW)
        body["inputs"][0]["datatype"] = datatype
        reply = _infer(client, body)
        assert reply.status_code in (200, 400)
        assert "unknown datatype" not in reply.get_json().get("error", "")
    body = _v2_tensors(ROW)
    body["inputs"][0]["datatype"] = "STRING"
    assert "unknown datatype" in _infer(client, body).get_json()["error"]


def test_outputs_need_a_known_name(document, client):
    output = _schemas(document)["V2RequestOutput"]
    assert output["required"] == ["name"]
    assert output["properties"]["name"]["enum"] == ["predict", "predict_proba"]
    validator = _request_validator(document)
    for outputs, status in (([{"name": "predict"}], 200), ([{}], 400), ([{"name": "x"}], 400)):
        body = {**_v2_tensors(ROW), "outputs": outputs}
        assert validator.is_valid(body) is (status == 200)
        assert _infer(client, body).status_code == status


def test_wrong_json_types_are_invalid_in_the_document_too(document):
    validator = _request_validator(document)
    assert validator.is_valid(_v2_tensors(ROW))
    for path, value in (("datatype", []), ("shape", "x"), ("data", {}), ("name", 1),
                        ("parameters", [])):  # fmt: skip
        body = _v2_tensors(ROW)
        body["inputs"][0][path] = value
        assert not validator.is_valid(body), path
    for key, value in (("id", 5), ("parameters", []), ("outputs", {})):
        assert not validator.is_valid({**_v2_tensors(ROW), key: value}), key


ENCODINGS = {
    "": lambda b: b,  # an empty header: no coding (schemathesis' negative mode sent it: 200)
    " , ": lambda b: b,
    "identity": lambda b: b,
    "gzip": gzip.compress,
    "X-GZIP": gzip.compress,
    "deflate": zlib.compress,
    "gzip, identity": gzip.compress,
    "deflate,\tgzip": lambda b: gzip.compress(zlib.compress(b)),  # applied in order
}


def test_each_documented_content_encoding_is_answered_and_others_refused(document, client):
    (param,) = [
        p for p in document["paths"]["/predict"]["post"]["parameters"]
        if p["name"] == "Content-Encoding"
    ]  # fmt: skip
    pattern = param["schema"]["pattern"]
    raw = json.dumps({"features": ROW}).encode()
    plain = client.post("/predict", data=raw, content_type="application/json").get_data()
    for coding, encode in ENCODINGS.items():
        assert re.fullmatch(pattern, coding), coding
        reply = client.post(
            "/predict",
            data=encode(raw),
            content_type="application/json",
            headers={"Content-Encoding": coding},
        )
        assert reply.status_code == 200, (coding, reply.get_data())
        assert reply.get_data() == plain
    for coding in ("br", "gzip;q=1", "gzip gzip", "compress"):
        assert not re.fullmatch(pattern, coding), coding
        reply = client.post(
            "/predict", data=raw, content_type="application/json",
            headers={"Content-Encoding": coding},
        )  # fmt: skip
        assert reply.status_code == 415, coding


@settings(max_examples=300, derandomize=True, database=None, deadline=None)
@given(st.text(alphabet="gzipdeflatexidntyGZIP-, \t\xa0;", max_size=24))
def test_the_documented_pattern_is_what_the_server_accepts(value):
    """The document's ``Content-Encoding`` pattern and the server's parser agree on any value."""
    try:
        check_content_encoding(value)
        accepted = True
    except UnsupportedMediaType:
        accepted = False
    assert bool(re.fullmatch(CONTENT_ENCODING_PATTERN, value)) == accepted, repr(value)
