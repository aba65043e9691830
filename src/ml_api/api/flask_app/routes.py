"""The Flask routes, bound in one loop from the core's endpoint table.

Each row of :data:`ml_api.core.protocols.routes.ENDPOINTS` becomes one Flask endpoint on every one
of its paths: the view builds the core's :class:`~ml_api.core.protocols.request.Request` from
Flask's request, calls the row's handler with the app's composed application, and renders its
:class:`~ml_api.core.protocols.request.Reply`. Errors are raised, never rendered here:
:mod:`ml_api.api.flask_app.rendering` turns them into the JSON envelope, with the same status and
body as the Django adapter.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Blueprint, Response, current_app, request
from flask import Request as FlaskRequest

from ml_api.api import shared
from ml_api.api.flask_app.rendering import json_response
from ml_api.composition import Application
from ml_api.core.protocols.body import read_wsgi_body
from ml_api.core.protocols.request import Reply, Request
from ml_api.core.protocols.routes import ENDPOINTS, Endpoint, angle_brackets

bp = Blueprint(shared.APP_NAME, __name__)


def application() -> Application:
    """Return the app's composed application (the routes' only way to reach the model)."""
    return current_app.extensions["ml_api.application"]


def current_request() -> FlaskRequest:
    """Flask's request object itself: one context lookup, not one per attribute read.

    ``flask.request`` is a Werkzeug ``LocalProxy``; every attribute read through it looks the
    request context up again.
    """
    return request._get_current_object()  # type: ignore[attr-defined]  # a LocalProxy at runtime


def _body_reader(req: FlaskRequest, length: int | None, app: Application) -> Callable[[], bytes]:
    """Reads ``req``'s body on demand (only the routes with a body call it), through Flask."""
    return lambda: read_wsgi_body(
        req.environ,
        length,
        app.service.limits.max_body_bytes,
        lambda: req.get_data(cache=False),
    )


def render(reply: Reply) -> Response:
    """A handler's reply as Flask's response: JSON (the core's encoder) or the bytes as they are."""
    if reply.content_type is None:
        return json_response(reply.body)
    return Response(
        reply.body,
        status=reply.status,
        headers=dict(reply.headers),
        content_type=reply.content_type,
    )


def view(endpoint: Endpoint) -> Callable[..., Response]:
    """The Flask view answering ``endpoint`` (the path's parameters as keyword arguments)."""

    def answer(**params: str) -> Response:
        req = current_request()
        app = application()
        length = req.content_length
        core_request = Request(
            req.headers, length, _body_reader(req, length, app), params, req.path
        )
        return render(endpoint.handler(app, core_request))

    answer.__name__ = endpoint.name
    answer.__doc__ = f"``{' '.join(endpoint.methods)} {endpoint.paths[0]}``: {endpoint.summary}."
    return answer


VIEWS = tuple(f"{bp.name}.{endpoint.name}" for endpoint in ENDPOINTS)
"""The blueprint's endpoint names, one per row of the endpoint table."""

for _endpoint in ENDPOINTS:
    _view = view(_endpoint)
    for _path in _endpoint.paths:
        bp.add_url_rule(
            angle_brackets(_path), _endpoint.name, _view, methods=list(_endpoint.methods)
        )
