"""Running a WSGI app under gunicorn: one configuration for Flask and Django.

Process model: ``ml-api serve`` loads and verifies the model in the process that becomes gunicorn's
master, builds the Flask or Django application around it, and hands that object to gunicorn, which
forks ``WEB_CONCURRENCY`` workers (default: the CPUs this process may use). Workers share the
model's memory pages copy-on-write (what ``preload_app`` does), so resident memory is roughly
``master + workers x per-worker overhead`` with one copy of the model, not one per worker. Each
worker is a ``gthread`` worker with ``ML_API_THREADS`` request threads (default 64): a prediction is
CPU-bound and holds the GIL, so the threads are not there to predict in parallel but to let
concurrent requests meet in the worker's adaptive batcher (:mod:`ml_api.core.batching`), which
predicts them in one model call; processes give one core each. ``ML_API_THREADS=1`` runs plain
``sync`` workers, one request at a time. ``/health``, ``/ready`` and ``/metrics`` are answered by a
small separate pool in each worker (:mod:`ml_api.serving.probe_lane`), so probes never queue behind
predictions.

Shutdown (SIGTERM, what ``docker stop`` and Kubernetes send): readiness turns 503 in every worker at
once; the server keeps accepting for ``drain_seconds`` so load balancers take it out of rotation;
then it stops listening, lets in-flight requests finish (``graceful_timeout``), and exits 0. SIGINT
(Ctrl-C) and a second SIGTERM skip the drain.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gunicorn.app.base import BaseApplication
from gunicorn.arbiter import Arbiter
from gunicorn.config import Config
from gunicorn.glogging import Logger
from gunicorn.http.body import ChunkedReader
from gunicorn.http.errors import InvalidChunkSize

from ml_api.serving.logging import logging_dict
from ml_api.settings import DEFAULT_PORTS, Settings

__all__ = ["DEFAULT_PORTS", "GunicornApplication", "gunicorn_options"]

PROBE_LANE_WORKER = "ml_api.serving.head_reader.HeadReadingWorker"
"""gunicorn's ``gthread`` worker reading request heads on its poller (head_reader) plus a separate
pool for probes and scrapes (probe_lane)."""

GRACEFUL_TIMEOUT_SECONDS = 20
"""How long in-flight requests get after the server stops listening. Kubernetes'
``terminationGracePeriodSeconds`` must exceed preStop + ``drain_seconds`` + this."""


def available_cpus() -> int:
    """Return how many CPUs this process may use: affinity mask and cgroup v2 quota included.

    A container limited to ``cpu: 1`` on a 16-core node gets 1, not 16 (``os.cpu_count()`` would
    say 16 and over-subscribe the quota).
    """
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        if quota != "max":
            cpus = min(cpus, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cpus)


def prepare_metrics_dir() -> Path:
    """Give prometheus_client's multiprocess mode an empty directory, before it is imported.

    Uses ``PROMETHEUS_MULTIPROC_DIR`` when set (its old ``*.db`` files are removed: samples of a
    previous run would otherwise be added to this one's), else a new directory under the system
    temporary directory, and exports it for the workers.

    Returns:
        The directory.
    """
    configured = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if configured:
        path = Path(configured)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink()
    else:
        path = Path(tempfile.mkdtemp(prefix=METRICS_DIR_PREFIX))
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)
    return path


METRICS_DIR_PREFIX = "ml-api-metrics-"


def remove_own_metrics_dir() -> None:
    """Remove the metrics directory if :func:`prepare_metrics_dir` created it (not a user's)."""
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
    if Path(path).name.startswith(METRICS_DIR_PREFIX):
        shutil.rmtree(path, ignore_errors=True)


class GunicornLogger(Logger):
    """gunicorn's logger, building no access record that its ``gunicorn.access`` logger drops.

    ml-api writes its own access records (richer fields), so :func:`logging_dict` sets
    ``gunicorn.access`` to ``WARNING``; gunicorn would still build every request's log atoms
    (headers, environ, times) before the logger drops the ``INFO`` record.
    """

    def setup(self, cfg: Any) -> None:
        """Run gunicorn's set-up; then build access records only if they would be written."""
        super().setup(cfg)
        enabled = bool(self.__dict__.get("_access_log_enabled"))
        self._access_log_enabled = enabled and self.access_log.isEnabledFor(logging.INFO)


def _on_exit(server: Any) -> None:
    remove_own_metrics_dir()


def _child_exit(server: Any, worker: Any) -> None:
    from ml_api.core.metrics import mark_process_dead

    mark_process_dead(worker.pid)


def _worker_exit(server: Any, worker: Any) -> None:
    """Skip interpreter teardown when a worker exits cleanly.

    A worker that has served its last request still spends seconds freeing the model, SciPy and
    pandas object by object before it exits, which a shutdown waits for. Nothing is left to do by
    then (log records are written synchronously), so a clean exit ends the process at once.
    gunicorn also calls this hook in the master for a worker that already vanished: only the
    worker itself, exiting with status 0, takes the fast path.
    """
    if os.getpid() != worker.pid:
        return
    exc = sys.exc_info()[1]
    if isinstance(exc, SystemExit) and exc.code in (0, None):
        logging.shutdown()  # flush and close every handler
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


def gunicorn_options(settings: Settings, framework: str, host: str = "0.0.0.0") -> dict[str, Any]:
    """The gunicorn configuration shared by both frameworks.

    Args:
        settings: Supplies ``port`` (``PORT``), ``web_concurrency`` (``WEB_CONCURRENCY``),
            ``request_timeout_seconds`` and ``log_level``.
        framework: ``"flask"`` or ``"django"`` (picks the default port).
        host: Interface to bind (all interfaces by default, as a container needs).

    Returns:
        Options for :class:`GunicornApplication`.
    """
    port = settings.bind_port(framework)
    options: dict[str, Any] = {
        "bind": f"{host}:{port}",
        "workers": settings.web_concurrency or available_cpus(),
        # gthread, with /health, /ready and /metrics answered off the request pool (probe_lane).
        "worker_class": PROBE_LANE_WORKER if settings.threads > 1 else "sync",
        "threads": settings.threads,
        "preload_app": True,
        # Hard backstop above the per-request limit (which answers 504 in JSON); model loading
        # happens in the master before workers exist, so a slow load never trips this.
        "timeout": max(30, math.ceil(settings.request_timeout_seconds) + 10),
        "graceful_timeout": GRACEFUL_TIMEOUT_SECONDS,
        # Longer than common load balancers' idle timeouts (AWS ALB 60 s, nginx 60 s), so the
        # server never closes a connection the balancer is about to reuse.
        "keepalive": 75,
        "proc_name": f"ml-api-{framework}",
        "logconfig_dict": logging_dict(settings.log_level),
        "accesslog": None,
        "logger_class": GunicornLogger,
        "child_exit": _child_exit,
        "worker_exit": _worker_exit,
        "on_exit": _on_exit,
    }
    tmp = Path("/dev/shm")
    options["worker_tmp_dir"] = str(tmp) if tmp.is_dir() else tempfile.gettempdir()
    if "control_socket_disable" in Config().settings:  # gunicorn >= 24: no ~/.gunicorn socket,
        options["control_socket_disable"] = True  # which a read-only root filesystem refuses
    return options


MAX_CHUNK_SIZE = 2**63 - 1
"""Largest chunk size accepted, in bytes (a signed 64-bit length, as nginx and hyper have it)."""

_parse_chunk_size = ChunkedReader.parse_chunk_size


def _bounded_chunk_size(self: ChunkedReader, unreader: Any, data: Any = None) -> Any:
    """Gunicorn's chunk-size parser, refusing a size no 64-bit length holds.

    gunicorn reads any number of hex digits into a Python integer and then waits for that many
    bytes, so ``fffffffffffffffffffff`` held a request thread until the client gave up;
    granian (hyper) refuses it at once. Now gunicorn does too (``InvalidChunkSize``, which the
    body stream reports as a 400).
    """
    size, rest = _parse_chunk_size(self, unreader, data)
    if size > MAX_CHUNK_SIZE:
        raise InvalidChunkSize(b"%x (over 2**63 - 1)" % size)
    return size, rest


ChunkedReader.parse_chunk_size = _bounded_chunk_size  # type: ignore[method-assign]


class DrainingArbiter(Arbiter):
    """gunicorn's master, with a drain period between SIGTERM and closing the listeners.

    Args:
        app: The gunicorn application.
        on_drain: Called once when SIGTERM arrives (flips readiness to 503 in every worker).
        drain_seconds: How long to keep serving after SIGTERM, in seconds.
        on_reload: Called on SIGHUP instead of gunicorn's worker restart: verifies and swaps in
            the models' serving versions in the master and signals every worker to do the same
            (``ml_api.core.repository``); the workers keep running.
    """

    def __init__(
        self,
        app: Any,
        on_drain: Callable[[], None],
        drain_seconds: float,
        on_reload: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(app)
        self._on_drain = on_drain
        self._on_reload = on_reload
        self._drain_seconds = drain_seconds
        self._drain_until: float | None = None

    def _log(self, message: str, *args: Any) -> None:
        if self.log is not None:  # set up by Arbiter.__init__; typed optional by the stubs
            self.log.info(message, *args)

    def handle_term(self) -> None:
        """First SIGTERM: start draining; a second one: stop now (gracefully)."""
        if self._drain_until is not None or self._drain_seconds <= 0:
            self._on_drain()
            raise StopIteration
        self._on_drain()
        self._drain_until = time.monotonic() + self._drain_seconds
        self._log("SIGTERM: readiness is 503; draining for %.1f s", self._drain_seconds)

    def handle_hup(self) -> None:
        """SIGHUP: swap in the models' serving versions without restarting the workers.

        gunicorn's own SIGHUP forks new workers from this master, whose preloaded models are the
        ones it started with: a promoted version would not serve. Without ``on_reload`` it is
        gunicorn's behaviour.
        """
        if self._on_reload is None:
            super().handle_hup()
            return
        self._log("SIGHUP: verifying and swapping in the serving version of every model")
        try:
            self._on_reload()
        except Exception:  # the master must outlive a reload that went wrong
            if self.log is not None:
                self.log.exception("SIGHUP: the reload failed; the models serving stay")

    def murder_workers(self) -> None:
        """Also ends the drain period: called by the main loop at least once a second."""
        if self._drain_until is not None and time.monotonic() >= self._drain_until:
            self._log("drain period over: closing listeners, finishing in-flight requests")
            raise StopIteration
        super().murder_workers()


class GunicornApplication(BaseApplication):
    """Gunicorn around an application object that already exists in this process.

    Args:
        app_factory: Returns the WSGI application (called once, in the master).
        options: gunicorn settings by name (see :func:`gunicorn_options`).
        on_drain: Called when SIGTERM starts the drain.
        drain_seconds: Drain period after SIGTERM, in seconds.
        body_timeout: Longest wait for the next bytes of a request body, in seconds
            (``ML_API_REQUEST_TIMEOUT_SECONDS``; 408 beyond); ``None``: no limit.
        on_reload: Called on SIGHUP (see :class:`DrainingArbiter`).
        max_queue_wait: Longest wait for a request thread, in seconds
            (``ML_API_MAX_QUEUE_WAIT_SECONDS``; 503 beyond: :mod:`ml_api.serving.overload`);
            ``None``: no limit.
        max_queued: Most requests waiting for a thread per worker
            (``ML_API_MAX_QUEUED_REQUESTS``; 503 beyond); ``None``: no limit.
    """

    def __init__(
        self,
        app_factory: Callable[[], Any],
        options: dict[str, Any],
        on_drain: Callable[[], None] = lambda: None,
        drain_seconds: float = 0.0,
        body_timeout: float | None = None,
        on_reload: Callable[[], None] | None = None,
        max_queue_wait: float | None = None,
        max_queued: int | None = None,
    ) -> None:
        self._factory = app_factory
        self.max_queue_wait = max_queue_wait
        self.max_queued = max_queued
        self._on_reload = on_reload
        self._options = options
        self._on_drain = on_drain
        self._drain_seconds = drain_seconds
        self.body_timeout = body_timeout
        super().__init__()

    def load_config(self) -> None:
        """Apply ``options`` to gunicorn's config (unknown keys are errors)."""
        for key, value in self._options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        """Return the WSGI application behind the wire's checks (:func:`keepalive.for_server`)."""
        from ml_api.serving.keepalive import for_server

        return for_server(self._factory(), read_timeout=self.body_timeout)

    def run(self) -> None:
        """Run the master loop until shutdown; exits the process (0 after a graceful stop)."""
        DrainingArbiter(self, self._on_drain, self._drain_seconds, self._on_reload).run()
