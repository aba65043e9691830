"""Odd and hostile requests (issue 12) against real gunicorn and granian servers, Flask and Django:
bounded error bodies and log lines, kept-alive connections after an early refusal, CORS."""

from __future__ import annotations

import http.client
import json
import socket

import pytest

from ml_api.core.errors import MAX_ERROR_BODY_BYTES
from tests.conftest import DJANGO_SECRET_KEY
from tests.contract.table import VALID
from tests.live.conftest import SERVERS
from tests.live.server import both_frameworks

pytestmark = pytest.mark.live

ORIGIN = "https://app.example.com"
KEY = {"X-API-Key": "k-1"}
JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module", params=SERVERS)
def servers(request, model_root):
    env = {
        "ML_API_SERVER": request.param,
        "ML_API_MAX_BODY_BYTES": "1048576",  # the default, 1 MiB
        "ML_API_CORS_ORIGINS": ORIGIN,
        "ML_API_API_KEYS": "k-1",
        "ML_API_SECRET_KEY": DJANGO_SECRET_KEY,
        "ML_API_DRAIN_SECONDS": "0",
    }
    with both_frameworks(model_root, env) as started:
        yield started


@pytest.fixture(params=["flask", "django"])
def server(request, servers):
    return servers[request.param]


_OPEN: list[http.client.HTTPConnection] = []


@pytest.fixture(autouse=True)
def _close_connections():
    yield
    while _OPEN:
        _OPEN.pop().close()


def _connection(server) -> http.client.HTTPConnection:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    _OPEN.append(conn)
    conn.auto_open = 0  # never reconnect silently: a closed connection must show
    conn.connect()
    return conn


def _request(conn, method, path, body=b"", headers=None):
    conn.request(method, path, body, {**KEY, **JSON, **(headers or {})})
    r = conn.getresponse()
    return r, r.read()


# ---- 1. bounded error bodies and log lines over HTTP ------------------------------------------


def test_huge_values_give_bounded_bodies_and_log_lines(server):
    conn = _connection(server)
    body = json.dumps({"features": ["A" * 200_000, 50.0, 15.0, 220.0, 5500.0, "male"]}).encode()
    r, data = _request(conn, "POST", "/predict", body)
    assert r.status == 422 and len(data) <= MAX_ERROR_BODY_BYTES
    path = "/" + "p" * 4000  # near gunicorn's request-line limit
    r, data = _request(conn, "GET", path)
    assert r.status == 404 and len(data) <= MAX_ERROR_BODY_BYTES
    lines = server.output().splitlines()
    assert lines and max(len(line.encode()) for line in lines) <= MAX_ERROR_BODY_BYTES
    assert not any(len(line) > 3000 and "p" * 3000 in line for line in lines)


# ---- 6. kept-alive connections after an early refusal -----------------------------------------


def test_a_refused_large_body_closes_the_connection_and_says_so(server):
    conn = _connection(server)
    r, data = _request(conn, "POST", "/predict", b"{" + b" " * (1536 * 1024) + b"}")
    assert r.status == 413
    assert r.getheader("Connection") == "close"
    assert r.will_close
    assert json.loads(data)["details"][0]["field"] == "Content-Length"


def test_a_refusal_with_little_unread_keeps_the_connection_usable(server):
    conn = _connection(server)
    r, _ = _request(conn, "POST", "/predict", VALID, {"Content-Type": "text/plain"})
    assert r.status == 415
    assert r.getheader("Connection") != "close"
    r, data = _request(conn, "POST", "/predict", VALID)  # the same connection
    assert r.status == 200 and json.loads(data)["prediction"] == ["Gentoo"]


@pytest.mark.parametrize(
    ("headers", "status"),
    [({"Content-Type": "text/plain"}, 415), ({"X-API-Key": "wrong"}, 401),
     ({"Content-Encoding": "br"}, 415)],
)  # fmt: skip
def test_other_early_refusals_of_a_large_body_close_too(server, headers, status):
    conn = _connection(server)
    r, _ = _request(conn, "POST", "/predict", b" " * 500_000, headers)
    assert r.status == status
    assert r.getheader("Connection") == "close"


