"""Shedding overload: a request its worker cannot start in time is refused, not queued for ever.

gunicorn's thread pool has an unbounded queue: under overload a complete request waited there for
as long as the requests ahead of it took, and its time limit only started when a thread took it
(at 160 connections on one worker, half of a client's latency was queueing). The head-reading
worker (:mod:`ml_api.serving.head_reader`) bounds that queue two ways, both per worker:

- a request that finds :data:`~ml_api.settings.Settings.max_queued_requests` requests already
  waiting is refused at once (``queue_full``), by a small pool of its own, so that neither the
  request threads nor the probe lane spend time on it;
- a request that waited longer than ``max_queue_wait_seconds`` when a thread takes it is refused
  by that thread without running the application (``queue_wait``).

Either way the answer is a 503 with ``Retry-After`` and the contract's JSON error body
(:class:`~ml_api.core.errors.ServerOverloaded`, the same bytes for Flask and Django: nothing of the
framework runs), the connection is closed, and ``ml_api_requests_shed_total{reason}`` counts it.
Nothing of the request ran, so a balancer may send it to another replica, POST included. A request
that is started runs with what is left of ``ML_API_REQUEST_TIMEOUT_SECONDS`` after its wait
(:func:`ml_api.core.deadline.arrived`).
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from ml_api.core import metrics
from ml_api.core.errors import ServerOverloaded
from ml_api.serving.wire import CLOSE_CONNECTION, answer_error

_refusal: contextvars.ContextVar[ServerOverloaded | None] = contextvars.ContextVar(
    "ml_api_overload_refusal", default=None
)


@contextmanager
def refusing(problem: ServerOverloaded) -> Iterator[None]:
    """Within the block, :class:`ShedGate` answers the request ``problem`` instead of the app.

    Args:
        problem: The refusal to send (its ``reason`` labels the metric).
    """
    token = _refusal.set(problem)
    try:
        yield
    finally:
        _refusal.reset(token)


class ShedGate:
    """WSGI middleware: the refusal set by :func:`refusing`, else the application.

    Args:
        app: The WSGI application.
    """

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        """Answer 503 (and close) for a request its worker refuses, else run the application."""
        problem = _refusal.get()
        if problem is None:
            return self.app(environ, start_response)
        metrics.child(metrics.REQUESTS_SHED, problem.reason).inc()
        environ[CLOSE_CONNECTION] = True  # the client reconnects, maybe to another replica
        return answer_error(environ, start_response, problem)
