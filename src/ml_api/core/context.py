"""The request being handled in this thread: its id and what the core learnt about it.

A leaf module (no metrics, no framework), so logging can read the request id without importing
prometheus_client before its multiprocess directory is set.
"""

from __future__ import annotations

import contextvars
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:/+=-]{1,128}$")


def request_id_from(header: str | None) -> str:
    """Return the caller's ``X-Request-ID`` if it is safe to echo, else a new random id.

    A caller's id is kept when it is 1 to 128 characters of ``[A-Za-z0-9._:/+=-]`` (enough for
    UUIDs, W3C trace ids and most gateways' ids, never a log-injection vector).
    """
    if header and _REQUEST_ID.match(header):
        return header
    return uuid.uuid4().hex


@dataclass
class RequestContext:
    """What is known about the request being handled.

    Attributes:
        request_id: The caller's ``X-Request-ID`` if safe to echo, else a new one.
        method: HTTP method.
        path: Request path (logged; never a metrics label).
        started: ``time.perf_counter()`` at arrival, in seconds.
        instances: Instances in the request, once decoded.
        model_version: Version of the model that answered, once it did.
        client_closed: The client closed the connection before its body was read whole (the
            request is recorded with status 499, see ``telemetry.end_request``).
        tally: The request's pending metric writes, ``(value, amount)`` pairs that
            ``telemetry.end_request`` applies together (``metrics.apply``); ``None`` outside
            ``begin_request``/``end_request``: writes then go out at once.
    """

    request_id: str
    method: str
    path: str
    started: float = field(default_factory=time.perf_counter)
    instances: int | None = None
    model_version: str | None = None
    client_closed: bool = False
    tally: list[tuple[Any, float]] | None = None
    token: contextvars.Token[RequestContext | None] | None = None


_current: contextvars.ContextVar[RequestContext | None] = contextvars.ContextVar(
    "ml_api_request", default=None
)


def current() -> RequestContext | None:
    """Return the context of the request being handled in this thread, if any."""
    return _current.get()


def current_request_id() -> str | None:
    """Return the id of the request being handled in this thread, if any."""
    ctx = _current.get()
    return ctx.request_id if ctx else None


def enter(ctx: RequestContext) -> None:
    """Make ``ctx`` the current request of this thread."""
    ctx.token = _current.set(ctx)


def leave(ctx: RequestContext) -> None:
    """Undo :func:`enter`."""
    if ctx.token is not None:
        try:
            _current.reset(ctx.token)
        except ValueError:  # reset from another context (e.g. a streaming response)
            _current.set(None)
        ctx.token = None
