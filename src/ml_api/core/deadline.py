"""A per-request time limit that answers in JSON instead of a killed worker.

gunicorn's own worker ``timeout`` kills a stuck worker with SIGABRT: the client gets a dropped
connection. :func:`deadline` instead sets a time limit for the block it wraps, enforced two ways:

- cooperatively, in every thread: the core calls :func:`check` between stages (after parsing,
  after validation) and :func:`remaining` bounds the wait for a batched model call; an overrun
  raises :class:`~ml_api.core.errors.RequestTimeout` (504);
- preemptively, in the main thread only (where gunicorn's sync workers, ``ML_API_THREADS=1``, run
  requests; the default ``gthread`` workers answer in other threads), with a ``SIGALRM`` timer
  that raises the same error between any two Python bytecodes.

Neither can interrupt a single long C call (one huge ``predict``): it finishes first, then the 504
is raised instead of the response. gunicorn's worker timeout stays above the limit as the backstop.

The limit counts from the request's arrival: a server that queued the request before a thread
took it says when it arrived with :func:`arrived`, and that wait is part of the limit.
"""

from __future__ import annotations

import contextvars
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ml_api.core.errors import RequestTimeout

_deadline: contextvars.ContextVar[tuple[float, float] | None] = contextvars.ContextVar(
    "ml_api_deadline", default=None
)

_arrival: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "ml_api_arrival", default=None
)


@contextmanager
def arrived(at: float) -> Iterator[None]:
    """Count the time since ``at`` against every :func:`deadline` started inside the block.

    The server calls it around a request that waited in its queue for a thread, so the time
    limit covers the wait too (``ML_API_REQUEST_TIMEOUT_SECONDS`` from arrival, not from pick-up).

    Args:
        at: When the request arrived, on the ``time.monotonic()`` clock.
    """
    token = _arrival.set(at)
    try:
        yield
    finally:
        _arrival.reset(token)


def _expired_error(limit: float) -> RequestTimeout:
    return RequestTimeout(
        f"the request took longer than {limit:g} s and was abandoned; send fewer instances or retry"
    )


def remaining() -> float | None:
    """Seconds left before the current deadline (``None`` when no deadline is set)."""
    current = _deadline.get()
    return None if current is None else current[0] - time.monotonic()


def check() -> None:
    """Raise if the current deadline has passed.

    Raises:
        RequestTimeout: (504) the time limit of the enclosing :func:`deadline` is over.
    """
    current = _deadline.get()
    if current is not None and time.monotonic() >= current[0]:
        raise _expired_error(current[1])


@contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Limit the block to ``seconds``; overruns raise :class:`RequestTimeout` (504).

    Args:
        seconds: The limit, in seconds (> 0), counted from the request's arrival when an
            enclosing :func:`arrived` gives it, else from now.

    Raises:
        RequestTimeout: (504) the block overran; raised inside the block.
    """
    now = time.monotonic()
    start = _arrival.get()
    end = (now if start is None else min(start, now)) + seconds
    token = _deadline.set((end, seconds))
    in_main = threading.current_thread() is threading.main_thread()
    previous: Any = None
    if in_main:

        def _expired(signum: int, frame: Any) -> None:
            raise _expired_error(seconds)

        previous = signal.signal(signal.SIGALRM, _expired)
        signal.setitimer(signal.ITIMER_REAL, max(end - now, 1e-3))  # 0 would disarm it
    try:
        yield
    finally:
        if in_main:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
        _deadline.reset(token)
