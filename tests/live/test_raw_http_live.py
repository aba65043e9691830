"""The HTTP wire, byte by byte, against Flask and Django behind real gunicorn and granian servers.

A raw socket sends what ``requests`` never would: broken chunked framing, bodies cut short,
requests without ``Host``, smuggling shapes, oversized heads, HTTP/1.0, pipelined requests and
stalled sends. Every answer is a clear refusal (JSON where the application answers) or the right
result, never a 5xx, and Flask and Django answer alike.
"""

from __future__ import annotations

import re
import socket
import time

import pytest
import requests

from tests.conftest import DJANGO_SECRET_KEY
from tests.contract.table import VALID
from tests.live.conftest import SERVERS
from tests.live.raw_http import Connection, Reply, exchange, request

pytestmark = pytest.mark.live

JSON = {"Content-Type": "application/json"}
CHUNKED = {**JSON, "Transfer-Encoding": "chunked"}
INFER = "/v2/models/penguins/infer"
BODY_PATHS = ("/predict", INFER, "/v2/models/penguins/versions/1/infer")
READ_TIMEOUT = 3
"""``ML_API_REQUEST_TIMEOUT_SECONDS`` of these servers: how long a stalled body is waited for."""


@pytest.fixture(scope="module", params=SERVERS)
def servers(request, model_root):
    from tests.live.server import both_frameworks

    env = {
        "ML_API_SERVER": request.param,
        "ML_API_MAX_BODY_BYTES": "1048576",  # the default, 1 MiB
        "ML_API_SECRET_KEY": DJANGO_SECRET_KEY,
        "ML_API_DRAIN_SECONDS": "0",
        "ML_API_REQUEST_TIMEOUT_SECONDS": str(READ_TIMEOUT),
    }
    with both_frameworks(model_root, env) as started:
        yield started


@pytest.fixture(params=["flask", "django"])
def server(request, servers):
    return servers[request.param]


def _both(servers, data: bytes, method: str = "POST") -> dict[str, Reply]:
    replies = {fw: exchange(srv.port, data, method) for fw, srv in servers.items()}
    assert all(r is not None for r in replies.values()), replies
    return replies  # type: ignore[return-value]


def _without_id(reply: Reply) -> tuple[int, str | None, dict]:
    body = reply.json()
    body.pop("request_id", None)
    return reply.status, reply.header("Content-Type"), body


def _assert_same(replies: dict[str, Reply]) -> None:
    """Flask and Django gave the same status, media type and body (the request id aside)."""
    flask, django = (_without_id(r) for r in replies.values())
    assert flask == django


def _series(srv, status: str) -> float:
    text = requests.get(srv.url + "/metrics", timeout=10).text
    pattern = rf'^ml_api_http_requests_total\{{[^}}]*status="{status}"[^}}]*\}} (\S+)$'
    return sum(float(m) for m in re.findall(pattern, text, re.MULTILINE))


def _errors_logged(srv) -> list[str]:
    return [line for line in srv.output().splitlines() if '"level": "ERROR"' in line]


# ---- chunked bodies with a broken framing: 400 JSON, never 500 --------------------------------

BROKEN_CHUNKS = {
    "negative size": b"-1\r\nab\r\n0\r\n\r\n",
    "0x prefix": b"0x10\r\n" + b"a" * 16 + b"\r\n0\r\n\r\n",
    "size overflows 64 bits": b"fffffffffffffffffffffffff\r\nab\r\n0\r\n\r\n",
    "not hex": b"zz\r\nab\r\n0\r\n\r\n",
    "data without its CRLF": b"2\r\n{}XX0\r\n\r\n",
    "empty size line": b"\r\n{}\r\n0\r\n\r\n",
}


