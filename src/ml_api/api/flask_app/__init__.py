"""The Flask adapter: HTTP in, :class:`~ml_api.core.service.PredictionService` calls, JSON out.

Laid out like the Django adapter beside it (:mod:`ml_api.api.django_app`), file for file:

=============================  =====================================================
Flask (``flask_app/``)         Django (``django_app/``)
=============================  =====================================================
``__init__.py``: create_app    ``__init__.py``, ``settings.py``, ``wsgi.py``
request hooks in create_app    ``middleware.py``
``routes.py``                  ``ml_api_app/urls.py`` and ``ml_api_app/views.py``
``rendering.py``               ``ml_api_app/rendering.py``
=============================  =====================================================

Both bind their routes from the core's endpoint table (:mod:`ml_api.core.protocols.routes`) and
use :mod:`ml_api.api.shared` (header names, media type, wording).

Run it in production with ``ml-api serve`` (gunicorn), or any WSGI server with
``ml_api.api.flask_app:create_app()``; ``ml-api serve --dev`` uses Flask's development server.
``create_app()`` loads the model once, before the app exists, so a process that answers at all has
its model.
"""

from __future__ import annotations

from flask import Flask, Response, g, request
from flask.json.provider import DefaultJSONProvider
from flask_cors import CORS
from werkzeug.exceptions import HTTPException

from ml_api.api import shared
from ml_api.api.flask_app import rendering
from ml_api.api.flask_app.routes import bp
from ml_api.composition import Application, build
from ml_api.core import telemetry
from ml_api.core.errors import ServingError
from ml_api.core.protocols.request import authenticate
from ml_api.core.service import PredictionService
from ml_api.settings import (
    CORS_ALLOW_HEADERS,
    CORS_ALLOW_METHODS,
    CORS_EXPOSE_HEADERS,
    CORS_MAX_AGE_SECONDS,
    Settings,
)

__all__ = ["create_app"]


def create_app(
    settings: Settings | None = None,
    service: PredictionService | None = None,
    *,
    application: Application | None = None,
) -> Flask:
    """Build the Flask application.

    Args:
        settings: Configuration; read from the environment when ``None``.
        service: A ready service (tests); wrapped by :func:`ml_api.composition.build`.
        application: The composed application (``ml-api serve``: the gunicorn master built it);
            built by :func:`ml_api.composition.build` from ``settings`` (and ``service``) when
            ``None``.

    Returns:
        The WSGI application.

    Raises:
        ArtifactError: ``service`` is ``None`` and the configured model cannot be loaded.
    """
    settings = settings or Settings()
    application = application or build(settings, service=service)
    app = Flask(shared.APP_NAME)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    if isinstance(app.json, DefaultJSONProvider):  # Flask's default provider, always here
        app.json.sort_keys = False
    app.extensions["ml_api.application"] = application
    app.url_map.merge_slashes = False  # POST /predict// is a JSON 404, not an HTML 308 redirect
    app.register_blueprint(bp)
    app.register_error_handler(ServingError, rendering.on_serving_error)
    app.register_error_handler(HTTPException, rendering.on_http_exception)
    app.register_error_handler(Exception, rendering.on_unexpected)

    cors = bool(settings.cors_origins)
    if cors:
        CORS(
            app,
            origins="*" if "*" in settings.cors_origins else list(settings.cors_origins),
            allow_headers=list(CORS_ALLOW_HEADERS),
            methods=list(CORS_ALLOW_METHODS),
            expose_headers=list(CORS_EXPOSE_HEADERS),
            max_age=CORS_MAX_AGE_SECONDS,
            vary_header=True,
        )

    @app.before_request
    def _begin() -> None:
        g.ml_api_request = shared.begin_request(request.method, request.path, request.headers)
        if cors and shared.is_preflight(request.method, request.headers):
            return  # a browser's preflight carries no credentials; the real request does
        authenticate(application.auth, request.path, request.headers)

    @app.after_request
    def _end(response: Response) -> Response:
        if cors:
            response.vary.add("Origin")  # as django-cors-headers: the answer depends on Origin
        ctx = g.pop("ml_api_request", None)
        if ctx is not None:
            response.headers[shared.REQUEST_ID_HEADER] = ctx.request_id
            rule = request.url_rule.rule if request.url_rule is not None else None
            telemetry.end_request(ctx, response.status_code, rule)
        return response

    return app
