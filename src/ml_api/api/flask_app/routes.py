"""The Flask routes: parse the request, call the core's ``PredictionService``, render the result.

Errors are raised, never rendered here: :mod:`ml_api.api.flask_app.rendering` turns them into the
JSON envelope, with the same status and body as the Django adapter.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app, request

from ml_api.api import shared
from ml_api.api.flask_app.rendering import json_response
from ml_api.api.request_body import read_body
from ml_api.composition import Application
from ml_api.core import metrics
from ml_api.core.protocols.v2 import OpenInferenceProtocol, server_metadata
from ml_api.core.service import PredictionService

bp = Blueprint(shared.APP_NAME, __name__)


def service() -> PredictionService:
    """Return the app's service (the routes' only way to reach the model)."""
    return current_app.extensions["ml_api.service"]


def application() -> Application:
    """Return the app's composed application (V2 endpoints, OpenAPI document, docs page)."""
    return current_app.extensions["ml_api.application"]


def _v2() -> OpenInferenceProtocol:
    return application().open_inference


def _read_body() -> bytes:
    return read_body(
        request.environ,
        request.content_length,
        service().settings.max_body_bytes,
        lambda: request.get_data(cache=False),
    )


@bp.post("/predict")
@bp.post("/predict/")
def predict() -> Response:
    """``POST /predict``: predictions for one instance or a batch (see ``ml_api.core.codecs``)."""
    body = service().predict_http(
        request.headers.get("Content-Type"),
        request.content_length,
        _read_body,
        request.headers.get("Content-Encoding"),
    )
    return json_response(body)


@bp.get("/health")
def health() -> Response:
    """``GET /health``: liveness; never touches the model."""
    return json_response(PredictionService.liveness())


@bp.get("/ready")
def ready() -> Response:
    """``GET /ready``: readiness; 503 while draining before shutdown."""
    return json_response(service().readiness())


@bp.get("/metadata")
def metadata() -> Response:
    """``GET /metadata``: the model card."""
    return json_response(service().metadata())


@bp.get("/model")
def model_card() -> Response:
    """``GET /model``: the model card as a page for people (charts included)."""
    return Response(application().card_html, mimetype="text/html")


@bp.get("/openapi.json")
def openapi() -> Response:
    """``GET /openapi.json``: this API described for tools, features included."""
    return json_response(application().openapi)


@bp.get("/docs")
def docs() -> Response:
    """``GET /docs``: Swagger UI on ``/openapi.json`` (assets served below, no CDN)."""
    return Response(application().docs.page, mimetype="text/html")


@bp.get("/docs/<name>")
def docs_asset(name: str) -> Response:
    """``GET /docs/<name>``: a Swagger UI asset; 404 (JSON) for any other name."""
    body, content_type = application().docs.asset(name)
    return Response(body, content_type=content_type)


@bp.get("/metrics")
def prometheus_metrics() -> Response:
    """``GET /metrics``: Prometheus text format, merged across gunicorn workers."""
    body, content_type = metrics.render()
    return Response(body, status=200, content_type=content_type)


# ---- Open Inference Protocol (KServe V2), on the same core ---------------------------------


@bp.get("/v2")
@bp.get("/v2/")
def v2_server_metadata() -> Response:
    """``GET /v2``: Open Inference Protocol server metadata."""
    return json_response(server_metadata())


@bp.get("/v2/health/live")
def v2_live() -> Response:
    """``GET /v2/health/live``: liveness."""
    return json_response(shared.v2_live())


@bp.get("/v2/health/ready")
def v2_ready() -> Response:
    """``GET /v2/health/ready``: readiness (503 while draining)."""
    return json_response(_v2().server_ready())


@bp.get("/v2/models/<name>")
@bp.get("/v2/models/<name>/versions/<version>")
def v2_model_metadata(name: str, version: str | None = None) -> Response:
    """``GET /v2/models/{name}[/versions/{version}]``: model metadata (tensors)."""
    return json_response(_v2().model_metadata(name, version))


@bp.get("/v2/models/<name>/ready")
@bp.get("/v2/models/<name>/versions/<version>/ready")
def v2_model_ready(name: str, version: str | None = None) -> Response:
    """``GET /v2/models/{name}[/versions/{version}]/ready``: model readiness."""
    return json_response(_v2().model_ready(name, version))


@bp.post("/v2/models/<name>/infer")
@bp.post("/v2/models/<name>/versions/<version>/infer")
def v2_infer(name: str, version: str | None = None) -> Response:
    """``POST /v2/models/{name}[/versions/{version}]/infer``: inference on tensors."""
    body = _v2().infer_http(
        name,
        version,
        request.headers.get("Content-Type"),
        request.content_length,
        _read_body,
        request.headers.get(shared.INFERENCE_HEADER_LENGTH),
        request.headers.get("Content-Encoding"),
    )
    return json_response(body)
