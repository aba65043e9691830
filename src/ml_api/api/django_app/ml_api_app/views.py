"""The DRF views: one class per row of the core's endpoint table, made in one loop.

Each view builds the core's :class:`~ml_api.core.protocols.request.Request` from Django's, calls
the row's handler (:mod:`ml_api.core.protocols.routes`) with the process's composed application
and renders its :class:`~ml_api.core.protocols.request.Reply`. Errors are raised, never rendered
here: ``rendering.exception_handler`` turns them into the JSON envelope, with the same status and
body as the Flask adapter. Successful JSON answers are built with ``rendering.json_response`` (the
bytes DRF's ``Response`` rendered to, without its template response machinery on every request).
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from rest_framework.request import Request
from rest_framework.views import APIView

from ml_api.api import shared
from ml_api.api.django_app import runtime
from ml_api.api.django_app.ml_api_app.rendering import (
    error_response,
    json_response,
    route_not_found,
)
from ml_api.composition import Application
from ml_api.core.errors import allow_header
from ml_api.core.protocols.body import content_length, read_wsgi_body
from ml_api.core.protocols.request import Reply
from ml_api.core.protocols.request import Request as CoreRequest
from ml_api.core.protocols.routes import ENDPOINTS, Endpoint


class JSONView(APIView):
    """A DRF view that answers like the Flask adapter: no ``Allow`` on success, plain OPTIONS."""

    @property
    def default_response_headers(self) -> dict[str, str]:
        """No extra headers (DRF adds ``Allow`` to every response; Flask only to 405/OPTIONS)."""
        return {}

    def perform_authentication(self, request: Request) -> None:
        """Nothing: no authentication classes are configured (the API-key check is middleware).

        DRF's own step would resolve ``request.user`` to ``None`` on every request; left lazy,
        as DRF's documentation suggests for views that never read it.
        """

    def options(  # type: ignore[override]  # a plain HttpResponse, as Django allows
        self, request: Request, *args: Any, **kwargs: Any
    ) -> HttpResponse:
        """``OPTIONS``: an empty 200 with ``Allow``, as Flask answers it."""
        return HttpResponse(headers={"Allow": allow_header(self.allowed_methods)})


def render(reply: Reply) -> HttpResponse:
    """A handler's reply as Django's response: JSON (the core's encoder) or the bytes as is."""
    if reply.content_type is None:
        return json_response(reply.body)
    return HttpResponse(
        reply.body,
        status=reply.status,
        headers=dict(reply.headers),
        content_type=reply.content_type,
    )


def core_request(
    request: Request, params: dict[str, str], application: Application | None = None
) -> CoreRequest:
    """The core's view of a DRF request: headers straight from ``META``, the body read on demand.

    Args:
        request: DRF's request.
        params: The path's parameters.
        application: The process's application (:func:`runtime.application` when ``None``); its
            body limit is read only when the body is.
    """
    raw = request._request  # Django's request under DRF's wrapper
    meta = raw.META
    length = content_length(meta)
    app = application or runtime.application()
    return CoreRequest(
        shared.EnvironHeaders(meta),  # not request.headers: see EnvironHeaders
        length,
        lambda: read_wsgi_body(meta, length, app.service.limits.max_body_bytes, lambda: raw.body),
        params,
        raw.path,
    )


def view_class(endpoint: Endpoint) -> type[JSONView]:
    """A view class answering ``endpoint``'s methods with its handler."""

    def answer(self: JSONView, request: Request, **params: str) -> HttpResponse:
        app = runtime.application()
        return render(endpoint.handler(app, core_request(request, params, app)))

    name = "".join(part.title() for part in endpoint.name.split("_")) + "View"
    doc = f"``{' '.join(endpoint.methods)} {endpoint.paths[0]}``: {endpoint.summary}."
    attributes: dict[str, object] = {m.lower(): answer for m in endpoint.methods}
    return type(name, (JSONView,), {**attributes, "__doc__": doc, "__module__": __name__})


VIEWS = {endpoint.name: view_class(endpoint).as_view() for endpoint in ENDPOINTS}
"""One DRF view per endpoint of the table, by endpoint name (``ml_api_app/urls.py`` binds them)."""


def not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
    """Any path no other route matches, any method: the JSON 404 (also with ``DEBUG`` on)."""
    return error_response(request, route_not_found(request))
