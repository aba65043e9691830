"""What the Flask and Django adapters share, written once: header names, media type, wording.

Each adapter reads its framework's request and calls these with plain values; both frameworks'
``request.headers`` are case-insensitive mappings (:class:`~ml_api.core.protocols.request.Headers`),
which is all these need. The routes are the core's endpoint table, bound by each adapter in its
framework's syntax (:mod:`ml_api.api.flask_app.routes`,
:mod:`ml_api.api.django_app.ml_api_app.urls`); the parity suite in ``tests/contract`` checks that
they answer alike.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from ml_api.core import telemetry
from ml_api.core.context import RequestContext
from ml_api.core.protocols.request import Headers


class EnvironHeaders:
    """Request headers read straight from a WSGI environ (Django's ``request.META``).

    Django's ``request.headers`` builds a dict of every header from ``META`` on first use; the
    middleware and views need three or four headers, so they look those up here instead, with the
    same answers: ``HttpHeaders`` is built from the same ``HTTP_*`` keys (``Content-Type`` and
    ``Content-Length`` without the prefix), so ``get`` returns the same value or ``None``.

    Args:
        environ: The WSGI environ.
    """

    __slots__ = ("_environ",)

    _UNPREFIXED = frozenset({"CONTENT_TYPE", "CONTENT_LENGTH"})

    def __init__(self, environ: Mapping[str, Any]) -> None:
        self._environ = environ

    def get(self, key: str, /) -> str | None:
        """Return the header's value (any spelling of its name), or ``None`` when absent."""
        name = key.upper().replace("-", "_")
        value: str | None = self._environ.get(name if name in self._UNPREFIXED else "HTTP_" + name)
        return value


APP_NAME = "ml_api"
"""The Flask app's and blueprint's name, and the Django app's label."""

JSON = "application/json"
"""The media type of every JSON response (no ``charset``: JSON is UTF-8 by definition)."""

REQUEST_ID_HEADER = "X-Request-ID"
"""Echoed on every response (the client's own id if it sent one, else a new one)."""


def is_preflight(method: str, headers: Headers) -> bool:
    """Whether a request is a browser's CORS preflight (it carries no credentials).

    With ``ML_API_CORS_ORIGINS`` set, the Flask adapter answers it without the API-key check;
    in Django, django-cors-headers' middleware answers it before that check runs.

    Args:
        method: The HTTP method.
        headers: The request headers.

    Returns:
        ``True`` for ``OPTIONS`` with ``Origin`` and ``Access-Control-Request-Method``.
    """
    return (
        method == "OPTIONS"
        and headers.get("Origin") is not None
        and headers.get("Access-Control-Request-Method") is not None
    )


def begin_request(method: str, path: str, headers: Headers) -> RequestContext:
    """Start tracking a request (id, access record, metrics): :func:`telemetry.begin_request`.

    Args:
        method: The HTTP method.
        path: The request path (Django: ``path_info``).
        headers: The request headers; ``X-Request-ID`` is taken from them when present.

    Returns:
        The context; the adapter sends ``ctx.request_id`` as :data:`REQUEST_ID_HEADER` and passes
        the context to ``telemetry.end_request``.
    """
    return telemetry.begin_request(method, path, headers.get(REQUEST_ID_HEADER))


def log_unhandled(log: logging.Logger, method: str, path: str, exc: BaseException) -> None:
    """Log an exception no handler expected, with its traceback (the client gets a bare 500).

    Args:
        log: The adapter's logger.
        method: The request's HTTP method.
        path: The request path.
        exc: What was raised.
    """
    log.error("unhandled error on %s %s", method, path, exc_info=exc)
