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
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

DRAIN_LIMIT = 64 * 1024
"""Unread body bytes gunicorn discards itself before the next request (its ``_DRAIN_MAX_BYTES``);
past this, the connection cannot be reused."""


class _CountingInput:
    """``wsgi.input`` that counts the bytes read and notices the end of the stream."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self.count = 0
        self.at_end = False

    def _seen(self, data: bytes, asked: int | None) -> bytes:
        self.count += len(data)
        if not data or asked is None or asked < 0:
            self.at_end = self.at_end or not data or asked is None or asked < 0
        return data

    def read(self, size: int | None = None, *args: Any) -> bytes:
        data = self._stream.read(size) if size is not None else self._stream.read()
        return self._seen(data, size)

    def readline(self, size: int | None = None, *args: Any) -> bytes:
        data = self._stream.readline(size) if size is not None else self._stream.readline()
        self.count += len(data)
        self.at_end = self.at_end or not data
        return data

    def readlines(self, hint: Any = None) -> list[bytes]:
        lines = list(self._stream.readlines(hint) if hint is not None else self._stream.readlines())
        self.count += sum(len(line) for line in lines)
        self.at_end = True
        return lines

    def __iter__(self) -> Any:
        return iter(self.readline, b"")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


class CloseUnreadBodies:
    """WSGI middleware: ``Connection: close`` when a response leaves much of the body unread.

    Args:
        app: The WSGI application.
        drain_limit: Unread bytes the server can discard itself (default :data:`DRAIN_LIMIT`).
    """

    def __init__(self, app: Callable[..., Iterable[bytes]], drain_limit: int = DRAIN_LIMIT):
        self.app = app
        self.drain_limit = drain_limit

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
        stream = _CountingInput(environ["wsgi.input"])
        environ["wsgi.input"] = stream

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            unread_too_much = (
                (declared is not None and declared - stream.count > self.drain_limit)
                if not chunked
                else not stream.at_end
            )
            if unread_too_much:
                # gunicorn's Response: force_close() makes it send "Connection: close" and close.
                force_close = getattr(
                    getattr(start_response, "__self__", None), "force_close", None
                )
                if callable(force_close):
                    force_close()
                else:  # granian (hyper) closes the connection after a "Connection: close" answer
                    headers = [(k, v) for k, v in headers if k.lower() != "connection"]
                    headers.append(("Connection", "close"))
            if exc_info is not None:
                return start_response(status, headers, exc_info)
            return start_response(status, headers)

        return self.app(environ, start)