@pytest.mark.parametrize("path", BODY_PATHS)
@pytest.mark.parametrize("body", BROKEN_CHUNKS.values(), ids=BROKEN_CHUNKS.keys())
def test_a_broken_chunked_body_is_a_400_json_error(servers, path, body):
    replies = _both(servers, request("POST", path, CHUNKED, body))
    for reply in replies.values():
        assert reply.status == 400, reply.body
        assert reply.header("Content-Type") == "application/json"
        assert reply.json()["error"]
    _assert_same(replies)
    flask = next(iter(servers.values()))
    if flask.server_name == "gunicorn":  # granian hands the app what arrived: no framing error
        problem = replies["flask"].json()["details"][0]
        assert problem["field"] == "Transfer-Encoding"


def test_no_broken_body_was_a_server_error(servers):
    for body in BROKEN_CHUNKS.values():
        _both(servers, request("POST", "/predict", CHUNKED, body))
    for srv in servers.values():
        assert _series(srv, "500") == 0
        assert _errors_logged(srv) == []


# ---- a client that leaves mid-body: recorded as 499, not an error -------------------------------


def _leave_mid_body(srv, head_and_part: bytes) -> None:
    with Connection(srv.port) as conn:
        conn.send(head_and_part)
        conn.sock.shutdown(socket.SHUT_WR)  # the client is done sending: the body ends early
        conn.reply("POST")  # whatever is written to a client that went away


LEFT = {
    "Content-Length": request("POST", "/predict", {**JSON, "Content-Length": "1000"}, b'{"feat'),
    "Content-Length V2": request("POST", INFER, {**JSON, "Content-Length": "1000"}, b'{"inpu'),
    "chunked": request("POST", "/predict", CHUNKED, b"40\r\n" + b'{"features": ['),
}


@pytest.mark.parametrize("shape", LEFT.keys())
def test_a_client_that_leaves_mid_body_is_counted_499_and_not_logged_as_error(server, shape):
    if shape == "chunked" and server.server_name == "granian":
        pytest.skip("granian ends a cut chunked body silently: the app sees a short body (400)")
    before = _series(server, "499")
    _leave_mid_body(server, LEFT[shape])
    after = before
    for _ in range(100):  # the server may still be writing its record when the client left
        after = _series(server, "499")
        if after > before:
            break
        time.sleep(0.05)
    assert after == before + 1
    assert _series(server, "500") == 0
    assert _errors_logged(server) == []


def test_a_cut_chunked_body_is_no_server_error_on_either_server(servers):
    for srv in servers.values():
        _leave_mid_body(srv, LEFT["chunked"])
        assert _series(srv, "500") == 0
        assert _errors_logged(srv) == []


# ---- refusals that reach the client: the whole body sent in one go ---------------------------


@pytest.mark.parametrize("path", ["/predict", INFER])
def test_a_large_body_sent_in_one_go_still_gets_its_413(server, path):
    body = b'{"features": [' + b" " * 3_500_000 + b"]}"  # 3.5 MB, over the 1 MiB limit
    with Connection(server.port) as conn:
        conn.send(request("POST", path, JSON, body))  # all of it, before reading anything
        reply = conn.reply("POST")
    assert reply is not None and reply.status == 413
    assert reply.json()["details"][0]["field"] == "Content-Length"
    assert reply.closes


def test_a_large_chunked_body_sent_in_one_go_still_gets_its_413(server):
    body = b"".join(b"10000\r\n" + b" " * 0x10000 + b"\r\n" for _ in range(56)) + b"0\r\n\r\n"
    with Connection(server.port) as conn:
        conn.send(request("POST", "/predict", CHUNKED, body))  # 3.5 MiB in 64 KiB chunks
        reply = conn.reply("POST")
    assert reply is not None and reply.status == 413


# ---- one Host policy, every route, both frameworks ---------------------------------------------

ROUTES = [
    ("GET", "/health"), ("GET", "/ready"), ("GET", "/metrics"), ("GET", "/metadata"),
    ("GET", "/openapi.json"), ("GET", "/v2/health/live"), ("GET", "/v2/health/ready"),
    ("GET", "/v2/models/penguins"), ("POST", "/predict"), ("POST", INFER), ("GET", "/nowhere"),
]  # fmt: skip


