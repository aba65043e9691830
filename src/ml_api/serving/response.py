"""gunicorn's HTTP/1 request handling for the head-reading worker, in fewer system calls.

gunicorn writes an answer's head and its body with two ``sendall`` calls, formats the ``Date``
header anew for every answer, and builds an access record's inputs (two clock reads) even when
no access log is written. In a worker with 64 request threads each system call also hands the
GIL over, so a call saved is a thread switch saved. :class:`OneWriteResponse` sends the head and
the first body chunk (an ml-api answer's only one) in one ``sendall`` and reuses the ``Date`` text
within its second; :func:`handle_request` is gunicorn 27's ``ThreadWorker.handle_request`` with
that response class, the set-up hooks read once, and no clock read when no access record is
written. The bytes on the wire are the same: the same status line and headers, in the same order,
and the same body.
"""

from __future__ import annotations

import sys
import time
from datetime import datetime
from typing import Any

from gunicorn import util
from gunicorn.http import wsgi

_date: tuple[int, str] = (0, "")
"""The last ``Date`` header value and the second it was made for."""


def http_date() -> str:
    """The ``Date`` header value for now (RFC 9110 IMF-fixdate), made once per second."""
    global _date
    second = int(time.time())
    if _date[0] != second:
        _date = (second, util.http_date(second))
    return _date[1]


class OneWriteResponse(wsgi.Response):
    """gunicorn's HTTP/1 response, sending its head with the first body chunk in one write.

    Chunked answers, answers without a body (``HEAD``, 204, 304) and a first chunk that is not
    ``bytes`` (which gunicorn refuses) take gunicorn's own path.
    """

    def default_headers(self) -> list[str]:
        """The status line and gunicorn's default headers, ``Date`` from :func:`http_date`."""
        if self.upgrade:
            connection = "upgrade"
        elif self.should_close():
            connection = "close"
        else:
            connection = "keep-alive"
        version: Any = self.req.version  # (major, minor) of a parsed HTTP/1 request
        headers = [
            f"HTTP/{version[0]}.{version[1]} {self.status}\r\n",
            f"Server: {self.version}\r\n",
            f"Date: {http_date()}\r\n",
            f"Connection: {connection}\r\n",
        ]
        if self.chunked:
            headers.append("Transfer-Encoding: chunked\r\n")
        return headers

    def write(self, arg: bytes) -> None:
        """Write a body chunk; the first one goes out with the head in one ``sendall``."""
        omits_body = getattr(self, "_omits_body", False)  # HEAD, 1xx, 204, 304: gunicorn's
        if self.headers_sent or self.chunked or omits_body or not isinstance(arg, bytes):
            super().write(arg)
            return
        lines = self.default_headers()
        lines.extend([f"{name}: {value}\r\n" for name, value in self.headers])
        head = ("".join(lines) + "\r\n").encode("latin-1")
        if self.response_length is not None and len(arg) > self.response_length:
            arg = arg[: self.response_length]  # never more than the declared length
        self.sock.sendall(head + arg)
        self.headers_sent = True
        self.sent += len(arg)


def handle_request(worker: Any, req: Any, conn: Any) -> bool:
    """Answer one HTTP/1 request on ``conn``: gunicorn 27's ``ThreadWorker.handle_request``.

    The same steps in the same order (hooks, environ, request count and auto-restart, the
    keep-alive decision, the application, the access record, the application's ``close``),
    with :class:`OneWriteResponse` and, when no access record is written, no clock reads.

    Args:
        worker: The ``gthread`` worker (its ``cfg``, ``log``, ``wsgi``, counters).
        req: gunicorn's parsed request.
        conn: The connection (``TConn``).

    Returns:
        Whether the connection may serve another request.

    Raises:
        StopIteration: The application failed after the head was sent (the connection closes).
        OSError: Writing to the client failed.
    """
    cfg = worker.cfg
    environ: Any = {}
    resp = None
    try:
        cfg.pre_request(worker, req)
        timed = worker.log.access_log_enabled
        request_start = datetime.now() if timed else None
        resp, environ = wsgi.create(
            req, conn.sock, conn.client, conn.server, cfg, response_class=OneWriteResponse
        )
        environ["wsgi.multithread"] = True
        worker.nr += 1
        if worker.nr >= worker.max_requests:
            if worker.alive:
                worker.log.info("Autorestarting worker after current request.")
                worker.alive = False
            resp.force_close()
        if (
            not worker.alive
            or not cfg.keepalive
            or len(worker.keepalived_conns) >= worker.max_keepalived
        ):
            resp.force_close()
        respiter = worker.wsgi(environ, resp.start_response)
        try:
            if isinstance(respiter, environ["wsgi.file_wrapper"]):
                resp.write_file(respiter)
            else:
                for item in respiter:
                    resp.write(item)
            resp.close()
        finally:
            if request_start is not None:
                worker.log.access(resp, req, environ, datetime.now() - request_start)
            if hasattr(respiter, "close"):
                respiter.close()
        if resp.should_close():
            worker.log.debug("Closing connection.")
            return False
    except OSError:
        util.reraise(*sys.exc_info())
    except (Exception, SystemExit):
        if resp and resp.headers_sent:
            # A timeout's abort is SystemExit. With the head already sent, a 500 written on the
            # same socket would corrupt the answer.
            worker.log.exception("Error handling request")
            util.close_graceful(conn.sock)
            raise StopIteration() from None
        raise
    finally:
        try:
            cfg.post_request(worker, req, environ, resp)
        except Exception:
            worker.log.exception("Exception in post_request hook")
    return True
