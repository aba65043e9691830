"""Running the WSGI app under granian (``ML_API_SERVER=granian``): same properties as gunicorn.

Process model: as with gunicorn, ``ml-api serve`` loads and verifies the model in the main process
and builds the Flask or Django application there; granian's main process then forks
``WEB_CONCURRENCY`` workers (the ``fork`` start method is forced, so the model's pages are shared
copy-on-write exactly as with gunicorn's ``preload_app``). Each worker runs granian's Rust HTTP
stack and hands requests to a pool of ``ML_API_THREADS`` Python threads, where they meet in the
adaptive batcher as under gunicorn's ``gthread`` workers. A worker accepts connections only after
it exists, so readiness still comes only after the model is loaded.

Shutdown: the first SIGTERM flips readiness to 503 in every worker at once (one shared flag, see
:meth:`ml_api.core.service.PredictionService.start_draining`), keeps serving for
``drain_seconds``, then asks granian to stop: each worker stops accepting, finishes in-flight
requests (bounded by :data:`GRACEFUL_TIMEOUT_SECONDS`, then killed) and the main process exits 0.
SIGINT and a second SIGTERM skip the drain. Exited workers' live gauges are removed from the
Prometheus multiprocess directory (``mark_process_dead``), as gunicorn's ``child_exit`` does.

Logs: granian's own records (loggers ``_granian``, the Rust side included) go through the same
JSON handler as everything else; granian's access log stays off (ml-api writes its own, richer,
access records).

What granian does not have (measured and tested, see docs/production.md): a hold on slow clients
(its backpressure counts connections: 300 connections sending a request head one byte a second
fill it and it stops accepting, probes included; gunicorn's default worker reads heads on its
poller); a probe lane
(under overload a worker stops accepting and a probe waits in the listen backlog behind
predictions: every probe timed out where gunicorn's answered, which keeps gunicorn the default);
a hard per-worker timeout like gunicorn's ``--timeout`` (a stuck worker is not replaced; ml-api's
own per-request limit still answers 504 in JSON); an idle keep-alive timeout setting.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import threading
from collections.abc import Callable
from typing import Any

from granian.constants import Interfaces
from granian.http import HTTP1Settings
from granian.log import LogLevels
from granian.server.mp import MPServer, WorkerProcess

from ml_api.serving.gunicorn_app import (
    GRACEFUL_TIMEOUT_SECONDS,
    available_cpus,
    remove_own_metrics_dir,
)
from ml_api.serving.logging import logging_dict
from ml_api.settings import Settings

__all__ = ["GranianServer", "granian_options"]

log = logging.getLogger("ml_api.serve")

MAX_HEAD_BYTES = 64 * 1024
"""Largest request head (request line and headers) granian reads, in bytes; 431 beyond."""


def _log_dict(level: str) -> dict[str, Any]:
    config = logging_dict(level)
    for name in ("_granian", "granian.access"):
        config["loggers"][name] = {"level": "INFO", "handlers": ["stdout"], "propagate": False}
    return config


def granian_options(settings: Settings, framework: str, host: str = "0.0.0.0") -> dict[str, Any]:
    """Granian's configuration for both frameworks (the counterpart of ``gunicorn_options``).

    Args:
        settings: Supplies ``port`` (``PORT``), ``web_concurrency`` (``WEB_CONCURRENCY``),
            ``threads`` (``ML_API_THREADS``) and ``log_level``.
        framework: ``"flask"`` or ``"django"`` (picks the default port).
        host: Interface to bind (all interfaces by default, as a container needs).

    Returns:
        Keyword arguments for :class:`GranianServer`.
    """
    workers = settings.web_concurrency or available_cpus()
    threads = max(1, settings.threads)
    return {
        "address": host,
        "port": settings.bind_port(framework),
        "interface": Interfaces.WSGI,
        "workers": workers,
        "blocking_threads": threads,
        # Requests a worker takes in at once (granian's backpressure): the threads plus as many
        # waiting; the rest wait in the listen backlog (probes included: no probe lane).
        "backpressure": threads * 2,
        # The request line and headers together: at most 64 KiB (431 beyond; granian's default is
        # 408 KiB), near gunicorn's limits of 4094 bytes per line and 8190 per header field.
        "http1_settings": HTTP1Settings(
            keep_alive=True, header_read_timeout=30_000, max_buffer_size=MAX_HEAD_BYTES
        ),
        "log_level": LogLevels(settings.log_level.lower()),
        "log_dictconfig": _log_dict(settings.log_level),
        "log_access": False,
        "workers_kill_timeout": GRACEFUL_TIMEOUT_SECONDS,
        "websockets": False,
        "respawn_failed_workers": True,
    }


class _Worker(WorkerProcess):
    """granian's worker process; removes the worker's live gauges once it has exited."""

    def _watcher(self) -> None:
        super()._watcher()
        from ml_api.core.metrics import mark_process_dead

        if self.inner.pid is not None:
            mark_process_dead(self.inner.pid)


class GranianServer(MPServer):
    """granian's multi-process server around an application object built in this process.

    Args:
        app_factory: Returns the WSGI application (called once, here, before workers fork).
        on_drain: Called once when SIGTERM arrives (flips readiness to 503 in every worker).
        drain_seconds: How long to keep serving after SIGTERM, in seconds.
        **options: granian settings by name (see :func:`granian_options`).
    """

    def __init__(
        self,
        app_factory: Callable[[], Any],
        on_drain: Callable[[], None] = lambda: None,
        drain_seconds: float = 0.0,
        **options: Any,
    ) -> None:
        from ml_api.serving.keepalive import for_server

        self._app = for_server(app_factory())  # granian reads bodies itself: no socket timeout
        self._on_drain = on_drain
        self._drain_seconds = drain_seconds
        self._draining = False
        super().__init__(target="ml_api", **options)

    def _spawn_worker(self, *args: Any, **kwargs: Any) -> WorkerProcess:
        worker = super()._spawn_worker(*args, **kwargs)
        worker.__class__ = _Worker
        return worker

    def signal_handler_interrupt(self, signum: int | None = None, *args: Any) -> None:
        """First SIGTERM: readiness 503 and drain; SIGINT or a second SIGTERM: stop now."""
        self._on_drain()
        if signum == signal.SIGTERM and not self._draining and self._drain_seconds > 0:
            self._draining = True
            log.info("SIGTERM: readiness is 503; draining for %.1f s", self._drain_seconds)
            timer = threading.Timer(self._drain_seconds, self._end_drain)
            timer.daemon = True
            timer.start()
            return
        super().signal_handler_interrupt()

    def _end_drain(self) -> None:
        log.info("drain period over: closing listeners, finishing in-flight requests")
        super().signal_handler_interrupt()

    def run(self) -> None:
        """Fork the workers and serve until shutdown (exits the process; 0 after a clean stop)."""
        multiprocessing.set_start_method("fork", force=True)  # share the loaded model
        app = self._app
        try:
            self.serve(target_loader=lambda *_: app, wrap_loader=False)
        finally:
            remove_own_metrics_dir()
