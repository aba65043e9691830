"""JSON out of the Flask adapter, and every error as the core's envelope.

Three error handlers, registered by :func:`ml_api.api.flask_app.create_app`, produce error
responses, all through :func:`error_response`:

* :func:`on_serving_error` for the core's :class:`~ml_api.core.errors.ServingError`;
* :func:`on_http_exception` for Werkzeug's own HTTP errors (404, 405, 413, ...);
* :func:`on_unexpected` for anything else, as a logged 500.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from flask import Response, current_app, g, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound, RequestEntityTooLarge

from ml_api.api import shared
from ml_api.core.codecs import dumps
from ml_api.core.errors import (
    BodyTooLarge,
    InternalError,
    RouteMethodNotAllowed,
    RouteNotFound,
    ServingError,
    from_http_status,
    to_payload,
    wsgi_path_text,
)

log = logging.getLogger("ml_api.flask")


def json_response(body: Any, status: int = 200) -> Response:
    """Return ``body`` as compact JSON with the core's strict encoder (the bytes Django sends)."""
    return Response(dumps(body), status=status, content_type=shared.JSON)


def error_response(err: ServingError) -> Response:
    """Render ``err`` as the contract's JSON body with its status and headers.

    Args:
        err: The error; ``err.headers`` (``Allow``, ``WWW-Authenticate``) are sent too.

    Returns:
        ``{"error", "details", "request_id"}`` with status ``err.status``.
    """
    ctx = g.get("ml_api_request")
    response = json_response(to_payload(err, ctx.request_id if ctx else None), err.status.value)
    response.headers.update(err.headers)
    return response


def on_serving_error(exc: ServingError) -> Response:
    """Flask error handler for the core's errors: the envelope with the error's status."""
    return error_response(exc)


def on_http_exception(exc: HTTPException) -> Response:
    """Flask error handler for Werkzeug's HTTP errors (404, 405, 413, ...): the envelope."""
    return error_response(as_serving_error(exc))


def as_serving_error(exc: HTTPException) -> ServingError:
    """Map one of Werkzeug's HTTP errors onto the core's hierarchy, with the Django adapter's words.

    Args:
        exc: What Werkzeug raised while routing or reading the current request.

    Returns:
        :class:`~ml_api.core.errors.RouteNotFound` (404),
        :class:`~ml_api.core.errors.RouteMethodNotAllowed` (405, with ``Allow``),
        :class:`~ml_api.core.errors.BodyTooLarge` (413), else the status's reason phrase.
    """
    path = wsgi_path_text(request.environ.get("PATH_INFO", ""))  # as Django's path_info
    if isinstance(exc, NotFound):
        return RouteNotFound(request.method, path)
    if isinstance(exc, MethodNotAllowed):
        return RouteMethodNotAllowed(request.method, path, exc.valid_methods)
    if isinstance(exc, RequestEntityTooLarge):
        return BodyTooLarge(current_app.config["MAX_CONTENT_LENGTH"])
    return from_http_status(exc.code or 500)


def on_unexpected(exc: Exception) -> Response:
    """Flask error handler of last resort: log the traceback, answer 500 with no details."""
    shared.log_unhandled(log, request.method, request.path, exc)
    return error_response(InternalError())


ERROR_HANDLERS: dict[type[Exception], Callable[[Any], Response]] = {
    ServingError: on_serving_error,
    HTTPException: on_http_exception,
    Exception: on_unexpected,
}
"""The app's error handlers by the exception class they handle (most specific first)."""
