"""Odd and hostile requests (issue 12), each in both frameworks, through their test clients.

Each test is parametrized over Flask and Django and checks the right value; the last ones check
that both frameworks give the same bytes for the same hostile request.
"""

from __future__ import annotations

import gzip
import json
import zlib

import pytest
from django.test import Client

from ml_api.api.flask_app import create_app
from ml_api.composition import build_scoring
from ml_api.core.errors import MAX_ERROR_BODY_BYTES
from tests.clients import Reply, django_call, flask_call
from tests.contract.table import FEATURES, ROW, VALID, _v2_tensors

JSON = "application/json"
INFER = "/v2/models/penguins/infer"
HUGE = "A" * 200_000
NAMED = dict(zip(FEATURES, ROW, strict=True))


@pytest.fixture(scope="module")
def clients(settings, service, django_settings, django_app):
    """Both apps around one service that decodes bodies up to 2 MiB (the wire limit of the
    Django test app stays 64 KiB, so large bodies are sent gzip-compressed: see ``_post``)."""
    from ml_api.api.django_app import get_wsgi_application

    big = settings.model_copy(update={"max_body_bytes": 2 * 1024 * 1024})
    big_service = build_scoring(big, artifact=service.artifact)
    get_wsgi_application(django_settings, big_service)
    try:
        yield {"flask": create_app(big, big_service).test_client(), "django": Client()}
    finally:
        get_wsgi_application(django_settings, service)


@pytest.fixture(params=["flask", "django"])
def call(request, clients):
    framework = request.param
    client = clients[framework]
    caller = flask_call if framework == "flask" else django_call

    def send(method, path, body=b"", content_type=JSON, headers=None) -> Reply:
        return caller(client, method, path, body, content_type, headers)

    return send


def _post(call, path, payload, headers=None) -> Reply:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    if len(body) > 60_000:  # over the Django test app's wire limit: compress (see ``clients``)
        body, headers = gzip.compress(body), {**(headers or {}), "Content-Encoding": "gzip"}
    return call("POST", path, body, JSON, headers)


def _v2(**overrides) -> dict:
    body = _v2_tensors(ROW)
    for tensor in body["inputs"]:
        if tensor["name"] in overrides:
            tensor.update(overrides[tensor["name"]])
    return body


# ---- 1. error bodies bounded whatever the request --------------------------------------------


@pytest.mark.parametrize(
    ("path", "payload", "status"),
    [
        ("/predict", {"features": [HUGE, 50.0, 15.0, 220.0, 5500.0, "male"]}, 422),
        ("/predict", {"features": {**NAMED, "K" * 100_000: 1}}, 422),
        (INFER, _v2(island={"data": [HUGE]}), 400),
        ("/predict", {"features": [ROW], "Z" * 100_000: 1}, 400),
        (INFER, {"inputs": [{"name": "N" * 100_000, "datatype": "FP64", "shape": [1],
                             "data": [1]}]}, 400),
        (INFER, _v2(island={"datatype": "X" * 100_000}), 400),
        (INFER, {**_v2(), "outputs": [{"name": "O" * 100_000}]}, 400),
        ("/predict", {"features": [{k * 2_000: 1 for k in "abcdefghijklmnopqrst"}] * 30}, 422),
    ],
    ids=["V1 huge category", "V1 huge key", "V2 huge BYTES", "V1 huge envelope key",
         "V2 huge tensor name", "V2 huge datatype", "V2 huge output name", "V1 many huge keys"],
)  # fmt: skip
def test_error_bodies_are_bounded(call, path, payload, status):
    r = _post(call, path, payload)
    assert r.status == status
    assert len(r.body) <= MAX_ERROR_BODY_BYTES
    body = r.json()
    assert body["error"] and "characters)" in r.body.decode()  # shortened, with the length
    assert all(len(d["field"] or "") <= 100 for d in body["details"])


def test_a_shortened_quote_keeps_the_start_and_the_length(call):
    r = _post(call, "/predict", {"features": [HUGE, 50.0, 15.0, 220.0, 5500.0, "male"]})
    assert "'" + "A" * 60 + "'... (200000 characters)" in r.json()["error"]


# ---- 2. Content-Encoding ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("coding", "encode"),
    [("gzip", gzip.compress), ("deflate", zlib.compress), ("identity", lambda b: b),
     ("GZip", gzip.compress), ("gzip, identity", gzip.compress), ("x-gzip", gzip.compress)],
)  # fmt: skip
@pytest.mark.parametrize("path", ["/predict", INFER])
def test_compressed_bodies_are_decoded(call, coding, encode, path):
    body = VALID if path == "/predict" else json.dumps(_v2()).encode()
    r = call("POST", path, encode(body), JSON, {"Content-Encoding": coding})
    assert r.status == 200, r.body
    prediction = r.json()["prediction"] if path == "/predict" else r.json()["outputs"][0]["data"]
    assert prediction == ["Gentoo"]


