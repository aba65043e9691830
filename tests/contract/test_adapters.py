"""What Flask and Django both do, written once: each test runs against each app's test client.

The request table, routing and method errors, limits, request ids, draining, API keys, chunked
bodies and the 500 without a traceback. What only one framework has stays in ``tests/flask_app``
and ``tests/django_app``; byte-for-byte comparison of the two is ``test_parity.py``.
"""

import io
import json
import logging
from wsgiref.util import setup_testing_defaults

import pytest

from ml_api.composition import build_scoring
from tests.cases import body_bytes, check_response, load_cases
from tests.conftest import VALID_ROW

CASES = load_cases()
VALID = json.dumps({"features": VALID_ROW}).encode()
LOGGERS = {"flask": "ml_api.flask", "django": "ml_api.django"}


@pytest.mark.parametrize(("name", "case"), CASES, ids=[n for n, _ in CASES])
@pytest.mark.parametrize("path", ["/predict", "/predict/"])
def test_request_table(app, name, case, path):
    r = app.call(case["method"], path, body_bytes(case), case["content_type"])
    assert r.headers["Content-Type"] == "application/json"
    check_response(case, r.status, r.json())


def test_health_ready_metadata(app):
    assert app.get("/health").json() == {"status": "ok"}
    assert app.get("/ready").json()["status"] == "ready"
    meta = app.get("/metadata").json()
    assert meta["model"] == {"name": "penguins", "version": "1"}
    assert meta["features"][0]["name"] == "island"
    assert meta["limits"] == {
        "max_body_bytes": 65_536,
        "max_instances": 50,
        "request_timeout_seconds": 10.0,
        "out_of_range": "warn",
    }


def test_both_spellings_reach_the_view_without_redirect(app):
    for path in ("/predict", "/predict/"):
        r = app.post(path, VALID)
        assert r.status == 200 and r.json()["prediction"] == ["Gentoo"]


def test_unknown_route_and_wrong_method_answer_json(app):
    r = app.get("/nope")
    assert r.status == 404 and r.headers["Content-Type"] == "application/json"
    assert set(r.json()) == {"error", "details", "request_id"}
    assert r.json()["error"] == "no route GET /nope; see GET /openapi.json"
    r = app.get("/predict")
    assert r.status == 405 and r.headers["Allow"] == "OPTIONS, POST"
    assert r.json()["error"] == "method GET is not allowed on /predict"
    r = app.post("/health", b"")
    assert r.status == 405 and r.headers["Allow"] == "GET, HEAD, OPTIONS"
    assert "Allow" not in app.get("/health").headers  # DRF's default adds it everywhere


def test_body_over_limit_is_413_before_parsing(app):
    big = b'{"features": [' + b"1," * 40_000 + b"1]}"
    r = app.post("/predict", big)
    assert r.status == 413
    assert "65536" in r.json()["error"]


@pytest.mark.parametrize(("padding", "status"), [(0, 200), (70_000, 413)])
def test_chunked_body_is_read_and_capped(app, padding, status):
    body = VALID + b" " * padding  # still valid JSON: a truncating reader would answer 200
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/predict",
        "CONTENT_TYPE": "application/json",
        "HTTP_TRANSFER_ENCODING": "chunked",
        "SERVER_NAME": "localhost",
        "HTTP_HOST": "localhost",
        "wsgi.input": io.BytesIO(body),
        "wsgi.input_terminated": True,
    }
    setup_testing_defaults(environ)
    code, headers, out = _call_wsgi(app.wsgi, environ)
    assert code == status, out
    assert headers["Content-Type"] == "application/json"
    if status == 413:
        assert json.loads(out)["error"] == "request body is larger than the limit of 65536 bytes"


def _call_wsgi(wsgi, environ):
    status = {}

    def start_response(s, headers, exc_info=None):
        status["line"], status["headers"] = s, dict(headers)

    body = b"".join(wsgi(environ, start_response))
    return int(status["line"].split()[0]), status["headers"], body


def test_request_id_echoed_or_generated(app):
    r = app.post("/predict", b"{", **{"X-Request-ID": "abc-123"})
    assert r.headers["X-Request-ID"] == "abc-123" and r.json()["request_id"] == "abc-123"
    r = app.post("/predict", b"{", **{"X-Request-ID": "bad id with spaces"})
    generated = r.headers["X-Request-ID"]
    assert len(generated) == 32 and r.json()["request_id"] == generated


def test_accept_header_is_ignored(app):
    r = app.post("/predict", VALID, Accept="text/html")
    assert r.status == 200 and r.headers["Content-Type"] == "application/json"


def test_draining_turns_readiness_503(app, app_around):
    draining = build_scoring(app.settings)
    drained = app_around(draining)
    draining.start_draining()
    r = drained.get("/ready")
    assert r.status == 503 and "shutting down" in r.json()["error"]
    assert drained.get("/health").status == 200
    assert drained.post("/predict", VALID).status == 200  # accepted work still completes


def test_api_keys(app, app_around, settings):
    keyed = type(app.settings)(**{**app.settings.model_dump(), "api_keys": "k-1,k-2"})
    client = app_around(build_scoring(keyed), keyed)  # keys are the application's settings
    r = client.post("/predict", VALID)
    assert r.status == 401 and r.headers["WWW-Authenticate"] == 'Bearer realm="ml-api"'
    assert set(r.json()) == {"error", "details", "request_id"}
    assert client.post("/predict", VALID, **{"X-API-Key": "k-2"}).status == 200
    assert client.get("/health").status == 200
    assert client.get("/nope", **{"X-API-Key": "k-1"}).status == 404


def test_unexpected_error_is_a_json_500_without_traceback(app, service, monkeypatch, caplog):
    monkeypatch.setattr(service.predictor, "predict", lambda frame: 1 / 0)
    with caplog.at_level(logging.ERROR, logger=LOGGERS[app.framework]):
        r = app.post("/predict", VALID)
    assert r.status == 500
    assert r.json()["error"] == "internal server error" and b"ZeroDivision" not in r.body
    assert any(rec.exc_info and rec.exc_info[0] is ZeroDivisionError for rec in caplog.records)
