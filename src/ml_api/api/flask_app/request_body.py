"""Reading a request body under Flask the way the core expects it.

Werkzeug caps a body with a ``Content-Length`` at ``MAX_CONTENT_LENGTH`` (a 413, rendered by
:mod:`ml_api.api.flask_app.rendering`). A ``Transfer-Encoding: chunked`` body has no length, and
Werkzeug's capped stream would silently truncate one over the limit, so those (marked by the WSGI
extension ``wsgi.input_terminated``) are read with the core's ``read_capped`` instead, as the
Django adapter does.
"""

from __future__ import annotations

from flask import request

from ml_api.core.codecs import read_capped


def read_body(limit: int) -> bytes:
    """Return the current request's whole body, chunked or not.

    Args:
        limit: Most bytes accepted (``max_body_bytes``, also Flask's ``MAX_CONTENT_LENGTH``).

    Returns:
        The body bytes.

    Raises:
        PayloadTooLarge: (413) a chunked body is longer than ``limit``.
        RequestEntityTooLarge: (413 once rendered) a body with a length is longer than Flask's
            ``MAX_CONTENT_LENGTH`` (the same number).
    """
    if request.content_length is None and request.environ.get("wsgi.input_terminated"):
        return read_capped(request.environ["wsgi.input"], limit)
    return request.get_data(cache=False)
