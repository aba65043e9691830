"""A gunicorn worker that reads request heads (and small bodies) on its poller, not in a thread.

gunicorn's ``gthread`` worker hands a connection to a request thread as soon as its first byte
arrives; the thread then blocks until the whole request head is in. A client that sends one byte
a second holds that thread for as long as it likes, and 64 such clients (the worker's threads)
stopped every prediction: 300 slow connections answered 0 of 6 predictions in 30 s.

:class:`HeadReadingWorker` reads what a connection sends, without blocking, on the worker's
poller (the loop that already waits for new and kept-alive connections) into a small buffer,
until the request head is complete and, for a body of at most :data:`BODY_BUFFER_BYTES` with a
``Content-Length``, the body too (nginx's request buffering). Only then does a thread take the
connection, with every byte already read: a slow client costs a file descriptor and a few bytes,
never a thread. A head plus buffered body must arrive within :data:`HEAD_TIMEOUT_SECONDS` of its
first byte, else the connection is closed (nginx's ``client_header_timeout``); a connection that
sends nothing is closed after the keep-alive timeout (gunicorn's ``keepalive``) as before. A
buffered body that stops arriving for ``ML_API_REQUEST_TIMEOUT_SECONDS`` goes to a thread, which
answers it 408 in JSON as it answers any stalled body.

A complete request then waits for a thread in a bounded queue, and its time limit counts from
its arrival there: :mod:`ml_api.serving.overload` (503 with ``Retry-After`` when the queue is full
or the wait too long).

What still takes a thread while it arrives: a body over :data:`BODY_BUFFER_BYTES`, a chunked
body, and a body sent after ``Expect: 100-continue`` (the client waits for the interim answer,
which gunicorn sends from the thread); those are bounded by ``ML_API_REQUEST_TIMEOUT_SECONDS``
between two reads (408). Probes are still sent to the probe lane
(:class:`~ml_api.serving.probe_lane.ProbeLaneWorker`), decided on the buffered head.
"""

from __future__ import annotations

import re
import selectors
import sys
import threading
import time
from collections import deque
from concurrent import futures
from functools import partial
from typing import Any

from gunicorn.http.body import LengthReader
from gunicorn.http2 import negotiation
from gunicorn.workers.gthread import TConn

from ml_api.core import deadline, metrics
from ml_api.core.errors import ServerOverloaded
from ml_api.serving.keepalive import body_buffered
from ml_api.serving.overload import refusing
from ml_api.serving.probe_lane import ProbeLaneWorker, is_lane_request
from ml_api.serving.request_pool import RequestPool
from ml_api.serving.response import handle_request

HEAD_TIMEOUT_SECONDS = 30.0
"""Longest time from a request's first byte to the end of its head (and buffered body), in
seconds; the same limit granian applies (``header_read_timeout``) and half nginx's default."""

BODY_BUFFER_BYTES = 16 * 1024
"""Largest ``Content-Length`` body read on the poller before a thread takes the request, in
bytes (a 64-instance penguins request is about 6 KiB). Kept small: every read on the poller
waits for the GIL behind the busy request threads (up to one switch interval,
:data:`SWITCH_INTERVAL_SECONDS`), so
reading large bodies there delayed new connections, probes included, under overload."""

MAX_BUFFER_BYTES = 64 * 1024 + BODY_BUFFER_BYTES
"""Most bytes buffered for one request; past this the thread takes it (and gunicorn refuses a
head over its own limits: 414 or 431)."""

SHED_THREADS = 2
"""Threads answering requests refused because the queue is full (a 503 each, no application
code), apart from the request threads and the probe lane."""

SWITCH_INTERVAL_SECONDS = 0.001
"""The worker's ``sys.setswitchinterval``, in seconds (CPython's default: 0.005). The one thread
that accepts connections, reads heads and hands requests to threads takes the GIL back after every
system call (each ``epoll_wait``, ``recv``, ``accept``), and under load it waits for a busy request
thread to give the GIL up: up to one switch interval each time. Slow clients add a wake-up per
byte, so with 300 of them the loop fell behind and everything it hands on waited: 64 clients with
300 slow connections on one Flask worker, one run each at load 30: 320 req/s, p99 1,991 ms,
slowest probe 1,877 ms at 5 ms; 593 req/s, p99 557 ms, slowest probe 396 ms at 1 ms."""

