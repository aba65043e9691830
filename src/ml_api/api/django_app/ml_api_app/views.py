"""The DRF views: parse the request, call the core's ``PredictionService``, render the result.

Errors are raised, never rendered here: ``rendering.exception_handler`` turns them into the JSON
envelope, with the same status and body as the Flask adapter. Successful JSON answers are built
with ``rendering.json_response`` (the bytes DRF's ``Response`` rendered to, without its template
response machinery on every request).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse
from rest_framework.request import Request
from rest_framework.views import APIView

from ml_api.api import shared
from ml_api.api.django_app import runtime
from ml_api.api.django_app.ml_api_app.rendering import (
    error_response,
    json_response,
    route_not_found,
)
from ml_api.api.request_body import content_length, read_body
from ml_api.core import metrics
from ml_api.core.errors import allow_header
from ml_api.core.protocols.v2 import server_metadata
from ml_api.core.service import PredictionService


def _body_reader(request: Request, limit: int) -> Callable[[], bytes]:
    raw = request._request  # Django's request under DRF's wrapper
    return lambda: read_body(raw.META, content_length(raw.META), limit, lambda: raw.body)


class JSONView(APIView):
    """A DRF view that answers like the Flask adapter: no ``Allow`` on success, plain OPTIONS."""

    @property
    def default_response_headers(self) -> dict[str, str]:
        """No extra headers (DRF adds ``Allow`` to every response; Flask only to 405/OPTIONS)."""
        return {}

    def perform_authentication(self, request: Request) -> None:
        """Nothing: no authentication classes are configured (the API-key check is middleware).

        DRF's own step would resolve ``request.user`` to ``None`` on every request; left lazy,
        as DRF's documentation suggests for views that never read it.
        """

    def options(  # type: ignore[override]  # a plain HttpResponse, as Django allows
        self, request: Request, *args: Any, **kwargs: Any
    ) -> HttpResponse:
        """``OPTIONS``: an empty 200 with ``Allow``, as Flask answers it."""
        return HttpResponse(headers={"Allow": allow_header(self.allowed_methods)})


class PredictView(JSONView):
    """``POST /predict`` and ``POST /predict/``."""

    def post(self, request: Request) -> HttpResponse:
        """Predictions for one instance or a batch (see ``ml_api.core.codecs``).

        Raises:
            ServingError: 400, 413, 415 or 422 from the core (rendered by the exception handler).
        """
        service = runtime.service()
        body = service.predict_http(
            request.META.get("CONTENT_TYPE"),
            content_length(request.META),
            _body_reader(request, service.settings.max_body_bytes),
            request.META.get("HTTP_CONTENT_ENCODING"),
        )
        return json_response(body)


class HealthView(JSONView):
    """``GET /health``: liveness; never touches the model."""

    def get(self, request: Request) -> HttpResponse:
        """Return ``{"status": "ok"}``."""
        return json_response(PredictionService.liveness())


class ReadyView(JSONView):
    """``GET /ready``: readiness; 503 while draining before shutdown."""

    def get(self, request: Request) -> HttpResponse:
        """Return ``{"status": "ready", "model": {...}}``.

        Raises:
            ModelNotReady: (503) draining, or no model loaded.
        """
        return json_response(runtime.service().readiness())


class MetadataView(JSONView):
    """``GET /metadata``: the model card."""

    def get(self, request: Request) -> HttpResponse:
        """Return the model card (schema, classes, metrics, versions, limits)."""
        return json_response(runtime.service().metadata())


class ModelCardView(JSONView):
    """``GET /model``: the model card as a page for people (charts included)."""

    def get(self, request: Request) -> HttpResponse:
        """Return the HTML page."""
        return HttpResponse(
            runtime.application().card_html, content_type="text/html; charset=utf-8"
        )


class OpenAPIView(JSONView):
    """``GET /openapi.json``: this API described for tools, features included."""

    def get(self, request: Request) -> HttpResponse:
        """Return the OpenAPI 3.1 document."""
        return json_response(runtime.application().openapi)


class DocsView(JSONView):
    """``GET /docs``: Swagger UI on ``/openapi.json`` (assets served below, no CDN)."""

    def get(self, request: Request) -> HttpResponse:
        """Return the HTML page."""
        return HttpResponse(
            runtime.application().docs.page, content_type="text/html; charset=utf-8"
        )


class DocsAssetView(JSONView):
    """``GET /docs/<name>``: a Swagger UI asset."""

    def get(self, request: Request, name: str) -> HttpResponse:
        """Return the asset's bytes.

        Raises:
            NotFound: (404) no such asset.
        """
        body, content_type = runtime.application().docs.asset(name)
        return HttpResponse(body, content_type=content_type)


class MetricsView(JSONView):
    """``GET /metrics``: Prometheus text format, merged across gunicorn workers."""

    def get(self, request: Request) -> HttpResponse:
        """Return every ``ml_api_*`` series (and the process collectors')."""
        body, content_type = metrics.render()
        return HttpResponse(body, content_type=content_type)


# ---- Open Inference Protocol (KServe V2), on the same core ---------------------------------


class V2ServerMetadataView(JSONView):
    """``GET /v2``: server metadata."""

    def get(self, request: Request) -> HttpResponse:
        """Return name, version and extensions."""
        return json_response(server_metadata())


class V2LiveView(JSONView):
    """``GET /v2/health/live``: liveness."""

    def get(self, request: Request) -> HttpResponse:
        """Return ``{"live": true}``."""
        return json_response(shared.v2_live())


class V2ReadyView(JSONView):
    """``GET /v2/health/ready``: readiness (503 while draining)."""

    def get(self, request: Request) -> HttpResponse:
        """Return ``{"ready": true}``.

        Raises:
            ModelNotReady: (503) draining.
        """
        return json_response(runtime.application().open_inference.server_ready())


class V2ModelMetadataView(JSONView):
    """``GET /v2/models/{name}[/versions/{version}]``: model metadata (tensors)."""

    def get(self, request: Request, name: str, version: str | None = None) -> HttpResponse:
        """Return the model's inputs and outputs as tensors.

        Raises:
            NotFound: (404) another model or version.
        """
        return json_response(runtime.application().open_inference.model_metadata(name, version))


class V2ModelReadyView(JSONView):
    """``GET /v2/models/{name}[/versions/{version}]/ready``: model readiness."""

    def get(self, request: Request, name: str, version: str | None = None) -> HttpResponse:
        """Return ``{"name", "ready"}``.

        Raises:
            NotFound: (404) another model or version.
        """
        return json_response(runtime.application().open_inference.model_ready(name, version))


class V2InferView(JSONView):
    """``POST /v2/models/{name}[/versions/{version}]/infer``: inference on tensors."""

    def post(self, request: Request, name: str, version: str | None = None) -> HttpResponse:
        """Return the inference response (``model_name``, ``outputs``, ...).

        Raises:
            ServingError: 400, 404, 413 or 504 from the core.
        """
        v2 = runtime.application().open_inference
        body = v2.infer_http(
            name,
            version,
            request.META.get("CONTENT_TYPE"),
            content_length(request.META),
            _body_reader(request, v2.limits.max_body_bytes),
            shared.EnvironHeaders(request.META).get(shared.INFERENCE_HEADER_LENGTH),
            request.META.get("HTTP_CONTENT_ENCODING"),
        )
        return json_response(body)


def not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
    """Any path no other route matches, any method: the JSON 404 (also with ``DEBUG`` on)."""
    return error_response(request, route_not_found(request))
