"""Closing a kept-alive connection whose request body was refused unread (HTTP/1.1 framing).

When ml-api answers before reading a body (413 for a declared ``Content-Length`` over the limit,
415, 401, ...), the unread rest of that body is still on the connection. gunicorn discards up to
64 KiB of it before reading the next request and otherwise closes the connection, but by then it
has already sent ``Connection: keep-alive``, so a client that reuses the connection fails.

:class:`CloseUnreadBodies` wraps the WSGI application: it counts what the application reads of
``wsgi.input`` and, when a response starts with more than :data:`DRAIN_LIMIT` bytes of the body
unread (or a chunked body not read to its end), asks gunicorn to close the connection (granian:
adds the ``Connection: close`` header, which its HTTP stack honours), so the response honestly says
``Connection: close``. A response after a fully read body keeps the
connection alive.

Closing a socket with unread bytes makes the kernel send a reset, which can destroy the answer in
the client's receive buffer before it is read (a 3.5 MB body sent in one go over a 1 MiB limit
got a broken pipe, not its 413). So once the answer is written, the rest of the body is read and
dropped, up to :data:`LINGER_BYTES` and :data:`LINGER_SECONDS` (a lingering close), before the
server closes. The body stream is the core-error-raising :class:`~ml_api.serving.wire.BodyStream`
(broken chunked framing 400, client gone 499, stalled body 408), and the whole application sits
behind :class:`~ml_api.serving.wire.RequestPolicy`.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from ml_api.serving.wire import CLOSE_CONNECTION, BodyStream

DRAIN_LIMIT = 64 * 1024
"""Unread body bytes gunicorn discards itself before the next request (its ``_DRAIN_MAX_BYTES``);
past this, the connection cannot be reused."""

LINGER_BYTES = 16 * 1024 * 1024
"""Most unread body bytes read and dropped after an early answer, so that the client, still
writing, reads the answer instead of a connection reset (nginx's lingering close)."""

LINGER_SECONDS = 5.0
"""Longest time spent on that, in seconds (nginx's ``lingering_timeout`` default)."""


_BODY_BUFFERED: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "ml_api_body_buffered", default=False
)


@contextmanager
def body_buffered() -> Iterator[None]:
    """Within the block, the request being handled is already wholly read off its socket.

    The head-reading worker (:mod:`ml_api.serving.head_reader`) says so for a request whose
    head and whole ``Content-Length`` body it read before a thread took it: the application's
    reads of that body never wait on the socket, so :class:`CloseUnreadBodies` sets no read
    timeout on it (two system calls per request saved, each a hand-over of the GIL).
    """
    token = _BODY_BUFFERED.set(True)
    try:
        yield
    finally:
        _BODY_BUFFERED.reset(token)


class CloseUnreadBodies:
    """WSGI middleware: ``Connection: close`` when a response leaves much of the body unread.

    Args:
        app: The WSGI application.
        drain_limit: Unread bytes the server can discard itself (default :data:`DRAIN_LIMIT`).
        read_timeout: Longest wait for the next bytes of a body on gunicorn's socket, in seconds
            (``ML_API_REQUEST_TIMEOUT_SECONDS``); ``None`` leaves the socket as it is.
    """

    def __init__(
        self,
        app: Callable[..., Iterable[bytes]],
        drain_limit: int = DRAIN_LIMIT,
        read_timeout: float | None = None,
    ):
        self.app = app
        self.drain_limit = drain_limit
        self.read_timeout = read_timeout

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        """Run the application with a counting ``wsgi.input``; close if the body stays unread."""
        try:
            declared: int | None = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            declared = None
        chunked = (
            not declared
            and bool(environ.get("wsgi.input_terminated"))
            and ("chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower())
        )
        stream = BodyStream(environ["wsgi.input"], None if chunked else declared, self.read_timeout)
        environ["wsgi.input"] = stream
        sock = environ.get("gunicorn.socket")
        # No read timeout to set when none is wanted or every byte of the body is already read.
        timed = None if self.read_timeout is None or _BODY_BUFFERED.get() else sock
        if timed is not None:
            timed.settimeout(self.read_timeout)

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            unread_too_much = (
                (declared is not None and declared - stream.count > self.drain_limit)
                if not chunked
                else not stream.at_end
            )
            if unread_too_much or environ.get(CLOSE_CONNECTION):
                # gunicorn's Response: force_close() makes it send "Connection: close" and close.
                force_close = getattr(
                    getattr(start_response, "__self__", None), "force_close", None
                )
                if callable(force_close):
                    force_close()
                else:  # granian (hyper) closes the connection after a "Connection: close" answer
                    headers = [(k, v) for k, v in headers if k.lower() != "connection"]
                    headers.append(("Connection", "close"))
            if timed is not None:
                timed.settimeout(None)  # gunicorn's own blocking writes, as it set them
            if exc_info is not None:
                return start_response(status, headers, exc_info)
            return start_response(status, headers)

        return _Lingering(self.app(environ, start), stream, sock)


class _Lingering:
    """The application's response; once written (``close``), the unread body is dropped."""

    def __init__(self, inner: Iterable[bytes], stream: BodyStream, sock: Any) -> None:
        self._inner = inner
        self._stream = stream
        self._sock = sock

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._inner)

    def close(self) -> None:
        close = getattr(self._inner, "close", None)
        try:
            if callable(close):
                close()
        finally:
            if not self._stream.at_end:
                self._linger()

    def _linger(self) -> None:
        deadline = time.monotonic() + LINGER_SECONDS
        if self._sock is not None:
            self._sock.settimeout(LINGER_SECONDS)
        self._stream.timeout = LINGER_SECONDS
        left = LINGER_BYTES
        while left > 0 and time.monotonic() < deadline and not self._stream.at_end:
            before = self._stream.count
            self._stream.discard(min(left, 256 * 1024))
            read = self._stream.count - before
            if read == 0:
                break
            left -= read
        if self._sock is not None:
            self._sock.settimeout(None)


def for_server(app: Callable[..., Iterable[bytes]], read_timeout: float | None = None) -> Any:
    """The WSGI application a server runs: ``app`` behind the ``Host`` policy and the body stream.

    Args:
        app: The Flask or Django WSGI application.
        read_timeout: Longest wait for the next bytes of a body, in seconds (gunicorn).

    Returns:
        ``CloseUnreadBodies(ShedGate(RequestPolicy(app)))`` (the gate answers only requests the
        head-reading worker refuses for overload: :mod:`ml_api.serving.overload`).
    """
    from ml_api.serving.overload import ShedGate
    from ml_api.serving.wire import RequestPolicy

    return CloseUnreadBodies(ShedGate(RequestPolicy(app)), read_timeout=read_timeout)
