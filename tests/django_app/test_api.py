"""What only the Django adapter does; what both apps do is ``tests/contract/test_adapters.py``.

Django's own error handlers, ``RequestDataTooBig``, the ``ALLOWED_HOSTS`` check with its probe
exemption, DRF's parsers and exceptions, and the process-wide configuration.
"""

import json

import pytest
from django.test import RequestFactory, override_settings
from django.urls import get_resolver

from ml_api.api.django_app import get_wsgi_application
from tests.clients import django_call
from tests.conftest import VALID_ROW

VALID = json.dumps({"features": VALID_ROW}).encode()


def post(client, body=VALID, content_type="application/json", path="/predict", **headers):
    return django_call(client, "POST", path, body, content_type, headers)


def test_error_handlers_are_the_json_ones(client, rendering):
    resolver = get_resolver()
    for code in (400, 403, 404, 500):
        assert resolver.resolve_error_handler(code).__module__ == rendering.__name__
    request = RequestFactory().get("/x", headers={"X-Request-ID": "h-1"})
    for response, status in [
        (rendering.server_error(request), 500),
        (rendering.page_not_found(request, Exception()), 404),
        (rendering.permission_denied(request, Exception()), 403),
        (rendering.bad_request(request, Exception("boom")), 500),
    ]:
        assert response.status_code == status and response["Content-Type"] == "application/json"
        body = json.loads(response.content)
        assert body["request_id"] == "h-1" and "boom" not in body["error"]


def test_django_request_data_too_big_is_the_same_413(client):
    with override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=100):
        r = post(client, VALID + b" " * 200)
    assert r.status == 413
    assert r.json()["error"] == "request body is larger than the limit of 100 bytes"


def test_stray_session_and_csrf_cookies_never_403(client):
    r = post(client, Cookie="sessionid=abc; csrftoken=def")
    assert r.status == 200
    assert "Set-Cookie" not in r.headers


def test_probes_answer_any_host_but_the_api_keeps_the_host_check(client):
    pod_ip = {"Host": "10.244.1.17:8000"}
    for path in ("/health", "/ready", "/metrics", "/v2/health/live", "/v2/health/ready"):
        assert client.get(path, headers=pod_ip).status_code == 200, path
    for r in (
        django_call(client, "GET", "/metadata", headers=pod_ip),
        post(client, **pod_ip),
        django_call(client, "GET", "/nope", headers=pod_ip),
    ):
        assert r.status == 400 and r.headers["Content-Type"] == "application/json"
        body = r.json()
        assert body["details"] == [
            {"instance": None, "field": "Host", "problem": "not in the allowed hosts"}
        ]
        assert body["request_id"] == r.headers["X-Request-ID"]
    assert client.get("/metadata", headers={"Host": "localhost:8000"}).status_code == 200


@pytest.fixture(scope="module")
def echo_view(django_app):
    from rest_framework.response import Response

    from ml_api.api.django_app.ml_api_app.views import JSONView

    class Echo(JSONView):
        """A view that lets DRF parse the body, to exercise DRF's own parser errors."""

        def post(self, request):
            return Response(request.data)

    return Echo.as_view()


@pytest.mark.parametrize(
    ("body", "content_type", "status", "error"),
    [
        (b"{", "application/json", 400, "JSON parse error"),
        (b"x=1", "text/plain", 415, 'Unsupported media type "text/plain" in request.'),
        (b'{"a": 1}', "application/json", 200, None),
    ],
)
def test_drf_parser_and_media_type_errors_are_the_envelope(
    echo_view, body, content_type, status, error
):
    request = RequestFactory().post("/echo", body, content_type=content_type)
    request.request_id = "drf-1"
    response = echo_view(request)
    if hasattr(response, "render"):
        response.render()
    assert response.status_code == status
    payload = json.loads(response.content)
    if error:
        assert payload["error"].startswith(error) and payload["request_id"] == "drf-1"
        assert set(payload) == {"error", "details", "request_id"}


@pytest.mark.parametrize(
    ("name", "args", "status"),
    [
        ("NotAcceptable", {}, 406),
        ("NotAuthenticated", {}, 401),
        ("Throttled", {"wait": 3}, 429),
        ("ValidationError", {"detail": {"features": ["bad", "worse"]}}, 400),
        ("PermissionDenied", {}, 403),
        ("ParseError", {"detail": "JSON parse error - Expecting value"}, 400),
        ("UnsupportedMediaType", {"media_type": "text/plain"}, 415),
    ],
)
def test_exception_handler_maps_drf_exceptions(rendering, name, args, status):
    from rest_framework import exceptions

    exc = getattr(exceptions, name)(**args)
    request = RequestFactory().get("/x", headers={"X-Request-ID": "drf-2"})
    response = rendering.exception_handler(exc, {"request": request, "view": None})
    assert response.status_code == status
    body = json.loads(response.content)
    assert set(body) == {"error", "details", "request_id"} and body["request_id"] == "drf-2"
    assert isinstance(body["error"], str) and "\n" not in body["error"] and body["error"]
    if name == "ValidationError":
        assert body["error"] == "features: bad; worse"


def test_django_cannot_be_reconfigured_with_other_settings_in_one_process(django_settings):
    other = django_settings.model_copy(update={"allowed_hosts": ["elsewhere.example"]})
    with pytest.raises(RuntimeError, match="already configured"):
        get_wsgi_application(other)


def test_requests_never_load_the_model(client, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a request tried to load the model")

    monkeypatch.setattr("ml_api.composition.build_scoring", refuse)
    monkeypatch.setattr("ml_api.core.model.artifact.load_artifact", refuse)
    for _ in range(3):
        assert post(client).status == 200
    assert client.get("/ready").status_code == 200


@pytest.mark.parametrize(
    "name",
    [
        "X-Request-ID",
        "x-request-id",
        "Authorization",
        "X-API-Key",
        "Content-Encoding",
        "Content-Type",
        "Content-Length",
        "Inference-Header-Content-Length",
        "Origin",
        "Absent-Header",
    ],
)
def test_environ_headers_answer_as_django_headers(django_app, name):
    """The middleware and views read headers from META: the same values as ``request.headers``."""
    from ml_api.api.shared import EnvironHeaders

    request = RequestFactory().post(
        "/predict",
        data=b"{}",
        content_type="application/json",
        headers={
            "X-Request-ID": "abc",
            "Authorization": "Bearer k",
            "X-API-Key": "k2",
            "Content-Encoding": "gzip",
            "Inference-Header-Content-Length": "12",
            "Origin": "https://example.org",
        },
    )
    assert EnvironHeaders(request.META).get(name) == request.headers.get(name)
    if name != "Absent-Header":
        assert EnvironHeaders(request.META).get(name) is not None


def test_predict_response_is_what_drf_rendered(client):
    """/predict answers as a plain HttpResponse: the same status, type and bytes DRF gave."""
    from rest_framework.response import Response

    from ml_api.api.django_app.ml_api_app.rendering import CoreJSONRenderer

    response = client.post(
        "/predict", data=json.dumps({"features": VALID_ROW}), content_type="application/json"
    )
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    drf = Response(json.loads(response.content))
    drf.accepted_renderer = CoreJSONRenderer()
    drf.accepted_media_type = "application/json"
    drf.renderer_context = {}
    drf.render()
    assert drf.content == response.content
    assert drf["Content-Type"] == response["Content-Type"]
