"""Django middleware of the ml-api Django adapter: request ids, and the host check minus probes.

Neither touches the request body, so DRF's exception handling decides every 400/413/415.
"""

from __future__ import annotations

from collections.abc import Callable

from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.middleware import common

from ml_api.api.django_app.ml_api.rendering import error_response
from ml_api.core.errors import BadRequest, Problem
from ml_api.core.service import request_id_from

PROBE_PATHS = frozenset({"/health", "/ready"})
"""Paths the kubelet probes with the pod IP as ``Host``: exempt from ``ALLOWED_HOSTS``."""


class RequestIdMiddleware:
    """Give every request an id (the caller's safe ``X-Request-ID``, else a new one) and echo it.

    First in ``MIDDLEWARE``, so responses made by any later middleware or handler carry the
    ``X-Request-ID`` header, and error bodies the same ``request_id``.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        """Assign ``request.request_id``, call the rest of the stack, set the header."""
        request.request_id = request_id_from(request.headers.get("X-Request-ID"))  # type: ignore[attr-defined]
        response = self.get_response(request)
        response["X-Request-ID"] = request.request_id  # type: ignore[attr-defined]
        return response


class CommonMiddleware(common.CommonMiddleware):
    """Django's ``CommonMiddleware`` with an explicit ``ALLOWED_HOSTS`` check that skips the probes.

    The kubelet's HTTP probes send the pod IP as ``Host``, which no ``ALLOWED_HOSTS`` list can
    name in advance, so ``/health`` and ``/ready`` answer any host; every other path keeps the
    check and answers 400 (the JSON envelope) for a host not allowed.
    """

    def process_request(self, request: HttpRequest) -> HttpResponse | None:
        """Validate ``Host`` except on probe paths, then Django's own processing.

        Returns:
            A 400 JSON response for a disallowed host, else whatever Django's middleware returns.
        """
        if request.path_info in PROBE_PATHS:
            return None  # Django's process_request would call get_host() and refuse the pod IP
        try:
            request.get_host()
        except DisallowedHost:
            return error_response(
                request,
                BadRequest(
                    "the Host header names a host this server does not answer for",
                    [Problem("not in the allowed hosts", field="Host")],
                ),
            )
        return super().process_request(request)
