"""Per-request bookkeeping shared by both adapters: request id, access log record, HTTP metrics.

An adapter calls :func:`begin_request` when a request arrives and :func:`end_request` with the
status when its response is ready. In between, the request id is in a context variable that a
logging filter (``ml_api.serving.logging``) copies into every log record, and the core adds the
instance count and model version to the request's access record.
"""

from __future__ import annotations

import logging
import time

from ml_api.core import metrics
from ml_api.core.context import RequestContext, enter, leave, request_id_from

access_log = logging.getLogger("ml_api.access")


def begin_request(method: str, path: str, request_id_header: str | None) -> RequestContext:
    """Start tracking a request.

    Args:
        method: HTTP method.
        path: Request path.
        request_id_header: The ``X-Request-ID`` header, or ``None``.

    Returns:
        The context; pass it to :func:`end_request`.
    """
    ctx = RequestContext(request_id_from(request_id_header), method, path)
    enter(ctx)
    metrics.IN_FLIGHT.inc()
    return ctx


def normalize_route(route: str | None) -> str:
    """Return a bounded metrics label for a route template.

    ``/predict/`` and ``/predict`` are one route; an unmatched path is ``<unmatched>`` so that
    scanners cannot create a label value per URL.
    """
    if not route:
        return "<unmatched>"
    route = "/" + route.strip("/")
    return route


def end_request(ctx: RequestContext, status: int, route: str | None) -> None:
    """Finish a request: record HTTP metrics and write its access record.

    Args:
        ctx: From :func:`begin_request`.
        status: HTTP status code sent.
        route: The matched route template (``None`` when nothing matched).
    """
    duration = time.perf_counter() - ctx.started
    label = normalize_route(route)
    metrics.IN_FLIGHT.dec()
    metrics.record_http(ctx.method, label, status, duration)
    level = logging.ERROR if status == 500 else logging.WARNING if status > 500 else logging.INFO
    access_log.log(
        level,
        "%s %s %d",
        ctx.method,
        ctx.path,
        status,
        extra={
            "request_id": ctx.request_id,
            "method": ctx.method,
            "path": ctx.path,
            "route": label,
            "status": status,
            "duration_ms": round(duration * 1000, 3),
            "instances": ctx.instances,
            "model_version": ctx.model_version,
        },
    )
    leave(ctx)
