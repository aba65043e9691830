"""The DRF views: parse the request, call the core's ``PredictionService``, render the result.

Errors are raised, never rendered here: ``rendering.exception_handler`` turns them into the JSON
envelope, with the same status and body as the Flask adapter.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ml_api.api.django_app import runtime
from ml_api.api.django_app.ml_api.rendering import error_response, route_not_found
from ml_api.api.django_app.ml_api.request_body import content_length, read_body
from ml_api.core.service import PredictionService


class JSONView(APIView):
    """A DRF view that answers like the Flask adapter: no ``Allow`` on success, plain OPTIONS."""

    @property
    def default_response_headers(self) -> dict[str, str]:
        """No extra headers (DRF adds ``Allow`` to every response; Flask only to 405/OPTIONS)."""
        return {}

    def options(self, request: Request, *args: Any, **kwargs: Any) -> HttpResponse:
        """``OPTIONS``: an empty 200 with ``Allow``, as Flask answers it."""
        return HttpResponse(headers={"Allow": ", ".join(sorted(self.allowed_methods))})


class PredictView(JSONView):
    """``POST /predict`` and ``POST /predict/``."""

    def post(self, request: Request) -> Response:
        """Predictions for one instance or a batch (see ``ml_api.core.codecs``).

        Raises:
            ServingError: 400, 413, 415 or 422 from the core (rendered by the exception handler).
        """
        service = runtime.service()
        body = service.predict_http(
            request.META.get("CONTENT_TYPE"),
            content_length(request.META),
            lambda: read_body(request._request, service.settings.max_body_bytes),
        )
        return Response(body)


class HealthView(JSONView):
    """``GET /health``: liveness; never touches the model."""

    def get(self, request: Request) -> Response:
        """Return ``{"status": "ok"}``."""
        return Response(PredictionService.liveness())


class ReadyView(JSONView):
    """``GET /ready``: readiness; 503 while draining before shutdown."""

    def get(self, request: Request) -> Response:
        """Return ``{"status": "ready", "model": {...}}``.

        Raises:
            ModelNotReady: (503) draining, or no model loaded.
        """
        return Response(runtime.service().readiness())


class MetadataView(JSONView):
    """``GET /metadata``: the model card."""

    def get(self, request: Request) -> Response:
        """Return the model card (schema, classes, metrics, versions, limits)."""
        return Response(runtime.service().metadata())


def not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
    """Any path no other route matches, any method: the JSON 404 (also with ``DEBUG`` on)."""
    return error_response(request, route_not_found(request))
