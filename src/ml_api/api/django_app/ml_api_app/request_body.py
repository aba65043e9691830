"""Reading a request body under Django the way the core expects it.

Django's ``WSGIRequest`` reads nothing when there is no ``Content-Length``, but gunicorn (and
Werkzeug, so Flask) accept ``Transfer-Encoding: chunked`` bodies and mark them with the WSGI
extension ``wsgi.input_terminated``. Those are read with the core's ``read_capped`` (413 past the
limit, as in Flask); bodies with a length go through Django's ``request.body``, which enforces
``DATA_UPLOAD_MAX_MEMORY_SIZE`` (``RequestDataTooBig``, rendered as the same 413).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.http import HttpRequest

from ml_api.core.codecs import read_capped


def content_length(meta: Mapping[str, Any]) -> int | None:
    """The declared ``Content-Length`` in bytes, or ``None`` when absent or not a number."""
    try:
        return int(meta["CONTENT_LENGTH"])
    except (KeyError, TypeError, ValueError):
        return None


def read_body(request: HttpRequest, limit: int) -> bytes:
    """Return the whole body, chunked or not.

    Args:
        request: Django's request (not DRF's wrapper).
        limit: Most bytes accepted (``max_body_bytes``, also Django's
            ``DATA_UPLOAD_MAX_MEMORY_SIZE``).

    Returns:
        The body bytes.

    Raises:
        PayloadTooLarge: (413) a chunked body is longer than ``limit``.
        RequestDataTooBig: (413 once rendered) a body with a length is longer than Django's
            ``DATA_UPLOAD_MAX_MEMORY_SIZE`` (the same number).
    """
    meta = request.META
    if content_length(meta) is None and meta.get("wsgi.input_terminated"):
        return read_capped(meta["wsgi.input"], limit)
    return request.body