@pytest.mark.parametrize("version", ["HTTP/1.1", "HTTP/1.0"])
@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_a_request_without_host_is_a_400_on_every_route(servers, method, path, version):
    body = VALID if method == "POST" and path == "/predict" else b""
    replies = _both(servers, request(method, path, JSON, body, version=version, host=None))
    for reply in replies.values():
        assert reply.status == 400
        assert reply.json()["details"] == [
            {"instance": None, "field": "Host", "problem": "missing"}
        ]
    flask, django = replies.values()
    assert flask.body.replace(flask.json()["request_id"].encode(), b"") == django.body.replace(
        django.json()["request_id"].encode(), b""
    )


@pytest.mark.parametrize("host", ["", "a b", "127.0.0.1,evil.example", "[::1", "a:b:c"])
def test_a_malformed_host_is_a_400(servers, host):
    replies = _both(servers, request("GET", "/health", host=host), "GET")
    for reply in replies.values():
        assert reply.status == 400
    _assert_same(replies)


def test_a_host_with_a_control_character_is_refused(servers):
    for reply in _both(servers, request("GET", "/health", host="x\x7fy"), "GET").values():
        assert reply.status == 400  # gunicorn refuses the header itself (HTML), granian reaches us


def test_two_host_headers_are_refused(servers):
    data = request("GET", "/health", [("Host", "127.0.0.1"), ("Host", "evil.example")])
    for reply in _both(servers, data, "GET").values():
        assert reply.status == 400  # gunicorn refuses it itself (HTML); granian joins them


@pytest.mark.parametrize("version", ["HTTP/1.1", "HTTP/1.0"])
def test_probes_answer_the_pod_ip_as_host(servers, version):
    for path in ("/health", "/ready", "/v2/health/ready"):
        data = request("GET", path, version=version, host="10.1.2.3:8000")
        for reply in _both(servers, data, "GET").values():
            assert reply.status == 200


# ---- smuggling shapes: refused, never answered as two different requests ------------------------

SMUGGLED = b"GET /metadata HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
SMUGGLING = {
    "CL and TE": [("Content-Length", "4"), ("Transfer-Encoding", "chunked")],
    "TE and CL": [("Transfer-Encoding", "chunked"), ("Content-Length", "4")],
    "two CLs": [("Content-Length", "5"), ("Content-Length", str(5 + len(SMUGGLED)))],
    "CL list": [("Content-Length", f"5, {5 + len(SMUGGLED)}")],
    "TE xchunked": [("Transfer-Encoding", "xchunked")],
    "TE chunked, identity": [("Transfer-Encoding", "chunked, identity")],
    "TE identity": [("Transfer-Encoding", "identity"), ("Content-Length", "5")],
    "TE twice": [("Transfer-Encoding", "chunked"), ("Transfer-Encoding", "chunked")],
    "TE with a tab": [("Transfer-Encoding", "\tchunked"), ("Content-Length", "5")],
    "CL with a sign": [("Content-Length", "+5")],
}


@pytest.mark.parametrize("headers", SMUGGLING.values(), ids=SMUGGLING.keys())
def test_smuggling_shapes_are_refused(server, headers):
    body = b"0\r\n\r\n" + SMUGGLED
    with Connection(server.port) as conn:
        conn.send(
            request("POST", "/predict", [("Content-Type", "application/json"), *headers], body)
        )
        first = conn.reply("POST")
        assert first is not None and (400 <= first.status < 500 or first.status == 501), first
        try:
            second = conn.reply("GET") if not first.closes else None
        except (ConnectionResetError, TimeoutError):
            second = None
    # Either the server closed the connection, or what followed was not read as a request of its
    # own (it was the body's tail): no 200 /metadata answer smuggled in behind the refusal.
    assert second is None or b'"task"' not in second.body


