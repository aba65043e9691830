"""Django middleware of the ml-api Django adapter, the Flask adapter's request hooks in Django form.

In ``MIDDLEWARE`` order:

1. :class:`HeadMiddleware`: a ``HEAD`` answer without content, as Werkzeug gives Flask's;
2. :class:`TelemetryMiddleware`: request id, access record and HTTP metrics (``core.telemetry``);
3. Django's ``SecurityMiddleware``;
4. :class:`CommonMiddleware`: the ``ALLOWED_HOSTS`` check, except on the probe and scrape paths;
5. :class:`ApiKeyMiddleware`: the core's API-key check (before routing, as in Flask).

None of them touches the request body, so the core and DRF's exception handling decide every
400/413/415.
"""

from __future__ import annotations

from collections.abc import Callable

from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.middleware import common

from ml_api.api import shared
from ml_api.api.django_app import runtime
from ml_api.api.django_app.ml_api_app.rendering import error_response
from ml_api.core import telemetry
from ml_api.core.errors import BadRequest, Problem, ServingError
from ml_api.core.protocols.request import authenticate
from ml_api.core.protocols.routes import any_host_paths

ANY_HOST_PATHS = any_host_paths()
"""Paths exempt from ``ALLOWED_HOSTS`` (the endpoint table's ``any_host`` rows): the kubelet probes
and Prometheus scrapes a pod by its IP, which no host list can name in advance."""

GetResponse = Callable[[HttpRequest], HttpResponseBase]


def route_template(request: HttpRequest, status: int) -> str | None:
    """The matched route template for metrics, ``None`` as Flask has none (no match, or 405)."""
    match = getattr(request, "resolver_match", None)
    if match is None or status == 405 or match.url_name == "not-found":
        return None
    return match.route


class TelemetryMiddleware:
    """Track each request like the Flask adapter does: id, access record, HTTP metrics.

    First in ``MIDDLEWARE``, so every response, those of later middleware and of Django's error
    handlers included, carries ``X-Request-ID`` and is counted.
    """

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        """Begin the request, call the rest of the stack, echo the id, end the request."""
        headers = shared.EnvironHeaders(request.META)  # not request.headers: see its docstring
        ctx = shared.begin_request(request.method or "", request.path_info, headers)
        request.request_id = ctx.request_id  # type: ignore[attr-defined]
        response = self.get_response(request)  # never raises: Django converts exceptions
        response[shared.REQUEST_ID_HEADER] = ctx.request_id
        telemetry.end_request(
            ctx, response.status_code, route_template(request, response.status_code)
        )
        return response


class HeadMiddleware:
    """Answer ``HEAD`` without a body, as Werkzeug does for Flask (RFC 9110: no content).

    The status, the headers and the ``Content-Length`` a ``GET`` would carry stay; only the
    content goes, also on an error (a 405 for ``HEAD /predict``), so both adapters hand the
    server the same response whatever the server does with a ``HEAD`` body. First in
    ``MIDDLEWARE``.
    """

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        """Call the stack; empty the content of a ``HEAD`` response."""
        response = self.get_response(request)
        if request.method == "HEAD" and isinstance(response, HttpResponse):
            length = len(response.content)
            response.content = b""
            response["Content-Length"] = str(length)
        return response


class CommonMiddleware(common.CommonMiddleware):
    """Django's ``CommonMiddleware`` with an explicit ``ALLOWED_HOSTS`` check that skips probes.

    :data:`ANY_HOST_PATHS` (``/health``, ``/ready``, ``/metrics`` and the V2 health paths) answer
    any ``Host`` (the kubelet and Prometheus use the pod IP); every other path keeps the check and
    answers 400 (the JSON envelope) for a host not allowed.
    """

    def process_request(  # type: ignore[override]  # a JSON 400, not only redirects
        self, request: HttpRequest
    ) -> HttpResponse | None:
        """Validate ``Host`` except on :data:`ANY_HOST_PATHS`, then Django's own processing.

        Returns:
            A 400 JSON response for a disallowed host, else whatever Django's middleware returns.
        """
        if request.path_info in ANY_HOST_PATHS:
            return None  # Django's process_request would call get_host() and refuse the pod IP
        try:
            request.get_host()
        except DisallowedHost:
            host = request.META.get("HTTP_HOST", "")[:100]
            return error_response(
                request,
                BadRequest(
                    f"this server does not answer for Host {host!r} (the operator lists the "
                    f"names it answers for in ML_API_ALLOWED_HOSTS)",
                    [Problem("not in the allowed hosts", field="Host")],
                ),
            )
        return super().process_request(request)


class ApiKeyMiddleware:
    """The core's optional API-key check, before routing (so it answers 401 first, as Flask)."""

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        """Answer 401 (``WWW-Authenticate``) without a valid key, unless the path is public."""
        try:
            auth = runtime.application().auth
            if auth.enabled:  # decided when the keys were configured (ApiKeyAuth.enabled)
                authenticate(auth, request.path_info, shared.EnvironHeaders(request.META))
        except ServingError as exc:
            return error_response(request, exc)
        return self.get_response(request)
