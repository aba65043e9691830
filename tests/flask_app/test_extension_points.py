"""The Flask app stays open to a user's own hooks and views, ``async`` ones included.

``create_app`` returns a Flask subclass that skips Flask's per-request coroutine check for
ml-api's own plain functions only; whatever a user registers still goes through Flask's
``ensure_sync``, so an ``async def`` view or hook runs as Flask documents.
"""

import inspect
from concurrent.futures import ThreadPoolExecutor

import pytest
from flask import g, jsonify, request

from ml_api.api.flask_app import create_app
from ml_api.api.flask_app.routes import VIEWS
from tests.contract.table import VALID


@pytest.fixture
def app(settings, service):
    return create_app(settings, service)


def test_our_functions_are_returned_as_they_are(app):
    for endpoint in VIEWS:
        view = app.view_functions[endpoint]
        assert not inspect.iscoroutinefunction(view)
        assert app.ensure_sync(view) is view
    for hooks in (app.before_request_funcs[None], app.after_request_funcs[None]):
        for hook in hooks:
            assert app.ensure_sync(hook) is hook


def test_a_users_async_view_and_hooks_still_run(app):
    pytest.importorskip("asgiref")  # Flask's async support; Django brings it

    async def user_view():
        return jsonify(user="async", request_id=g.get("ml_api_request").request_id)

    async def user_before():
        g.user_before = request.path

    async def user_after(response):
        response.headers["X-User-After"] = g.get("user_before", "")
        return response

    app.add_url_rule("/user-async", "user_async", user_view)
    app.before_request(user_before)
    app.after_request(user_after)
    assert app.ensure_sync(user_view) is not user_view  # wrapped, as Flask does
    # on a thread of its own, as a WSGI server's request thread: another test in this process
    # (a browser driver, say) may leave an event loop running in the main thread, where asgiref
    # refuses to run async code synchronously
    with ThreadPoolExecutor(1) as pool:
        pool.submit(_async_requests, app).result()


def _async_requests(app) -> None:
    client = app.test_client()
    reply = client.get("/user-async", headers={"X-Request-ID": "user-1"})
    assert reply.status_code == 200
    assert reply.get_json() == {"user": "async", "request_id": "user-1"}
    assert reply.headers["X-Request-ID"] == "user-1"
    assert reply.headers["X-User-After"] == "/user-async"

    predicted = client.post(
        "/predict", data=VALID, content_type="application/json", headers={"X-Request-ID": "u-2"}
    )
    assert predicted.status_code == 200, predicted.get_data()
    assert predicted.headers["X-User-After"] == "/predict"
    assert predicted.headers["X-Request-ID"] == "u-2"
    assert "prediction" in predicted.get_json()


def test_a_users_plain_hook_sees_every_request_and_errors_stay_json(app):
    seen = []
    app.before_request(lambda: seen.append(request.path))
    client = app.test_client()
    assert client.get("/health").status_code == 200
    missing = client.get("/nope", headers={"X-Request-ID": "nope-1"})
    assert missing.status_code == 404
    assert missing.get_json()["request_id"] == "nope-1"
    assert seen == ["/health", "/nope"]
