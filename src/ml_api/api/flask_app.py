"""The Flask adapter: HTTP in, :class:`~ml_api.core.service.PredictionService` calls, JSON out.

Run it in production with ``ml-api serve`` (gunicorn); ``ml-api serve --dev`` uses Flask's
development server. ``create_app()`` loads the model once, before the app exists, so a process that
answers at all has its model.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Flask, Response, current_app, g, request
from werkzeug.exceptions import HTTPException

from ml_api.core import metrics, telemetry
from ml_api.core.codecs import dumps, read_capped
from ml_api.core.errors import InternalError, ServingError, from_http_status, to_payload
from ml_api.core.open_inference import OpenInferenceProtocol, server_metadata
from ml_api.core.service import PredictionService
from ml_api.settings import Settings

log = logging.getLogger("ml_api.flask")
bp = Blueprint("ml_api", __name__)


def _service() -> PredictionService:
    return current_app.extensions["ml_api.service"]


def _json(body: Any, status: int = 200) -> Response:
    return Response(dumps(body), status=status, mimetype="application/json")


@bp.post("/predict")
@bp.post("/predict/")
def predict() -> Response:
    """``POST /predict``: predictions for one instance or a batch (see ``ml_api.core.codecs``)."""
    service = _service()
    body = service.predict_http(
        request.headers.get("Content-Type"),
        request.content_length,
        lambda: _read_body(service.settings.max_body_bytes),
    )
    return _json(body)


def _read_body(limit: int) -> bytes:
    if request.content_length is None and request.environ.get("wsgi.input_terminated"):
        # Chunked: Werkzeug's capped stream would silently truncate a body over the limit.
        return read_capped(request.environ["wsgi.input"], limit)
    return request.get_data(cache=False)


@bp.get("/health")
def health() -> Response:
    """``GET /health``: liveness; never touches the model."""
    return _json(PredictionService.liveness())


@bp.get("/ready")
def ready() -> Response:
    """``GET /ready``: readiness; 503 while draining before shutdown."""
    return _json(_service().readiness())


@bp.get("/metadata")
def metadata() -> Response:
    """``GET /metadata``: the model card."""
    return _json(_service().metadata())


@bp.get("/openapi.json")
def openapi() -> Response:
    """``GET /openapi.json``: this API described for tools, features included."""
    return _json(_service().openapi)


@bp.get("/docs")
def docs() -> Response:
    """``GET /docs``: the same, as a self-contained HTML page."""
    return Response(_service().docs_html, mimetype="text/html")


@bp.get("/metrics")
def prometheus_metrics() -> Response:
    """``GET /metrics``: Prometheus text format, merged across gunicorn workers."""
    body, content_type = metrics.render()
    return Response(body, status=200, content_type=content_type)


def _v2() -> OpenInferenceProtocol:
    return _service().open_inference


@bp.get("/v2")
@bp.get("/v2/")
def v2_server_metadata() -> Response:
    """``GET /v2``: Open Inference Protocol server metadata."""
    return _json(server_metadata())


@bp.get("/v2/health/live")
def v2_live() -> Response:
    """``GET /v2/health/live``: liveness."""
    return _json({"live": True})


@bp.get("/v2/health/ready")
def v2_ready() -> Response:
    """``GET /v2/health/ready``: readiness (503 while draining)."""
    return _json(_v2().server_ready())


@bp.get("/v2/models/<name>")
@bp.get("/v2/models/<name>/versions/<version>")
def v2_model_metadata(name: str, version: str | None = None) -> Response:
    """``GET /v2/models/{name}[/versions/{version}]``: model metadata (tensors)."""
    return _json(_v2().model_metadata(name, version))


@bp.get("/v2/models/<name>/ready")
@bp.get("/v2/models/<name>/versions/<version>/ready")
def v2_model_ready(name: str, version: str | None = None) -> Response:
    """``GET /v2/models/{name}[/versions/{version}]/ready``: model readiness."""
    return _json(_v2().model_ready(name, version))


@bp.post("/v2/models/<name>/infer")
@bp.post("/v2/models/<name>/versions/<version>/infer")
def v2_infer(name: str, version: str | None = None) -> Response:
    """``POST /v2/models/{name}[/versions/{version}]/infer``: inference on tensors."""
    body = _v2().infer_http(
        name,
        version,
        request.headers.get("Content-Type"),
        request.content_length,
        lambda: _read_body(_service().settings.max_body_bytes),
        request.headers.get("Inference-Header-Content-Length"),
    )
    return _json(body)


def _render_error(exc: ServingError) -> Response:
    ctx = g.get("ml_api_request")
    response = _json(to_payload(exc, ctx.request_id if ctx else None), exc.status.value)
    response.headers.update(exc.headers)
    return response


def _on_serving_error(exc: ServingError) -> Response:
    return _render_error(exc)


def _on_http_exception(exc: HTTPException) -> Response:
    err = from_http_status(exc.code or 500, _describe(exc))
    if exc.code == 405 and exc.valid_methods:
        err.headers["Allow"] = ", ".join(sorted(exc.valid_methods))
    return _render_error(err)


def _describe(exc: HTTPException) -> str | None:
    if exc.code == 404:
        return f"no route {request.method} {request.path}; see GET /openapi.json"
    if exc.code == 405:
        return f"method {request.method} is not allowed on {request.path}"
    if exc.code == 413:
        limit = current_app.config["MAX_CONTENT_LENGTH"]
        return f"request body is larger than the limit of {limit} bytes"
    return None


def _on_unexpected(exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.path)
    return _render_error(InternalError())


def create_app(settings: Settings | None = None, service: PredictionService | None = None) -> Flask:
    """Build the Flask application.

    Args:
        settings: Configuration; read from the environment when ``None``.
        service: A ready service (tests, or a gunicorn master that already loaded the model);
            built from ``settings`` when ``None``.

    Returns:
        The WSGI application.

    Raises:
        ArtifactError: ``service`` is ``None`` and the configured model cannot be loaded.
    """
    settings = settings or Settings()
    service = service or PredictionService.from_settings(settings)
    app = Flask("ml_api")
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json.sort_keys = False
    app.extensions["ml_api.service"] = service
    app.url_map.merge_slashes = False  # POST /predict// is a JSON 404, not an HTML 308 redirect
    app.register_blueprint(bp)
    app.register_error_handler(ServingError, _on_serving_error)
    app.register_error_handler(HTTPException, _on_http_exception)
    app.register_error_handler(Exception, _on_unexpected)

    @app.before_request
    def _begin() -> None:
        g.ml_api_request = telemetry.begin_request(
            request.method, request.path, request.headers.get("X-Request-ID")
        )
        service.authenticate(
            request.path, request.headers.get("Authorization"), request.headers.get("X-API-Key")
        )

    @app.after_request
    def _end(response: Response) -> Response:
        ctx = g.pop("ml_api_request", None)
        if ctx is not None:
            response.headers["X-Request-ID"] = ctx.request_id
            rule = request.url_rule.rule if request.url_rule is not None else None
            telemetry.end_request(ctx, response.status_code, rule)
        return response

    return app
