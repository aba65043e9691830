"""One write per answer: :class:`OneWriteResponse` sends what gunicorn's response sends.

Each case parses a real request with gunicorn's parser, answers it with gunicorn's own
``Response`` and with ``OneWriteResponse``, and compares the bytes on the wire (``Date`` aside:
the two answers may straddle a second) and the number of writes.
"""

from __future__ import annotations

import re
import socket
from email.utils import parsedate_to_datetime

import pytest
from gunicorn.config import Config
from gunicorn.http import wsgi
from gunicorn.http.parser import RequestParser

from ml_api.serving.response import OneWriteResponse, http_date

JSON = [("Content-Type", "application/json"), ("Content-Length", "13")]


class _Wire:
    """A socket stand-in that records each write (the response only calls ``sendall``)."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []

    def sendall(self, data: bytes) -> None:
        self.writes.append(bytes(data))


def _request(raw: bytes):
    ours, theirs = socket.socketpair()
    with ours, theirs:
        theirs.sendall(raw)
        return next(RequestParser(Config(), ours, ("127.0.0.1", 1)))


def _answer(cls, raw: bytes, status: str, headers, chunks) -> _Wire:
    wire = _Wire()
    resp = cls(_request(raw), wire, Config())
    resp.start_response(status, list(headers))
    for chunk in chunks:
        resp.write(chunk)
    resp.close()
    return wire


def _undated(data: bytes) -> bytes:
    return re.sub(rb"\r\nDate: [^\r]*\r\n", b"\r\nDate: -\r\n", data)


GET = b"GET /x HTTP/1.1\r\nHost: h\r\n\r\n"
CASES = {
    "json answer": (GET, "200 OK", JSON, [b'{"ok": true}\n'], 1),
    "two chunks": (GET, "200 OK", JSON, [b'{"ok": ', b"true}\n"], 2),
    "body over its length": (GET, "200 OK", JSON, [b'{"ok": true}\n and more'], 1),
    "chunked": (GET, "200 OK", [("Content-Type", "text/plain")], [b"abc", b"de"], None),
    "HEAD": (b"HEAD /x HTTP/1.1\r\nHost: h\r\n\r\n", "200 OK", JSON, [b'{"ok": true}\n'], 1),
    "204": (GET, "204 No Content", [], [b""], 1),
    "HTTP/1.0": (b"GET /x HTTP/1.0\r\n\r\n", "200 OK", JSON, [b'{"ok": true}\n'], 1),
    "close": (GET, "503 Service Unavailable", [*JSON, ("Connection", "close")], [b"{}"], 1),
}


@pytest.mark.parametrize(("raw", "status", "headers", "chunks", "writes"), CASES.values(),
                         ids=CASES.keys())  # fmt: skip
def test_the_same_bytes_as_gunicorn_in_fewer_writes(raw, status, headers, chunks, writes):
    theirs = _answer(wsgi.Response, raw, status, headers, chunks)
    ours = _answer(OneWriteResponse, raw, status, headers, chunks)
    assert _undated(b"".join(ours.writes)) == _undated(b"".join(theirs.writes))
    if writes is not None:  # head and first chunk in one write, then one per further chunk
        assert len(ours.writes) == writes


def test_an_answer_with_a_body_is_one_write():
    wire = _answer(OneWriteResponse, GET, "200 OK", JSON, [b'{"ok": true}\n'])
    assert len(wire.writes) == 1 and wire.writes[0].endswith(b'\r\n\r\n{"ok": true}\n')


def test_the_date_is_now_in_the_http_format():
    date = parsedate_to_datetime(http_date())
    assert date.tzinfo is not None and date.utcoffset().total_seconds() == 0
    assert http_date().endswith(" GMT")
