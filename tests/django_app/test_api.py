"""The Django adapter through Django's test client: the request table, routing, limits, errors."""

import io
import json
import logging
from wsgiref.util import setup_testing_defaults

import pytest
from django.test import Client, RequestFactory, override_settings
from django.urls import get_resolver

from ml_api.api.django_app import get_wsgi_application
from ml_api.core.service import PredictionService
from tests.cases import body_bytes, check_response, load_cases
from tests.clients import django_call
from tests.conftest import VALID_ROW

CASES = load_cases()
VALID = json.dumps({"features": VALID_ROW}).encode()


@pytest.fixture(scope="module")
def client(django_app):
    return Client()


@pytest.fixture(scope="module")
def rendering(django_app):
    # DRF modules read Django's settings when imported: only after the app is configured.
    from ml_api.api.django_app.ml_api_app import rendering

    return rendering


def post(client, body=VALID, content_type="application/json", path="/predict", **headers):
    return django_call(client, "POST", path, body, content_type, headers)


@pytest.mark.parametrize(("name", "case"), CASES, ids=[n for n, _ in CASES])
@pytest.mark.parametrize("path", ["/predict", "/predict/"])
def test_request_table(client, name, case, path):
    r = django_call(client, case["method"], path, body_bytes(case), case["content_type"])
    assert r.headers["Content-Type"] == "application/json"
    check_response(case, r.status, r.json())


def test_health_ready_metadata(client):
    assert client.get("/health").json() == {"status": "ok"}
    assert client.get("/ready").json()["status"] == "ready"
    meta = client.get("/metadata").json()
    assert meta["model"] == {"name": "penguins", "version": "1"}
    assert meta["features"][0]["name"] == "island"
    assert meta["limits"] == {
        "max_body_bytes": 65_536,
        "max_instances": 50,
        "request_timeout_seconds": 10.0,
    }


def test_both_spellings_reach_the_view_without_redirect(client):
    for path in ("/predict", "/predict/"):
        r = post(client, path=path)
        assert r.status == 200 and r.json()["prediction"] == ["Gentoo"]


def test_unknown_route_and_wrong_method_answer_json(client):
    r = client.get("/nope")
    assert r.status_code == 404 and r["Content-Type"] == "application/json"
    assert set(r.json()) == {"error", "details", "request_id"}
    r = client.get("/predict")
    assert r.status_code == 405 and r["Allow"] == "OPTIONS, POST"
    assert r.json()["error"] == "method GET is not allowed on /predict"
    r = client.post("/health")
    assert r.status_code == 405 and r["Allow"] == "GET, HEAD, OPTIONS"
    assert not client.get("/health").has_header("Allow")  # DRF's default adds it everywhere


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


def test_body_over_limit_is_413_before_parsing(client):
    big = b'{"features": [' + b"1," * 40_000 + b"1]}"
    r = post(client, big)
    assert r.status == 413
    assert "65536" in r.json()["error"]


def test_django_request_data_too_big_is_the_same_413(client):
    with override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=100):
        r = post(client, VALID + b" " * 200)
    assert r.status == 413
    assert r.json()["error"] == "request body is larger than the limit of 100 bytes"


def _call_wsgi(app, environ):
    status = {}

    def start_response(s, headers, exc_info=None):
        status["line"], status["headers"] = s, dict(headers)

    body = b"".join(app(environ, start_response))
    return int(status["line"].split()[0]), status["headers"], body


@pytest.mark.parametrize(("padding", "status"), [(0, 200), (70_000, 413)])
def test_chunked_body_is_read_and_capped(django_app, padding, status):
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
    code, headers, out = _call_wsgi(django_app, environ)
    assert code == status, out
    assert headers["Content-Type"] == "application/json"
    if status == 413:
        assert json.loads(out)["error"] == "request body is larger than the limit of 65536 bytes"


def test_request_id_echoed_or_generated(client):
    r = post(client, b"{", **{"X-Request-ID": "abc-123"})
    assert r.headers["X-Request-ID"] == "abc-123" and r.json()["request_id"] == "abc-123"
    r = post(client, b"{", **{"X-Request-ID": "bad id with spaces"})
    generated = r.headers["X-Request-ID"]
    assert len(generated) == 32 and r.json()["request_id"] == generated


def test_stray_session_and_csrf_cookies_never_403(client):
    r = post(client, Cookie="sessionid=abc; csrftoken=def")
    assert r.status == 200
    assert "Set-Cookie" not in r.headers


def test_accept_header_is_ignored_like_flask(client):
    r = post(client, Accept="text/html")
    assert r.status == 200 and r.headers["Content-Type"] == "application/json"


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


def test_draining_turns_readiness_503(django_settings, service):
    draining = PredictionService.from_settings(django_settings)
    get_wsgi_application(django_settings, draining)
    try:
        client = Client()
        draining.start_draining()
        r = client.get("/ready")
        assert r.status_code == 503 and "shutting down" in r.json()["error"]
        assert client.get("/health").status_code == 200
        assert post(client).status == 200  # accepted work still completes while draining
    finally:
        get_wsgi_application(django_settings, service)
    assert Client().get("/ready").status_code == 200


def test_unexpected_error_is_a_json_500_without_traceback(client, service, monkeypatch, caplog):
    monkeypatch.setattr(service.predictor, "predict", lambda frame: 1 / 0)
    with caplog.at_level(logging.ERROR, logger="ml_api.django"):
        r = post(client)
    assert r.status == 500
    assert r.json()["error"] == "internal server error" and b"ZeroDivision" not in r.body
    assert any(rec.exc_info and rec.exc_info[0] is ZeroDivisionError for rec in caplog.records)


def test_django_cannot_be_reconfigured_with_other_settings_in_one_process(django_settings):
    other = django_settings.model_copy(update={"allowed_hosts": ["elsewhere.example"]})
    with pytest.raises(RuntimeError, match="already configured"):
        get_wsgi_application(other)


def test_requests_never_load_the_model(client, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a request tried to load the model")

    monkeypatch.setattr(PredictionService, "from_settings", refuse)
    monkeypatch.setattr("ml_api.core.artifact.load_artifact", refuse)
    for _ in range(3):
        assert post(client).status == 200
    assert client.get("/ready").status_code == 200