def test_the_raw_socket_sees_the_close(server):
    body = b" " * (1536 * 1024)
    head = (
        f"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"X-API-Key: k-1\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as s:
        s.sendall(head)
        received = b""
        while b"\r\n\r\n" not in received:
            received += s.recv(65536)
        assert received.startswith(b"HTTP/1.1 413")
        # header names are case-insensitive (gunicorn sends "Connection", granian "connection")
        assert b"\r\nconnection: close\r\n" in received.lower()


# ---- 7. CORS ----------------------------------------------------------------------------------


PREFLIGHT = {
    "Origin": ORIGIN,
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "content-type, x-api-key",
}


def _preflight(server, path="/predict", origin=ORIGIN):
    conn = _connection(server)
    conn.request("OPTIONS", path, headers={**PREFLIGHT, "Origin": origin})
    r = conn.getresponse()
    r.read()
    return r


@pytest.mark.parametrize("path", ["/predict", "/v2/models/penguins/infer"])
def test_a_preflight_needs_no_key(server, path):
    r = _preflight(server, path)
    assert r.status == 200
    assert r.getheader("Access-Control-Allow-Origin") == ORIGIN
    methods = {m.strip() for m in r.getheader("Access-Control-Allow-Methods").split(",")}
    assert "POST" in methods
    allowed = {h.strip().lower() for h in r.getheader("Access-Control-Allow-Headers").split(",")}
    assert {"content-type", "x-api-key"} <= allowed
    assert r.getheader("Access-Control-Max-Age") == "600"


def test_a_preflight_from_another_origin_gets_no_grant(server):
    r = _preflight(server, origin="https://evil.example.net")
    assert r.getheader("Access-Control-Allow-Origin") is None


def test_the_actual_request_still_needs_its_key_and_gets_the_cors_headers(server):
    conn = _connection(server)
    r, _ = _request(conn, "POST", "/predict", VALID, {"Origin": ORIGIN})
    assert r.status == 200
    assert r.getheader("Access-Control-Allow-Origin") == ORIGIN
    assert "x-request-id" in r.getheader("Access-Control-Expose-Headers").lower()
    assert "origin" in r.getheader("Vary").lower()
    conn.request("POST", "/predict", VALID, {**JSON, "Origin": ORIGIN})  # no key
    r = conn.getresponse()
    r.read()
    assert r.status == 401
    assert r.getheader("Access-Control-Allow-Origin") == ORIGIN  # the page can read the 401


CORS_HEADERS = (
    "Access-Control-Allow-Origin",
    "Access-Control-Allow-Methods",
    "Access-Control-Max-Age",
    "Access-Control-Expose-Headers",
)


def _cors(r) -> dict:
    out = {}
    for name in CORS_HEADERS:
        value = r.getheader(name)
        out[name] = None if value is None else sorted(v.strip().lower() for v in value.split(","))
    return out


@pytest.mark.parametrize("origin", [ORIGIN, "https://evil.example.net"])
@pytest.mark.parametrize("method", ["OPTIONS", "POST", "GET"])
def test_flask_and_django_send_the_same_cors_headers(servers, origin, method):
    replies = []
    for srv in servers.values():
        conn = _connection(srv)
        if method == "OPTIONS":
            conn.request("OPTIONS", "/predict", headers={**PREFLIGHT, "Origin": origin})
        else:
            path = "/predict" if method == "POST" else "/metadata"
            conn.request(method, path, VALID, {**KEY, **JSON, "Origin": origin})
        r = conn.getresponse()
        r.read()
        replies.append((r.status, _cors(r), "origin" in (r.getheader("Vary") or "").lower()))
    assert replies[0] == replies[1]
