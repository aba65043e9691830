"""Django's per-request database housekeeping is off without a database, on with one."""

import pytest
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, reset_queries


def _connected(signal, receiver) -> bool:
    return any(ref() is receiver for _, ref, *_ in signal.receivers)


def test_no_database_no_per_request_database_work(django_app, client):
    # the Django test client reconnects close_old_connections around its own requests, so
    # reset_queries (which it leaves alone) is the witness of what AppConfig.ready() did
    assert not _connected(request_started, reset_queries)
    reply = client.get("/health", headers={"X-Request-ID": "no-db-1"})
    assert reply.status_code == 200
    assert reply.headers["X-Request-ID"] == "no-db-1"


def test_a_database_keeps_the_housekeeping(django_app):
    from ml_api.api.django_app.ml_api_app.apps import skip_database_housekeeping

    request_started.connect(reset_queries)
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)
    try:
        db = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
        assert skip_database_housekeeping(db) is False
        assert _connected(request_started, reset_queries)
        assert _connected(request_started, close_old_connections)
        assert _connected(request_finished, close_old_connections)
    finally:
        assert skip_database_housekeeping() is True  # ml-api's settings: no database
    assert not _connected(request_started, reset_queries)
    assert not _connected(request_finished, close_old_connections)


@pytest.mark.parametrize("path", ["/health", "/nope"])
def test_requests_still_answer_after_the_housekeeping_is_gone(client, path):
    reply = client.get(path)
    assert reply.status_code in (200, 404)
    assert reply.headers["Content-Type"] == "application/json"
