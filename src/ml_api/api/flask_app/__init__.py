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

from collections.abc import Callable
from inspect import iscoroutinefunction
from typing import Any

from flask import Flask, Response, g, request
from flask.json.provider import DefaultJSONProvider
from flask_cors import CORS

from ml_api.api import shared
from ml_api.api.flask_app import rendering
from ml_api.api.flask_app.routes import VIEWS, bp, current_request
from ml_api.composition import Application, build
from ml_api.core import telemetry
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


class _Flask(Flask):
    """Flask, without the per-request coroutine check on ml-api's own functions.

    Flask's :meth:`~flask.Flask.ensure_sync` (its documented override point for async views)
    asks :func:`inspect.iscoroutinefunction` about every hook, view and error handler it calls,
    on every request (about a microsecond each). ml-api's are plain functions known when the app
    is built (:meth:`plain`); they are returned as they are. Anything else (a hook or an
    ``async`` view a user adds) still goes through Flask's own check.
    """

    def __init__(self, import_name: str) -> None:
        super().__init__(import_name)
        self._plain: dict[int, Callable[..., Any]] = {}  # by id; the values keep the ids valid

    def plain(self, *funcs: Callable[..., Any]) -> None:
        """Mark ``funcs`` as plain (``def``) functions: :meth:`ensure_sync` returns them as is."""
        for func in funcs:
            if not iscoroutinefunction(func):
                self._plain[id(func)] = func

    def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        """``func`` itself if it is one of :meth:`plain`'s, else Flask's own answer."""
        if id(func) in self._plain:
            return func
        return super().ensure_sync(func)


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
    app = _Flask(shared.APP_NAME)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    if isinstance(app.json, DefaultJSONProvider):  # Flask's default provider, always here
        app.json.sort_keys = False
    app.extensions["ml_api.application"] = application
    app.url_map.merge_slashes = False  # POST /predict// is a JSON 404, not an HTML 308 redirect
    app.register_blueprint(bp)
    for exception, handler in rendering.ERROR_HANDLERS.items():
        app.register_error_handler(exception, handler)

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

    auth = application.auth

    @app.before_request
    def _begin() -> None:
        req = current_request()
        headers = req.headers
        g.ml_api_request = shared.begin_request(req.method, req.path, headers)
        if cors and shared.is_preflight(req.method, headers):
            return  # a browser's preflight carries no credentials; the real request does
        if auth.enabled:  # decided when the keys were configured (ApiKeyAuth.enabled)
            authenticate(auth, req.path, headers)

    @app.after_request
    def _end(response: Response) -> Response:
        if cors:
            response.vary.add("Origin")  # as django-cors-headers: the answer depends on Origin
        ctx = g.pop("ml_api_request", None)
        if ctx is not None:
            response.headers[shared.REQUEST_ID_HEADER] = ctx.request_id
            rule = request.url_rule
            telemetry.end_request(
                ctx, response.status_code, rule.rule if rule is not None else None
            )
        return response

    app.plain(_begin, _end, *rendering.ERROR_HANDLERS.values())
    app.plain(*(app.view_functions[endpoint] for endpoint in VIEWS))
    return app
