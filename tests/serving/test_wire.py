"""The WSGI layer's wire checks, in process: body stream errors, the request policy, lingering.

The same behaviour over real sockets, behind gunicorn and granian, is in
``tests/live/test_raw_http_live.py``; these pin each translation down one by one.
"""

from __future__ import annotations

import io
import json
import logging

import pytest
from gunicorn.http.errors import ChunkMissingTerminator, InvalidChunkSize, NoMoreData

from ml_api.core import telemetry
from ml_api.core.context import RequestContext
from ml_api.core.errors import (
    BodyReadTimeout,
    ClientClosedRequest,
    MalformedBody,
    ServingError,
)
from ml_api.serving.keepalive import LINGER_BYTES, CloseUnreadBodies, body_buffered, for_server
from ml_api.serving.wire import BodyStream, request_problem


class _Raising:
    def __init__(self, exc: BaseException, first: bytes = b"") -> None:
        self.exc = exc
        self.first = first

    def read(self, size=None):
        if self.first:
            data, self.first = self.first, b""
            return data
        raise self.exc


@pytest.mark.parametrize(
    ("exc", "error"),
    [
        (InvalidChunkSize(b"-1"), MalformedBody),
        (ChunkMissingTerminator(b"XX"), MalformedBody),
        (NoMoreData(), ClientClosedRequest),
        (ConnectionResetError(), ClientClosedRequest),
        (TimeoutError(), BodyReadTimeout),
    ],
)
def test_what_the_server_raises_becomes_a_core_error(exc, error):
    with pytest.raises(error) as caught:
        BodyStream(_Raising(exc), None, timeout=3).read(100)
    assert caught.value.status < 500


def test_a_bug_reading_the_body_stays_a_bug():
    with pytest.raises(ZeroDivisionError):
        BodyStream(_Raising(ZeroDivisionError()), None).read(10)


def test_a_declared_body_that_comes_up_short_is_a_client_that_left():
    stream = BodyStream(io.BytesIO(b'{"feat'), declared=100)
    ctx = RequestContext("r-1", "POST", "/predict")
    telemetry.enter(ctx)
    try:
        with pytest.raises(ClientClosedRequest, match="after 6 bytes of 100"):
            stream.read()
    finally:
        telemetry.leave(ctx)
    assert ctx.client_closed


def test_a_declared_body_read_in_pieces_is_whole():
    class Trickle(io.BytesIO):
        def read(self, size=-1):
            return super().read(min(3, size if size and size > 0 else 3))

    stream = BodyStream(Trickle(b"0123456789"), declared=10)
    assert stream.read(10) == b"0123456789"
    assert stream.at_end


def test_a_client_closed_request_is_recorded_499_at_info(caplog):
    ctx = telemetry.begin_request("POST", "/predict", None)
    telemetry.client_closed()
    with caplog.at_level(logging.INFO, logger="ml_api.access"):
        telemetry.end_request(ctx, 400, "/predict")
    (record,) = [r for r in caplog.records if r.name == "ml_api.access"]
    assert record.status == 499 and record.levelno == logging.INFO


@pytest.mark.parametrize("method", ["QXPBA", "get", "M-SEARCH", "PROPFIND", "x" * 100])
def test_an_unknown_method_is_labelled_other(method):
    assert telemetry.method_label(method) == "other"


@pytest.mark.parametrize("method", sorted(telemetry.METHODS))
def test_a_known_method_is_its_own_label(method):
    assert telemetry.method_label(method) == method


@pytest.mark.parametrize(
    ("environ", "field"),
    [
        ({}, "Host"),
        ({"HTTP_HOST": ""}, "Host"),
        ({"HTTP_HOST": "a b"}, "Host"),
        ({"HTTP_HOST": "127.0.0.1,evil.example"}, "Host"),
        ({"HTTP_HOST": "h", "HTTP_TRANSFER_ENCODING": "chunked, chunked"}, "Transfer-Encoding"),
        ({"HTTP_HOST": "h", "HTTP_TRANSFER_ENCODING": "identity"}, "Transfer-Encoding"),
    ],
)
def test_request_problems(environ, field):
    problem = request_problem(environ)
    assert isinstance(problem, ServingError) and problem.status == 400
    assert problem.details[0].field == field