QUEUED_PUBLISH_SECONDS = 0.25
"""Least time between two updates of this worker's ``ml_api_http_requests_queued`` gauge, in
seconds: the length moves with nearly every request, and each update is a write to the shared
metrics file. The loop turns at least once a second, so the gauge shows a change within about
1.25 s (Prometheus scrapes every 15 s)."""

HOUSEKEEPING_SECONDS = 0.5
"""Least time between two heartbeats to the master (gunicorn's ``notify``: a file time update)
and two checks that the master is still there (``getppid``), in seconds. gunicorn does both on
every turn of the loop, which turns once or twice per request; the master's timeout is 30 s or
more."""

_RECV_BYTES = 64 * 1024
_CONTENT_LENGTH = re.compile(rb"\ncontent-length[ \t]*:[ \t]*([0-9]{1,12})[ \t]*(?=\r?\n)", re.I)
_NEEDS_THREAD = re.compile(rb"\n(?:transfer-encoding|expect)[ \t]*:", re.I)


def head_end(data: bytes) -> int:
    """Offset just past the blank line ending the request head in ``data``, or -1 if not yet."""
    end = data.find(b"\r\n\r\n")
    if end >= 0:
        return end + 4
    end = data.find(b"\n\n")
    return end + 2 if end >= 0 else -1


def _body_length(head: bytes) -> int | None:
    """The ``Content-Length`` of a complete head (0 without one), or ``None``.

    ``None`` when the poller leaves the body to a thread: chunked, ``Expect``, several
    ``Content-Length`` fields.
    """
    if _NEEDS_THREAD.search(head):
        return None
    lengths = _CONTENT_LENGTH.findall(head)
    if len(lengths) > 1:
        return None  # a framing gunicorn refuses
    return int(lengths[0]) if lengths else 0


def is_complete(data: bytes) -> bool:
    """Whether ``data`` holds what the poller waits for before a thread takes the request.

    Args:
        data: The bytes received so far on the connection.

    Returns:
        True once the head is complete and either the request has a ``Content-Length`` body of
        at most :data:`BODY_BUFFER_BYTES` that has fully arrived, no body, or a body the thread
        must read itself (chunked, ``Expect``, larger, or several ``Content-Length`` fields,
        which gunicorn refuses); also True past :data:`MAX_BUFFER_BYTES`.
    """
    if len(data) > MAX_BUFFER_BYTES:
        return True
    end = head_end(data)
    if end < 0:
        return False
    length = _body_length(data[:end])
    return length is None or length > BODY_BUFFER_BYTES or len(data) - end >= length


def body_in_hand(data: bytes) -> bool:
    """Whether ``data`` holds a whole request: its head and all of its ``Content-Length`` body.

    Such a request's body is read from the bytes already received, never from the socket, so
    its thread sets no read timeout on the socket for it
    (:func:`ml_api.serving.keepalive.body_buffered`).

    Args:
        data: The bytes received on the connection, from the request's first byte.

    Returns:
        True for a complete head with no body or with its whole ``Content-Length`` body;
        False while the head or the body is incomplete, and for a chunked body, an ``Expect``
        or several ``Content-Length`` fields (a thread reads or refuses those).
    """
    end = head_end(data)
    if end < 0:
        return False
    length = _body_length(data[:end])
    return length is not None and len(data) - end >= length


def _body_done(parser: Any) -> bool:
    """Whether nothing is left of the last request's body: ``Content-Length``, read to its end.

    Args:
        parser: gunicorn's HTTP/1 parser of the connection (its last request: ``mesg``).
    """
    body = getattr(getattr(parser, "mesg", None), "body", None)
    reader = getattr(body, "reader", None)
    return (
        type(reader) is LengthReader
        and reader.length == 0
        and body.failed is False  # type: ignore[union-attr]
        and not body.buf.tell()  # type: ignore[union-attr]
    )


