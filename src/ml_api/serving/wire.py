"""What the HTTP wire needs from the WSGI layer, the same behind gunicorn and granian.

Two things the frameworks cannot do themselves, because they never see the connection:

- :class:`BodyStream` wraps ``wsgi.input`` and turns what the server's HTTP stack raises while a
  body is read into the core's errors: a broken chunked framing (a chunk size of ``-1`` or
  ``0x10``, a chunk without its CRLF) is :class:`~ml_api.core.errors.MalformedBody` (400); a
  client that closes the connection mid-body is
  :class:`~ml_api.core.errors.ClientClosedRequest` (recorded as 499, never a 5xx); a body that
  stops arriving for longer than the read timeout is
  :class:`~ml_api.core.errors.BodyReadTimeout` (408). gunicorn parses the body lazily and raises;
  granian hands the application what arrived, so a ``Content-Length`` body that comes up short is
  told by its length. (granian 2.8's input reports no error: a chunked body cut short reads like a
  complete one and gets the 400 its bytes earn; and its ``read`` blocks with no timeout, so the
  408 is gunicorn's only: docs/production.md, "The HTTP wire".)
- :class:`RequestPolicy` refuses, for every route and both frameworks alike, a request without
  exactly one well-formed ``Host`` header: 400 with the usual JSON error, for HTTP/1.1 as RFC 9112
  section 3.2 requires and for HTTP/1.0 too (the kubelet, Prometheus and every HTTP/1.1 client
  send one). Which host *names* are answered stays the Django adapter's ``ALLOWED_HOSTS``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from gunicorn.http.errors import NoMoreData, ParseException

from ml_api.core import telemetry
from ml_api.core.codecs import dumps
from ml_api.core.errors import (
    BodyReadTimeout,
    ClientClosedRequest,
    MalformedBody,
    MissingHost,
    ServingError,
    UnsupportedFraming,
    to_payload,
)

_HOST = re.compile(r"^(?:[a-z0-9._~-]+|\[[a-f0-9]*:[a-f0-9.:]+\])(?::[0-9]{1,5})?$", re.I)
"""A ``Host`` value: a name or IPv4 address (letters, digits and RFC 3986's unreserved ``-._~``,
so a proxy's ``Host: ml_api`` upstream name passes), or a bracketed IPv6 address, with an optional
port: Django's ``host_validation_re`` plus ``_~``. Two ``Host`` headers arrive joined by a comma
and fail it."""


CLOSE_CONNECTION = "ml_api.close_connection"
"""WSGI environ key: set to ``True`` to have the connection closed after the answer
(:class:`~ml_api.serving.keepalive.CloseUnreadBodies` does it)."""


def request_problem(environ: dict[str, Any]) -> ServingError | None:
    """The refusal a request's head earns before any application code runs, or ``None``.

    Args:
        environ: The WSGI environ (``HTTP_HOST``, ``HTTP_TRANSFER_ENCODING``).

    Returns:
        :class:`MissingHost` (400) for no ``Host``, an empty one (granian's "none"), two of them
        or one that is no ``host[:port]``; :class:`UnsupportedFraming` (400) for a
        ``Transfer-Encoding`` other than one ``chunked`` (gunicorn refuses those itself, granian
        read ``chunked`` twice as once); ``None`` otherwise.
    """
    value = environ.get("HTTP_HOST")
    if not value or not _HOST.match(value):
        return MissingHost(value)
    coding = environ.get("HTTP_TRANSFER_ENCODING")
    if coding is not None and coding.strip().lower() != "chunked":
        return UnsupportedFraming(coding)
    return None


class RequestPolicy:
    """WSGI middleware: one well-formed ``Host`` and a plain framing, else a JSON 400.

    See :func:`request_problem`. The refusal is counted and logged like any answer (route
    ``<unmatched>``), carries ``X-Request-ID`` and is the same bytes whichever framework is
    behind; a refused ``Transfer-Encoding`` also closes the connection (the body is unread).

    Args:
        app: The WSGI application.
    """

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        """Answer 400 for a missing or malformed ``Host`` or framing, else run the application."""
        problem = request_problem(environ)
        if problem is None:
            return self.app(environ, start_response)
        if isinstance(problem, UnsupportedFraming):
            environ[CLOSE_CONNECTION] = True  # where its body ends is not known
        return answer_error(environ, start_response, problem)


def answer_error(
    environ: dict[str, Any], start_response: Callable[..., Any], problem: ServingError
) -> list[bytes]:
    """Answer ``problem`` in JSON before any application code runs, counted and logged.

    The same bytes whichever framework is behind: the contract's error body, the error's own
    headers (``Retry-After``...), ``X-Request-ID``; HTTP metrics and the access record give it
    route ``<unmatched>`` (no route was matched).

    Args:
        environ: The WSGI environ.
        start_response: The server's ``start_response``.
        problem: The refusal.

    Returns:
        The response body, one chunk.
    """
    ctx = telemetry.begin_request(
        environ.get("REQUEST_METHOD", ""),
        environ.get("PATH_INFO", ""),
        environ.get("HTTP_X_REQUEST_ID"),
    )
    body = dumps(to_payload(problem, ctx.request_id))
    start_response(
        f"{problem.status.value} {problem.status.phrase}",
        [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
            *problem.headers.items(),
            ("X-Request-ID", ctx.request_id),
        ],
    )
    telemetry.end_request(ctx, problem.status.value, None)
    return [body]


class BodyStream:
    """``wsgi.input`` that counts what is read and reports a broken body as the core's errors.

    Args:
        stream: The server's input stream.
        declared: The request's ``Content-Length`` in bytes, ``None`` when it has none.
        timeout: Longest wait for the next bytes of the body, in seconds; applied to gunicorn's
            socket (granian reads the body itself), ``None`` for no limit.
    """

    def __init__(self, stream: Any, declared: int | None, timeout: float | None = None) -> None:
        self._stream = stream
        self.declared = declared
        self.timeout = timeout
        self.count = 0
        self.at_end = declared == 0

    def _read(self, reader: Callable[..., bytes], size: int | None) -> bytes:
        try:
            data = reader(size) if size is not None else reader()
        except ServingError:
            raise
        except TimeoutError as exc:
            raise BodyReadTimeout(self.timeout or 0.0) from exc
        except (NoMoreData, ConnectionError, EOFError) as exc:
            telemetry.client_closed()
            raise ClientClosedRequest(self.count, self.declared) from exc
        except ParseException as exc:
            raise MalformedBody(str(exc)) from exc
        self.count += len(data)
        return data

    def read(self, size: int | None = None, *args: Any) -> bytes:
        """Read like a file; a ``Content-Length`` body that ends early raises, not returns short.

        Raises:
            MalformedBody: (400) the chunked framing is broken.
            ClientClosedRequest: (recorded as 499) the client closed the connection mid-body.
            BodyReadTimeout: (408) no bytes for ``timeout`` seconds.
        """
        wanted = size if size is not None and size >= 0 else None
        if self.declared is not None:
            left = self.declared - self.count
            wanted = left if wanted is None else min(wanted, left)
        data = self._read(self._stream.read, wanted)
        if self.declared is None:
            if not data or wanted is None:
                self.at_end = True
            return data
        while len(data) < (wanted or 0):  # a short read of a declared body: more, or the end
            more = self._read(self._stream.read, wanted - len(data))  # type: ignore[operator]
            if not more:
                telemetry.client_closed()
                raise ClientClosedRequest(self.count, self.declared)
            data += more
        self.at_end = self.count >= self.declared
        return data

    def readline(self, size: int | None = None, *args: Any) -> bytes:
        """Read one line (the same errors as :meth:`read`)."""
        data = self._read(self._stream.readline, size)
        if not data:
            self.at_end = True
        return data

    def readlines(self, hint: Any = None) -> list[bytes]:
        """Read the remaining lines."""
        return list(iter(self.readline, b""))

    def __iter__(self) -> Any:
        return iter(self.readline, b"")

    def discard(self, limit: int) -> bool:
        """Read and drop up to ``limit`` bytes of what is left; whether the body's end was reached.

        Errors (a broken body, a closed or silent client) end the discarding quietly.
        """
        left = limit
        try:
            while not self.at_end and left > 0:
                data = self.read(min(64 * 1024, left))
                if not data:
                    self.at_end = True
                left -= len(data)
        except ServingError:
            return False
        return self.at_end
