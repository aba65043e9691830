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
from ml_api.core.context import RequestContext, current, enter, leave, request_id_from

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
    metrics.IN_FLIGHT.inc()
    ctx.tally = []  # the request's counter and histogram writes, applied by end_request
    enter(ctx)
    return ctx


METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE", "CONNECT"}
)
"""The ``method`` label's values besides :data:`OTHER`: the methods RFC 9110 and RFC 5789 define."""

OTHER = "other"
"""The label value of anything outside a label's closed set (a made-up method, say)."""

CLIENT_CLOSED = 499
"""Status recorded (metrics, access record) for a request whose client went away mid-body:
nginx's "client closed request". The response the server still tries to write says 400."""


def method_label(method: str) -> str:
    """Return ``method`` if it is one of :data:`METHODS`, else :data:`OTHER` (a bounded label)."""
    return method if method in METHODS else OTHER


def client_closed() -> None:
    """Mark the current request as abandoned by its client (recorded as :data:`CLIENT_CLOSED`)."""
    ctx = current()
    if ctx is not None:
        ctx.client_closed = True


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
    """Finish a request: HTTP metrics, the request's pending metric writes, its access record.

    The counter and histogram writes the request made (through ``metrics.child``) were kept in
    its context; they are applied here together with the HTTP series (``metrics.apply``: one
    lock), before the adapter hands the response to the server, so a scrape that follows the
    response sees every one of them.

    Every label comes from a closed set: the method from :data:`METHODS` or ``other``, the
    route from the route table or ``<unmatched>``, the status from ml-api's own answers (a request
    whose client closed mid-body is recorded as :data:`CLIENT_CLOSED` and logged at INFO, not as
    the 400 the server still writes).

    Args:
        ctx: From :func:`begin_request`.
        status: HTTP status code sent.
        route: The matched route template (``None`` when nothing matched).
    """
    duration = time.perf_counter() - ctx.started
    label = normalize_route(route)
    if ctx.client_closed:
        status = CLIENT_CLOSED
    metrics.record_http(method_label(ctx.method), label, status, duration)
    pending, ctx.tally = ctx.tally, None
    if pending is None:  # not begun here, or already ended
        metrics.IN_FLIGHT.dec()
    else:
        pending.append((metrics.IN_FLIGHT._value, -1.0))
        metrics.apply(pending)  # every write of the request: one lock, before the response
    level = (
        logging.ERROR if status == 500 else logging.WARNING if 500 < status < 600 else logging.INFO
    )
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