# ---- limits of the request head -------------------------------------------------------------


def test_a_huge_request_line_is_refused(server):
    reply = exchange(server.port, request("GET", "/" + "a" * 70_000), "GET")
    assert reply is not None and reply.status in (414, 431)


@pytest.mark.parametrize(
    "headers",
    [[(f"X-H{i}", "v") for i in range(200)], [("X-Big", "v" * 100_000)]],
    ids=["200 headers", "one 100 KB header"],
)
def test_too_many_or_too_large_headers_are_a_431(server, headers):
    reply = exchange(server.port, request("GET", "/health", headers), "GET")
    assert reply is not None and reply.status == 431


# ---- HTTP/1.0 and pipelining --------------------------------------------------------------------


def test_http_1_0_is_answered_and_closed(server):
    with Connection(server.port) as conn:
        conn.send(request("POST", "/predict", JSON, VALID, version="HTTP/1.0"))
        reply = conn.reply("POST")
        assert reply is not None and reply.status == 200
        assert reply.json()["prediction"] == ["Gentoo"]
        assert conn.at_eof()  # no keep-alive asked for: the server closes


def test_pipelined_requests_get_their_answers_in_order(server):
    data = (
        request("GET", "/health")
        + request("POST", "/predict", JSON, VALID)
        + request("GET", "/nowhere")
        + request("POST", INFER, CHUNKED, b"2\r\n{}\r\n0\r\n\r\n")
        + request("GET", "/v2/health/live")
    )
    with Connection(server.port) as conn:
        conn.send(data)  # five requests in one write
        replies = [conn.reply(m) for m in ("GET", "POST", "GET", "POST", "GET")]
    assert [r.status for r in replies] == [200, 200, 404, 400, 200]
    assert replies[0].json() == {"status": "ok"}
    assert replies[1].json()["prediction"] == ["Gentoo"]
    assert replies[4].json() == {"live": True}


def test_a_request_sent_in_pieces_is_answered_and_its_connection_kept(server):
    whole = request("POST", "/predict", JSON, VALID)
    cut = whole.index(b"\r\n\r\n") + 4
    pieces = [whole[:10], whole[10:cut], whole[cut : cut + 5], whole[cut + 5 :]]
    with Connection(server.port) as conn:
        for piece in pieces:  # the head, then the body, each in several writes
            conn.send(piece)
            time.sleep(0.05)
        first = conn.reply("POST")
        conn.send(request("GET", "/health"))
        second = conn.reply("GET")
        conn.send(whole)  # then the usual request, in one write, on the same connection
        third = conn.reply("POST")
    assert [r.status for r in (first, second, third)] == [200, 200, 200]
    assert first.json()["prediction"] == third.json()["prediction"] == ["Gentoo"]
    assert first.header("Connection") != "close" and second.json() == {"status": "ok"}


# ---- stalled sends are bounded ---------------------------------------------------------------


def test_a_stalled_head_does_not_hold_up_other_clients(server):
    stalled = [Connection(server.port) for _ in range(8)]
    try:
        for conn in stalled:
            conn.send(b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Le")
        reply = exchange(server.port, request("POST", "/predict", JSON, VALID), "POST")
        assert reply is not None and reply.status == 200
    finally:
        for conn in stalled:
            conn.close()


def test_a_stalled_body_is_answered_408_and_frees_its_thread(server):
    if server.server_name == "granian":
        pytest.skip("granian has no body read timeout (docs/production.md, 'The HTTP wire')")
    with Connection(server.port) as conn:
        conn.send(request("POST", "/predict", {**JSON, "Content-Length": "100"}, b'{"fea'))
        reply = conn.reply("POST")  # nothing more is sent: the read timeout answers
    assert reply is not None and reply.status == 408
    assert str(READ_TIMEOUT) in reply.json()["error"]