@pytest.mark.parametrize("path", ["/predict", INFER])
def test_a_small_body_inflating_past_the_limit_is_413(call, path):
    bomb = gzip.compress(b" " * (3 * 1024 * 1024))  # 3 MiB of spaces, about 3 KB compressed
    assert len(bomb) < 5_000
    r = call("POST", path, bomb, JSON, {"Content-Encoding": "gzip"})
    assert r.status == 413
    assert r.json()["error"] == (
        "request body decodes (Content-Encoding: gzip) to more than the limit of 2097152 bytes"
    )


@pytest.mark.parametrize("path", ["/predict", INFER])
@pytest.mark.parametrize(
    ("coding", "body"),
    [("gzip", VALID), ("deflate", VALID), ("gzip", gzip.compress(VALID)[:-8]),
     ("deflate", gzip.compress(VALID))],
    ids=["plain as gzip", "plain as deflate", "truncated gzip", "gzip as deflate"],
)  # fmt: skip
def test_a_body_that_is_not_its_coding_is_400(call, path, coding, body):
    r = call("POST", path, body, JSON, {"Content-Encoding": coding})
    assert r.status == 400
    assert r.json()["details"][0]["field"] == "Content-Encoding"


@pytest.mark.parametrize("path", ["/predict", INFER])
@pytest.mark.parametrize("coding", ["br", "compress", "zstd", "gzip, br"])
def test_an_unknown_coding_is_415_naming_the_header(call, path, coding):
    r = call("POST", path, VALID, JSON, {"Content-Encoding": coding})
    assert r.status == 415
    body = r.json()
    assert "Content-Encoding" in body["error"]
    assert body["details"][0]["field"] == "Content-Encoding"


# ---- 3. V2 values outside their declared datatype ---------------------------------------------


@pytest.mark.parametrize(
    ("datatype", "value"),
    [("UINT8", -5), ("UINT8", 256), ("INT8", 300), ("INT8", -129), ("INT16", 40_000),
     ("UINT32", 2**32), ("INT32", -(2**31) - 1), ("INT64", 9223372036854775808),
     ("UINT64", -1), ("FP16", 70_000), ("FP16", -65_520.0), ("FP32", 1e39), ("FP32", -1e39),
     ("FP64", 10**400), ("INT32", 220.5), ("INT8", True), ("FP32", "220")],
)  # fmt: skip
def test_values_outside_their_datatype_are_400(call, datatype, value):
    r = _post(call, INFER, _v2(flipper_length_mm={"datatype": datatype, "data": [value]}))
    assert r.status == 400
    body = r.json()
    assert "'flipper_length_mm'" in body["error"] and datatype in body["error"]
    assert body["details"][0]["field"] == "flipper_length_mm"


@pytest.mark.parametrize(
    ("datatype", "value"),
    [("UINT8", 220), ("INT16", 220), ("FP16", 220.0), ("FP32", 220), ("INT64", 220),
     ("UINT64", 220), ("FP64", 220.0)],
)  # fmt: skip
def test_values_inside_their_datatype_still_predict(call, datatype, value):
    r = _post(call, INFER, _v2(flipper_length_mm={"datatype": datatype, "data": [value]}))
    assert r.status == 200, r.body
    assert r.json()["outputs"][0]["data"] == ["Gentoo"]


@pytest.mark.parametrize("value", [1, 0, "true", None])
def test_bool_tensors_take_only_true_and_false(call, value):
    r = _post(call, INFER, _v2(sex={"datatype": "BOOL", "data": [value]}))
    assert r.status == 400
    assert "BOOL" in r.json()["error"]


# ---- parity of the hostile requests ----------------------------------------------------------


HOSTILE = {
    "huge category": ("/predict", {"features": [HUGE, 50.0, 15.0, 220.0, 5500.0, "male"]}, {}),
    "V2 UINT8 -5": (INFER, _v2(flipper_length_mm={"datatype": "UINT8", "data": [-5]}), {}),
    "gzip bomb": ("/predict", gzip.compress(b" " * 3_000_000), {"Content-Encoding": "gzip"}),
    "mislabelled": ("/predict", VALID, {"Content-Encoding": "gzip"}),
    "unknown coding": (INFER, VALID, {"Content-Encoding": "br"}),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_both_frameworks_answer_hostile_requests_alike(clients, name):
    path, payload, headers = HOSTILE[name]
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    headers = {**headers, "X-Request-ID": "hostile-1"}
    if len(body) > 60_000:  # over the Django test app's wire limit: compress (see ``clients``)
        body, headers = gzip.compress(body), {**headers, "Content-Encoding": "gzip"}
    f = flask_call(clients["flask"], "POST", path, body, JSON, headers)
    d = django_call(clients["django"], "POST", path, body, JSON, headers)
    assert (f.status, f.body) == (d.status, d.body)
    assert f.status >= 400


# ---- 7. CORS is off by default: no header changes for existing users ---------------------------


@pytest.mark.parametrize("method", ["OPTIONS", "POST"])
def test_no_cors_headers_by_default(call, method):
    headers = {"Origin": "https://app.example.com", "Access-Control-Request-Method": "POST"}
    r = call(method, "/predict", VALID, JSON, headers)
    assert r.status == 200
    assert not [h for h in r.headers if h.lower().startswith("access-control-")]
