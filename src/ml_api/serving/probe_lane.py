"""A gunicorn ``gthread`` worker that answers probes and scrapes off the request pool.

gunicorn's ``gthread`` worker hands every connection to one thread pool (``threads`` threads) whose
queue has no bound short of ``worker_connections`` (1000). Under overload a kubelet probe waits
behind every prediction queued before it: ``/health`` was measured at up to 7.2 s against a 3 s
probe timeout (issue 16), so liveness restarted busy pods and readiness dropped every replica.

:class:`ProbeLaneWorker` waits until a new connection has sent its first bytes (on the worker's
poller, as gunicorn already does for kept-alive and slow connections, so no thread is held), peeks
at the request line without consuming it, and sends ``GET``/``HEAD`` of :data:`LANE_PATHS` to a
small separate pool; everything else goes to the ordinary pool as before. The request is then
parsed and answered by the same application code, so the probe still says whether the app (model
loaded, not draining) is healthy; it just does not wait in line. What remains of a probe's latency
under overload is GIL contention with the busy request threads (measured in the README,
"Kubernetes").
"""

from __future__ import annotations

import errno
import re
import selectors
import socket
import time
from concurrent import futures
from functools import partial
from typing import Any

from gunicorn.workers.gthread import TConn, ThreadWorker

from ml_api.core.protocols.routes import probe_paths

LANE_PATHS = probe_paths()
"""Paths answered by the probe lane (the endpoint table's ``probe`` rows): the liveness and
readiness probes and Prometheus' scrape."""

LANE_THREADS = 4
"""Threads of the probe lane: liveness, readiness and a scrape at the same moment, plus one."""

_PEEK_BYTES = 64
_LANE_REQUEST = re.compile(
    rb"^(?:GET|HEAD) (?:" + b"|".join(re.escape(p.encode()) for p in LANE_PATHS) + rb")[ ?/]"
)


def is_lane_request(head: bytes) -> bool:
    """Whether the first bytes of an HTTP/1 request are a ``GET``/``HEAD`` of a lane path.

    Args:
        head: The request's first bytes (at least the method and path to decide).

    Returns:
        True for e.g. ``b"GET /health HTTP/1.1"`` or ``b"GET /ready?x=1 ..."``; False for any
        other method or path (``/healthz``, ``POST /health``) and for a request line cut short.
    """
    return _LANE_REQUEST.match(head) is not None


class ProbeLaneWorker(ThreadWorker):
    """``gthread`` worker with a separate pool of :data:`LANE_THREADS` for :data:`LANE_PATHS`.

    Selected by :func:`ml_api.serving.gunicorn_app.gunicorn_options` whenever ``threads > 1``.
    Everything else (keep-alive, graceful shutdown, timeouts) is gunicorn's ``ThreadWorker``.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lane_pool: futures.ThreadPoolExecutor | None = None

    def init_process(self) -> None:
        """Create the lane pool, then run gunicorn's set-up (which starts serving)."""
        self.lane_pool = futures.ThreadPoolExecutor(
            max_workers=LANE_THREADS, thread_name_prefix="probe-lane"
        )
        super().init_process()

    def accept(self, listener: socket.socket) -> None:
        """Accept a connection and wait on the poller for its first bytes (no thread held)."""
        try:
            client_sock, client_addr = listener.accept()
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        conn = TConn(self.cfg, client_sock, client_addr, listener.getsockname())  # non-blocking
        # The pending queue is ordered by deadline; every entry uses the keepalive timeout.
        conn.timeout = time.monotonic() + self.cfg.keepalive
        self.pending_conns.append(conn)
        self.poller.register(
            conn.sock, selectors.EVENT_READ, partial(self.on_pending_socket_readable, conn)
        )

    def enqueue_req(self, conn: TConn) -> None:
        """Submit the connection to the lane pool for a lane request, else to the request pool."""
        if self.lane_pool is None or not self._peek_is_lane(conn):
            super().enqueue_req(conn)
            return
        fs = self.lane_pool.submit(self.handle, conn)
        fs.add_done_callback(lambda fut: self.method_queue.defer(self.finish_request, conn, fut))

    def _peek_is_lane(self, conn: TConn) -> bool:
        if self.cfg.is_ssl:
            return False
        parser = getattr(conn, "parser", None)
        if parser is not None and parser.unreader.buf.getvalue():
            return False  # the next request was read ahead into the parser, not on the socket
        try:
            head = conn.sock.recv(_PEEK_BYTES, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except OSError:
            return False  # nothing to read yet, or the peer went away: the pool handles both
        return is_lane_request(head)

    def handle_quit(self, sig: Any, frame: Any) -> None:
        """SIGQUIT: stop the lane pool too, then gunicorn's immediate shutdown."""
        if self.lane_pool is not None:
            self.lane_pool.shutdown(wait=False)
        super().handle_quit(sig, frame)

    def run(self) -> None:
        """Run gunicorn's loop; the lane pool is shut down when it ends."""
        try:
            super().run()
        finally:
            if self.lane_pool is not None:
                self.lane_pool.shutdown(wait=False)
