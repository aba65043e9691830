"""Reading a request body the way the core expects it, in both adapters (both are WSGI apps).

A body with a ``Content-Length`` is read by the framework, which caps it at the same limit the
core uses: Werkzeug's ``MAX_CONTENT_LENGTH`` (``RequestEntityTooLarge``) under Flask, Django's
``DATA_UPLOAD_MAX_MEMORY_SIZE`` (``RequestDataTooBig``), both rendered as the same 413. A
``Transfer-Encoding: chunked`` body has no length: gunicorn and Werkzeug mark it with the WSGI
extension ``wsgi.input_terminated``, Werkzeug's capped stream would silently truncate it at the
limit and Django's ``WSGIRequest`` would read nothing, so it is read here with the core's
:func:`~ml_api.core.codecs.read_capped` (413 past the limit).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ml_api.core.codecs import read_capped


def content_length(environ: Mapping[str, Any]) -> int | None:
    """The declared ``Content-Length`` in bytes, or ``None`` when absent or not a number.

    Args:
        environ: The WSGI environ (Django's ``request.META``).
    """
    try:
        return int(environ["CONTENT_LENGTH"])
    except (KeyError, TypeError, ValueError):
        return None


def read_body(
    environ: Mapping[str, Any],
    declared_length: int | None,
    limit: int,
    read_declared: Callable[[], bytes],
) -> bytes:
    """Return the whole body, chunked or not.

    Args:
        environ: The WSGI environ of the request.
        declared_length: Its ``Content-Length`` in bytes, ``None`` when it has none.
        limit: Most bytes accepted (``Settings.max_body_bytes``; the framework's own cap is the
            same number).
        read_declared: Reads the body through the framework (used unless the body is chunked).

    Returns:
        The body bytes.

    Raises:
        BodyTooLarge: (413) a chunked body is longer than ``limit``.
        RequestEntityTooLarge, RequestDataTooBig: (413 once rendered) raised by ``read_declared``
            for a body with a length over the framework's cap.
    """
    if declared_length is None and environ.get("wsgi.input_terminated"):
        return read_capped(environ["wsgi.input"], limit)
    return read_declared()