class HeadReadingWorker(ProbeLaneWorker):
    """The probe-lane ``gthread`` worker, reading request heads on its poller (see module doc).

    Selected by :func:`ml_api.serving.gunicorn_app.gunicorn_options` whenever ``threads > 1``.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.reading_conns: deque[TConn] = deque()
        self._buffers: dict[int, bytearray] = {}
        self._body_waits: dict[int, tuple[TConn, float]] = {}
        """Connections whose head is in and whose body is still arriving: last byte's time."""
        timeout = getattr(self.app, "body_timeout", None)
        self.body_timeout: float | None = float(timeout) if timeout else None
        """``ML_API_REQUEST_TIMEOUT_SECONDS``: a body silent this long goes to a thread, which
        answers 408 after waiting as long again (the rule a thread applies between two reads)."""
        wait = getattr(self.app, "max_queue_wait", None)
        self.max_queue_wait: float | None = float(wait) if wait else None
        """``ML_API_MAX_QUEUE_WAIT_SECONDS``: a request that waited longer for a thread gets 503."""
        queued = getattr(self.app, "max_queued", None)
        self.max_queued: int | None = int(queued) if queued else None
        """``ML_API_MAX_QUEUED_REQUESTS``: a request finding this many queued gets 503 at once."""
        self.queued = 0
        """Requests handed to the request pool that no thread has taken yet."""
        self._queued_lock = threading.Lock()
        self._queued_shown = -1
        self._queued_shown_at = 0.0
        self._notified_at = float("-inf")
        self._parent_checked_at = float("-inf")
        self._plain = not self.cfg.is_ssl
        """Plain TCP (not TLS): the setting is fixed for the worker's life, read once."""
        self.shed_pool: futures.ThreadPoolExecutor | None = None
        self.request_pool: RequestPool
        """The request threads (:meth:`get_thread_pool`, run by ``init_process``)."""

    def init_process(self) -> None:
        """Create the pool that answers refused requests, then the probe lane's set-up.

        Also sets :data:`SWITCH_INTERVAL_SECONDS` (this worker process only).
        """
        sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
        self.shed_pool = futures.ThreadPoolExecutor(
            max_workers=SHED_THREADS, thread_name_prefix="shed"
        )
        super().init_process()

    def get_thread_pool(self) -> Any:
        """The request threads: a :class:`RequestPool` of ``threads`` threads.

        It is gunicorn's ``tpool`` too, so it also takes gunicorn's own submissions (TLS,
        HTTP/2) through its executor-like ``submit``.
        """
        self.request_pool = RequestPool(self.cfg.threads, "request")
        return self.request_pool

    def _buffering(self, conn: TConn) -> bool:
        """Whether this connection's requests are read on the poller (plain HTTP/1)."""
        if not self._plain or conn.is_http2:
            return False
        return not (
            not conn.initialized and negotiation.prior_knowledge_allowed(self.cfg, conn.client)
        )

    def on_pending_socket_readable(self, conn: TConn, client: Any) -> None:
        """A new connection sent its first bytes: read them here instead of in a thread."""
        if not self._buffering(conn):
            super().on_pending_socket_readable(conn, client)
            return
        self.pending_conns.remove(conn)
        self._start_reading(conn)

    def on_client_socket_readable(self, conn: TConn, client: Any) -> None:
        """A kept-alive connection sent the next request's first bytes: read them here."""
        if not self._buffering(conn):
            super().on_client_socket_readable(conn, client)
            return
        self.keepalived_conns.remove(conn)
        self._start_reading(conn)

    def enqueue_req(self, conn: TConn) -> None:
        """A request read ahead behind the last one: finish reading it here, then a thread."""
        parser: Any = conn.parser
        if not self._buffering(conn) or parser is None:
            super().enqueue_req(conn)
            return
        ahead = parser.unreader.take_buffered()
        conn.sock.setblocking(False)
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_bytes, conn))
        self._start_reading(conn, ahead)

    def _start_reading(self, conn: TConn, ahead: bytes = b"") -> None:
        """Read the request on the poller (already registered for this socket).

        The usual request arrives whole in one read: it goes to a thread at once. Otherwise the
        socket's callback becomes :meth:`_on_bytes` until the request is in.
        """
        if not ahead:
            received = self._recv(conn)
            if received is not None and not received:  # the client went away, having sent nothing
                self.poller.unregister(conn.sock)
                self.nr_conns -= 1
                conn.close()
                return
            ahead = received or b""  # None: nothing to read after all, so wait for it
        if ahead and is_complete(ahead):
            self.poller.unregister(conn.sock)
            self._dispatch(conn, ahead)
            return
        self.poller.modify(conn.sock, selectors.EVENT_READ, partial(self._on_bytes, conn))
        conn.timeout = time.monotonic() + HEAD_TIMEOUT_SECONDS
        self.reading_conns.append(conn)
        self._buffers[id(conn)] = bytearray(ahead)
        if ahead and self.body_timeout is not None and head_end(ahead) >= 0:
            self._body_waits[id(conn)] = (conn, time.monotonic())

    @staticmethod
    def _recv(conn: TConn) -> bytes | None:
        """What the client sent (``b""``: it went away), or ``None`` if nothing is there yet."""
        try:
            return bytes(conn.sock.recv(_RECV_BYTES))
        except (BlockingIOError, InterruptedError):
            return None
        except OSError:
            return b""

    def _on_bytes(self, conn: TConn, client: Any) -> None:
        buffer = self._buffers[id(conn)]
        data = self._recv(conn)
        if data is None:
            return
        if not data:  # the client went away before its request was complete
            self._stop_reading(conn)
            if head_end(bytes(buffer)) >= 0:  # mid-body: the thread records it (499)
                self._dispatch(conn, bytes(buffer))
                return
            self.nr_conns -= 1
            conn.close()
            return
        buffer += data
        data = bytes(buffer)
        if is_complete(data):
            self._stop_reading(conn)
            self._dispatch(conn, data)
        elif self.body_timeout is not None and head_end(data) >= 0:
            self._body_waits[id(conn)] = (conn, time.monotonic())

    def _stop_reading(self, conn: TConn) -> None:
        self.poller.unregister(conn.sock)
        self.reading_conns.remove(conn)
        self._buffers.pop(id(conn), None)
        self._body_waits.pop(id(conn), None)

    def _dispatch(self, conn: TConn, data: bytes) -> None:
        """Hand the connection and the bytes read to the lane or request pool."""
        conn.init()  # the HTTP/1 parser (no I/O for plain HTTP/1); the socket turns blocking
        parser: Any = conn.parser
        parser.unreader.unread(data)
        if self.lane_pool is not None and is_lane_request(data):
            fs = self.lane_pool.submit(self.handle, conn)
        elif (
            self.max_queued is not None
            and self.shed_pool is not None
            and self.queued >= self.max_queued
        ):
            refusal = ServerOverloaded("queue_full", self.max_queued)
            fs = self.shed_pool.submit(self._refuse, conn, refusal)
        else:
            with self._queued_lock:
                self.queued += 1
            args = (conn, time.monotonic(), body_in_hand(data))
            done = partial(self.method_queue.defer, self.finish_request, conn)
            self.request_pool.call(self._take_queued, args, done)
            return
        fs.add_done_callback(lambda fut: self.method_queue.defer(self.finish_request, conn, fut))

    def _take_queued(self, conn: TConn, queued_at: float, in_hand: bool = False) -> Any:
        """In a request thread: refuse a request that waited too long, else handle it.

        Args:
            conn: The connection, its request read (``in_hand``: all of it) on the poller.
            queued_at: When it was queued (``time.monotonic``).
            in_hand: The whole request, body included, is already read (:func:`body_in_hand`).
        """
        with self._queued_lock:
            self.queued -= 1
        waited = time.monotonic() - queued_at
        if self.max_queue_wait is not None and waited > self.max_queue_wait:
            return self._refuse(conn, ServerOverloaded("queue_wait", self.max_queue_wait, waited))
        with deadline.arrived(queued_at):  # the time limit counts the wait
            if not in_hand:
                return self.handle(conn)
            with body_buffered():
                return self.handle(conn)

    def handle_request(self, req: Any, conn: TConn) -> bool:
        """Answer one HTTP/1 request: gunicorn's steps, in fewer system calls (``response``)."""
        return handle_request(self, req, conn)

    def _keepalive_after(self, conn: TConn, keepalive: bool) -> bool:
        """Whether the connection can serve another request (gunicorn's rule, in fewer calls).

        gunicorn drains an unread body under a deadline, setting the socket's timeout twice per
        request; a body read to its end (the usual case) has nothing to drain.
        """
        if keepalive and _body_done(conn.parser):
            return True
        return bool(super()._keepalive_after(conn, keepalive))  # type: ignore[misc]

    def _refuse(self, conn: TConn, refusal: ServerOverloaded) -> Any:
        """Answer the request on ``conn`` with ``refusal`` (503) without running the app."""
        with refusing(refusal):
            return self.handle(conn)

    def _show_queued(self) -> None:
        """Publish this worker's queue length (``ml_api_http_requests_queued``) when it moved.

        At most once every :data:`QUEUED_PUBLISH_SECONDS`.
        """
        queued = self.queued
        if queued != self._queued_shown:
            now = time.monotonic()
            if now - self._queued_shown_at >= QUEUED_PUBLISH_SECONDS:
                self._queued_shown = queued
                self._queued_shown_at = now
                metrics.QUEUED_REQUESTS.set(queued)

    def notify(self) -> None:
        """Tell the master this worker is alive, at most every :data:`HOUSEKEEPING_SECONDS`."""
        now = time.monotonic()
        if now - self._notified_at >= HOUSEKEEPING_SECONDS:
            self._notified_at = now
            super().notify()

    def is_parent_alive(self) -> bool:
        """Whether the master is still there, asked at most every :data:`HOUSEKEEPING_SECONDS`."""
        now = time.monotonic()
        if now - self._parent_checked_at < HOUSEKEEPING_SECONDS:
            return True
        self._parent_checked_at = now
        return bool(super().is_parent_alive())

    def murder_pending(self) -> None:
        """Close connections silent too long, or too slow to send their head (every loop turn)."""
        super().murder_pending()
        self._show_queued()
        now = time.monotonic()
        while self.reading_conns and (self.reading_conns[0].timeout or 0.0) <= now:
            conn = self.reading_conns[0]
            self._stop_reading(conn)
            self.nr_conns -= 1
            conn.close()
        if self.body_timeout is not None:
            for conn, last in list(self._body_waits.values()):
                if now - last >= self.body_timeout:  # a stalled body: the thread answers 408
                    data = bytes(self._buffers[id(conn)])
                    self._stop_reading(conn)
                    self._dispatch(conn, data)

    def _cap_keepalive(self, until: float) -> None:
        """Stopping: connections still sending a head, or silent, close by ``until`` too."""
        super()._cap_keepalive(until)  # type: ignore[misc]  # gunicorn 27, not in the stubs
        for waiting in (self.reading_conns, self.pending_conns):
            for conn in waiting:
                conn.timeout = min(conn.timeout or until, until)

    def handle_quit(self, sig: Any, frame: Any) -> None:
        """SIGQUIT: stop the refusal pool too, then the probe lane's immediate shutdown."""
        if self.shed_pool is not None:
            self.shed_pool.shutdown(wait=False)
        super().handle_quit(sig, frame)

    def run(self) -> None:
        """Run the probe lane's loop; the refusal pool is shut down when it ends."""
        try:
            super().run()
        finally:
            if self.shed_pool is not None:
                self.shed_pool.shutdown(wait=False)