@pytest.mark.parametrize(
    "host",
    ["localhost", "10.1.2.3:8000", "[::1]:8000", "ml-api.example.com", "EXAMPLE.org", "ml_api"],
)
def test_a_host_header_naming_one_host_passes(host):
    assert request_problem({"HTTP_HOST": host, "HTTP_TRANSFER_ENCODING": "Chunked"}) is None


def _call(app, environ):
    sent = {}

    def start_response(status, headers, exc_info=None):
        sent["status"], sent["headers"] = status, headers

    out = app(environ, start_response)
    body = b"".join(out)
    out.close()
    return sent, body


def test_the_policy_answers_in_json_before_the_app_runs():
    def app(environ, start_response):  # pragma: no cover - never reached
        raise AssertionError("the app ran")

    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/health", "wsgi.input": io.BytesIO()}
    sent, body = _call(for_server(app), environ)
    assert sent["status"] == "400 Bad Request"
    assert dict(sent["headers"])["Content-Type"] == "application/json"
    assert json.loads(body)["details"][0]["field"] == "Host"


def test_a_refused_transfer_encoding_closes_the_connection():
    def app(environ, start_response):  # pragma: no cover - never reached
        raise AssertionError("the app ran")

    environ = {
        "HTTP_HOST": "h",
        "HTTP_TRANSFER_ENCODING": "chunked, chunked",
        "wsgi.input": io.BytesIO(b"0\r\n\r\n"),
    }
    sent, _ = _call(for_server(app), environ)
    assert ("Connection", "close") in sent["headers"]


def test_an_early_answer_reads_the_rest_of_the_body_after_writing_it():
    def app(environ, start_response):
        start_response("413 Content Too Large", [("Content-Type", "application/json")])
        return [b"{}"]

    body = io.BytesIO(b"x" * 3_500_000)
    environ = {"HTTP_HOST": "h", "CONTENT_LENGTH": "3500000", "wsgi.input": body}
    _call(CloseUnreadBodies(app), environ)
    assert body.tell() == 3_500_000  # read and dropped: the client reads its 413, no reset


def test_lingering_is_bounded():
    def app(environ, start_response):
        start_response("413 Content Too Large", [])
        return [b""]

    size = LINGER_BYTES * 2
    body = io.BytesIO(b"x" * size)
    _call(CloseUnreadBodies(app), {"CONTENT_LENGTH": str(size), "wsgi.input": body})
    assert body.tell() <= LINGER_BYTES + 256 * 1024


class _Socket:
    """Records the read timeouts set on it (the middleware's view of gunicorn's socket)."""

    def __init__(self) -> None:
        self.timeouts: list[float | None] = []

    def settimeout(self, value: float | None) -> None:
        self.timeouts.append(value)


def _answer_ok(environ, start_response):
    assert environ["wsgi.input"].read() == b"{}"
    start_response("200 OK", [("Content-Type", "application/json")])
    return [b"{}"]


def test_a_body_still_on_the_socket_is_read_under_the_timeout():
    sock = _Socket()
    environ = {"CONTENT_LENGTH": "2", "wsgi.input": io.BytesIO(b"{}"), "gunicorn.socket": sock}
    sent, _ = _call(CloseUnreadBodies(_answer_ok, read_timeout=3.0), environ)
    assert sent["status"] == "200 OK"
    assert sock.timeouts == [3.0, None]  # set for the body, cleared for gunicorn's writes


def test_a_body_already_read_off_the_socket_sets_no_timeout():
    sock = _Socket()
    environ = {"CONTENT_LENGTH": "2", "wsgi.input": io.BytesIO(b"{}"), "gunicorn.socket": sock}
    with body_buffered():
        sent, _ = _call(CloseUnreadBodies(_answer_ok, read_timeout=3.0), environ)
    assert sent["status"] == "200 OK"
    assert sock.timeouts == []
