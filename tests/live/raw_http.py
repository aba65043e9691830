"""A raw-socket HTTP/1.x client for the live tests: exact bytes out, every response parsed back.

``http.client`` and ``requests`` refuse to send malformed requests (two ``Content-Length``s, a
bad chunk size, no ``Host``) and read one response per request; these tests need both.
"""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass, field
from typing import Any

TIMEOUT_SECONDS = 60.0
"""How long a test waits for the server before failing (a bound, never a timing assertion)."""


@dataclass
class Reply:
    """One parsed response."""

    status: int
    reason: str
    version: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or ``None``."""
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def closes(self) -> bool:
        """Whether the server said it closes the connection after this response."""
        connection = (self.header("Connection") or "").lower()
        return connection == "close" or (self.version == "HTTP/1.0" and connection != "keep-alive")


class Connection:
    """One TCP connection to ``127.0.0.1:port``; ``send`` raw bytes, ``reply`` parses one answer."""

    def __init__(self, port: int, timeout: float = TIMEOUT_SECONDS) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.file = self.sock.makefile("rb")

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def reply(self, method: str = "GET") -> Reply | None:
        """The next response, or ``None`` when the server closed without one."""
        line = self.file.readline(65537)
        if not line:
            return None
        version, status, *reason = line.decode("latin-1").rstrip("\r\n").split(" ", 2)
        reply = Reply(int(status), reason[0] if reason else "", version)
        while (line := self.file.readline(65537)) not in (b"\r\n", b"\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            reply.headers.append((name.strip(), value.strip()))
        if method == "HEAD" or reply.status in (204, 304) or 100 <= reply.status < 200:
            return reply
        length = reply.header("Content-Length")
        if (reply.header("Transfer-Encoding") or "").lower() == "chunked":
            reply.body = self._chunked()
        elif length is not None:
            reply.body = self.file.read(int(length))
        else:
            reply.body = self.file.read()
        return reply

    def _chunked(self) -> bytes:
        out = b""
        while size := int(self.file.readline().split(b";")[0], 16):
            out += self.file.read(size)
            self.file.readline()
        while self.file.readline() not in (b"\r\n", b""):
            pass
        return out

    def at_eof(self) -> bool:
        """Whether the server has closed the connection (reads until it does, or times out)."""
        try:
            return self.file.read(1) == b""
        except (ConnectionResetError, TimeoutError):
            return False

    def close(self) -> None:
        self.file.close()
        self.sock.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def request(
    method: str,
    path: str,
    headers: dict[str, str] | list[tuple[str, str]] | None = None,
    body: bytes = b"",
    version: str = "HTTP/1.1",
    host: str | None = "127.0.0.1",
) -> bytes:
    """The bytes of one request; ``Content-Length`` is added for a body unless a framing header is
    given (``Content-Length`` or ``Transfer-Encoding``), ``Host`` unless ``host`` is ``None``."""
    items = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
    names = {name.lower() for name, _ in items}
    if host is not None:
        items.insert(0, ("Host", host))
    if body and not names & {"content-length", "transfer-encoding"}:
        items.append(("Content-Length", str(len(body))))
    head = f"{method} {path} {version}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in items)
    return head.encode("latin-1") + b"\r\n" + body


def exchange(port: int, data: bytes, method: str = "GET") -> Reply | None:
    """Send ``data`` on a new connection and return the first response (``None``: closed)."""
    with Connection(port) as conn:
        conn.send(data)
        try:
            return conn.reply(method)
        except ConnectionResetError:
            return None
