"""Flask and Django, through their test clients, answer every request in the table alike."""

import json

import pytest
from django.test import Client

from ml_api.api.flask_app import create_app
from ml_api.composition import build_scoring
from tests.clients import django_call, flask_call
from tests.contract.table import CALLS, COMPARED_HEADERS, VALID, allow_set

NAMES = sorted(CALLS)


@pytest.fixture(scope="module")
def both(settings, service, django_app):
    flask = create_app(settings, service).test_client()
    django = Client()

    def call(call, headers=None):
        hdrs = {**call.headers, **(headers or {})}
        args = (call.method, call.path, call.body, call.content_type, hdrs)
        return flask_call(flask, *args), django_call(django, *args)

    return call


@pytest.mark.parametrize("name", NAMES)
def test_same_status_bytes_and_headers(both, name):
    call = CALLS[name]
    f, d = both(call, {"X-Request-ID": "parity-check-1"})
    assert f.status == d.status
    assert call.volatile or f.body == d.body
    for header in COMPARED_HEADERS:
        if not (call.volatile and header == "Content-Length"):
            assert f.headers.get(header) == d.headers.get(header), header
    assert allow_set(f.headers.get("Allow")) == allow_set(d.headers.get("Allow"))
    assert f.headers["X-Request-ID"] == "parity-check-1"
    if f.status >= 400 and f.body:
        body = json.loads(f.body)
        assert set(body) == {"error", "details", "request_id"}
        assert body["request_id"] == "parity-check-1"


@pytest.mark.parametrize("name", NAMES)
def test_generated_request_ids_differ_only_in_the_id(both, name):
    f, d = both(CALLS[name])
    assert f.status == d.status
    for reply in (f, d):
        assert len(reply.headers["X-Request-ID"]) == 32
    if f.status >= 400 and f.body:
        fb, db = json.loads(f.body), json.loads(d.body)
        assert fb.pop("request_id") == f.headers["X-Request-ID"]
        assert db.pop("request_id") == d.headers["X-Request-ID"]
        assert fb == db
    elif not CALLS[name].volatile:
        assert f.body == d.body


def test_the_table_covers_every_status_of_the_contract(both):
    seen = {both(c)[0].status for c in CALLS.values()}
    assert {200, 400, 404, 405, 413, 415, 422} <= seen


AUTH_CALLS = {
    "no key": ("POST", "/predict", {}),
    "X-API-Key": ("POST", "/predict", {"X-API-Key": "k-2"}),
    "Bearer": ("POST", "/predict/", {"Authorization": "Bearer k-1"}),
    "bearer, lower case": ("POST", "/predict", {"Authorization": "bearer k-1"}),
    "wrong key": ("POST", "/predict", {"X-API-Key": "nope"}),
    "wrong scheme": ("POST", "/predict", {"Authorization": "Basic azox"}),
    "empty bearer": ("POST", "/predict", {"Authorization": "Bearer "}),
    "public /health": ("GET", "/health", {}),
    "public /ready": ("GET", "/ready", {}),
    "public /metrics, wrong method": ("POST", "/metrics", {}),
    "metadata needs a key": ("GET", "/metadata", {}),
    "unknown path without key": ("GET", "/nope", {}),
    "unknown path with key": ("GET", "/nope", {"X-API-Key": "k-1"}),
    "wrong method without key": ("GET", "/predict", {}),
    "OPTIONS without key": ("OPTIONS", "/predict", {}),
    "V2 infer without key": ("POST", "/v2/models/penguins/infer", {}),
    "V2 live without key": ("GET", "/v2/health/live", {}),
}


@pytest.fixture(scope="module")
def both_with_keys(settings, django_settings, service, django_app):
    from ml_api.api.django_app import get_wsgi_application

    flask_settings = type(settings)(**{**settings.model_dump(), "api_keys": "k-1,k-2"})
    keyed_service = build_scoring(flask_settings)
    flask = create_app(flask_settings, keyed_service).test_client()
    django_keyed = type(settings)(**{**django_settings.model_dump(), "api_keys": "k-1,k-2"})
    get_wsgi_application(django_keyed, keyed_service)
    try:
        yield flask, Client()
    finally:
        get_wsgi_application(django_settings, service)


@pytest.mark.parametrize("name", sorted(AUTH_CALLS))
def test_api_keys_alike(both_with_keys, name):
    method, path, headers = AUTH_CALLS[name]
    flask, django = both_with_keys
    headers = {**headers, "X-Request-ID": "auth-1"}
    f = flask_call(flask, method, path, VALID, "application/json", headers)
    d = django_call(django, method, path, VALID, "application/json", headers)
    assert (f.status, f.body) == (d.status, d.body)
    for header in COMPARED_HEADERS:
        assert f.headers.get(header) == d.headers.get(header), header
    assert allow_set(f.headers.get("Allow")) == allow_set(d.headers.get("Allow"))
    assert f.status != 500
