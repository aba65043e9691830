"""Flask and Django, through their test clients, answer every request in the table alike."""

import json

import pytest
from django.test import Client

from ml_api.api.flask_app import create_app
from tests.clients import django_call, flask_call
from tests.contract.table import CALLS, COMPARED_HEADERS, allow_set

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
    f, d = both(CALLS[name], {"X-Request-ID": "parity-check-1"})
    assert (f.status, f.body) == (d.status, d.body)
    for header in COMPARED_HEADERS:
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
    else:
        assert f.body == d.body


def test_the_table_covers_every_status_of_the_contract(both):
    seen = {both(c)[0].status for c in CALLS.values()}
    assert {200, 400, 404, 405, 413, 415, 422} <= seen
