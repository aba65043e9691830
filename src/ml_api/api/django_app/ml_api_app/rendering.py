"""JSON in and out of the Django adapter, and every error as the core's envelope.

Three entry points produce error responses, all through :func:`error_response`:

* DRF's ``EXCEPTION_HANDLER`` (:func:`exception_handler`) for anything raised in a DRF view: the
  core's :class:`~ml_api.core.errors.ServingError`, DRF's own exceptions (parse, media type,
  method, ...), Django's ``Http404``, ``PermissionDenied``, ``RequestDataTooBig`` and other
  ``SuspiciousOperation``, and, as a logged 500, anything else;
* Django's ``handler400/403/404/500`` (:func:`bad_request` ...) for errors outside the views;
* the middleware's host check.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig, SuspiciousOperation
from django.http import Http404, HttpRequest, HttpResponse
from rest_framework import exceptions as drf
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer

from ml_api.api import shared
from ml_api.core.codecs import dumps
from ml_api.core.errors import (
    BadRequest,
    BodyTooLarge,
    InternalError,
    RouteMethodNotAllowed,
    RouteNotFound,
    ServingError,
    from_http_status,
    to_payload,
)
from ml_api.core.service import request_id_from

log = logging.getLogger("ml_api.django")


class CoreJSONRenderer(BaseRenderer):
    """Renders with the core's strict, compact encoder: the same bytes Flask sends."""

    media_type = shared.JSON
    format = "json"
    charset = None

    def render(
        self,
        data: Any,
        accepted_media_type: str | None = None,
        renderer_context: Mapping[str, Any] | None = None,
    ) -> bytes:
        """Return ``data`` as UTF-8 JSON (``b""`` for ``None``)."""
        return b"" if data is None else dumps(data)


class AlwaysJSON(DefaultContentNegotiation):
    """Content negotiation that ignores ``Accept``: the API speaks JSON only, as Flask does.

    DRF's default would answer 406 to ``Accept: text/html``; Flask ignores the header. Parsers
    are still chosen by ``Content-Type`` (DRF's default), for views that read ``request.data``.
    """

    def select_renderer(
        self, request: Any, renderers: Iterable[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        """Return the first configured renderer and its media type."""
        first = next(iter(renderers))
        return first, first.media_type


def json_response(body: Any) -> HttpResponse:
    """A 200 with ``body`` as the core's JSON: the response DRF's ``Response(body)`` renders to.

    Same status, ``Content-Type`` (``application/json``, no charset) and bytes (the
    :class:`CoreJSONRenderer` encoder), without DRF's per-response template-response rendering;
    the hot views (``/predict``, V2 infer) answer with it.
    """
    return HttpResponse(dumps(body), content_type=shared.JSON)


def _django_request(request: Any) -> HttpRequest:
    return getattr(request, "_request", request)  # a DRF Request wraps Django's


def error_response(request: Any, err: ServingError) -> HttpResponse:
    """Render ``err`` as the contract's JSON body with its status and headers.

    Args:
        request: Django's ``HttpRequest`` or DRF's ``Request``.
        err: The error; ``err.headers`` (``Allow``, ``WWW-Authenticate``) are sent too.

    Returns:
        ``{"error", "details", "request_id"}`` with status ``err.status``.
    """
    raw = _django_request(request)
    request_id = getattr(raw, "request_id", None)
    if request_id is None:  # an error before TelemetryMiddleware ran
        request_id = request_id_from(raw.headers.get(shared.REQUEST_ID_HEADER))
        raw.request_id = request_id  # type: ignore[attr-defined]  # as TelemetryMiddleware sets it
    response = HttpResponse(
        dumps(to_payload(err, request_id)),
        status=err.status.value,
        content_type=shared.JSON,
    )
    for name, value in err.headers.items():
        response[name] = value
    return response


def route_not_found(request: Any) -> RouteNotFound:
    """The 404 for a path no route matches (the same words Flask uses)."""
    return RouteNotFound(request.method, request.path_info)  # broken UTF-8 as %XX


def _one_line(detail: Any) -> str:
    if isinstance(detail, dict):
        return "; ".join(f"{k}: {_one_line(v)}" for k, v in detail.items())
    if isinstance(detail, list):
        return "; ".join(_one_line(v) for v in detail)
    return " ".join(str(detail).split())


def as_serving_error(exc: Exception, request: Any, view: Any = None) -> ServingError:
    """Map any exception raised while answering ``request`` onto the core's hierarchy.

    Args:
        exc: What was raised.
        request: The request being answered.
        view: The DRF view, when there is one (gives ``Allow`` for 405).

    Returns:
        The error to render; an unexpected exception is logged with its traceback and becomes
        :class:`~ml_api.core.errors.InternalError` (500, no details leak).
    """
    if isinstance(exc, ServingError):
        return exc
    if isinstance(exc, RequestDataTooBig):
        return BodyTooLarge(settings.DATA_UPLOAD_MAX_MEMORY_SIZE)
    if isinstance(exc, drf.MethodNotAllowed):
        allowed = view.allowed_methods if view is not None else None
        return RouteMethodNotAllowed(request.method, request.path_info, allowed)
    if isinstance(exc, Http404 | drf.NotFound):
        return route_not_found(request)
    if isinstance(exc, drf.APIException):
        err = from_http_status(exc.status_code, _one_line(exc.detail))
        auth_header = getattr(exc, "auth_header", None)  # NotAuthenticated, AuthenticationFailed
        if auth_header:
            err.headers["WWW-Authenticate"] = auth_header
        return err
    if isinstance(exc, PermissionDenied):
        return from_http_status(403)
    if isinstance(exc, SuspiciousOperation):
        return BadRequest("bad request")
    shared.log_unhandled(log, request.method, request.path_info, exc)
    return InternalError()


def exception_handler(exc: Exception, context: dict[str, Any]) -> HttpResponse:
    """DRF's ``EXCEPTION_HANDLER``: every exception in a view becomes the JSON envelope.

    Args:
        exc: What the view (or DRF around it) raised.
        context: DRF's context, with ``request`` and ``view``.

    Returns:
        The error response (never ``None``, so DRF never falls back to Django's error pages).
    """
    request = context["request"]
    return error_response(request, as_serving_error(exc, request, context.get("view")))


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    """Django's ``handler400`` (a ``SuspiciousOperation`` outside the views): JSON 400."""
    return error_response(request, as_serving_error(exception, request))


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    """Django's ``handler403``: JSON 403."""
    return error_response(request, from_http_status(403))


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """Django's ``handler404``: JSON 404."""
    return error_response(request, route_not_found(request))


def server_error(request: HttpRequest) -> HttpResponse:
    """Django's ``handler500`` (Django already logged the exception): JSON 500, no traceback."""
    return error_response(request, InternalError())
