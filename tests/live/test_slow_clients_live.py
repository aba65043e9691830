"""Slow clients do not stall the default server: predictions keep being answered meanwhile.

Each server runs one worker with 4 request threads and is held by 24 connections (six times its
threads) that send their request head, or a small body, one byte at a time and never finish.
gunicorn's plain ``gthread`` worker gave each such connection a thread as soon as its first byte
arrived, so predictions stopped until the slow clients left. Loopback only; every wait is bounded
and generous (a liveness bound, never a timing assertion).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import requests

from tests.conftest import DJANGO_SECRET_KEY
from tests.contract.table import VALID
from tests.live.server import both_frameworks

pytestmark = pytest.mark.live

THREADS = 4
SLOW = 24
"""Slow connections held open: six times the worker's request threads."""
PREDICTIONS = 12
BOUND_SECONDS = 30
"""Longest wait for one normal request (a liveness bound)."""

SLOW_HEAD = b"POST /predict HTTP/1.1\r\nHost: x\r\n" + b"X-Slow: y\r\n" * 40
SLOW_BODY = (
    b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    b"Content-Length: 200\r\n\r\n" + b" " * 199
)
"""Heads (and a body) the slow clients send one byte at a time; neither is ever finished."""


@pytest.fixture(scope="module")
def servers(model_root):
    """Flask and Django under the default server, one worker of 4 threads each."""
    env = {
        "ML_API_THREADS": str(THREADS),
        "ML_API_SECRET_KEY": DJANGO_SECRET_KEY,
        "ML_API_DRAIN_SECONDS": "0",
    }
    with both_frameworks(model_root, env) as started:
        yield started


@contextmanager
def slow_clients(port: int, n: int, script: bytes, stop_before_end: int = 1) -> Iterator[dict]:
    """``n`` connections each sending ``script`` one byte per 0.2 s from a background thread.

    The last ``stop_before_end`` bytes are never sent. Yields a dict counting the connections the
    server closed (``closed``) and those still open at the end (``open``).
    """
    socks = [socket.create_connection(("127.0.0.1", port), timeout=BOUND_SECONDS) for _ in range(n)]
    done = threading.Event()
    seen = {"closed": 0, "open": 0}
    live = set(range(n))

    def dribble() -> None:
        for offset in range(len(script) - stop_before_end):
            for i in sorted(live):
                try:
                    socks[i].send(script[offset : offset + 1])
                except OSError:
                    live.discard(i)
                    seen["closed"] += 1
            if done.wait(0.2):
                return

    thread = threading.Thread(target=dribble, daemon=True)
    thread.start()
    try:
        yield seen
    finally:
        done.set()
        thread.join(timeout=BOUND_SECONDS)
        seen["open"] = len(live)
        for sock in socks:
            sock.close()


def _predictions(url: str, keep_alive: bool) -> list[int]:
    """Statuses of :data:`PREDICTIONS` predictions, on one kept-alive connection or new ones."""
    headers = {"Content-Type": "application/json"}
    with requests.Session() as session:
        post = session.post if keep_alive else requests.post
        return [
            post(url + "/predict", data=VALID, headers=headers, timeout=BOUND_SECONDS).status_code
            for _ in range(PREDICTIONS)
        ]


@pytest.mark.parametrize("script", [SLOW_HEAD, SLOW_BODY], ids=["slow-head", "slow-body"])
@pytest.mark.parametrize("framework", ["flask", "django"])
def test_predictions_are_answered_while_slow_clients_hold_connections(servers, framework, script):
    srv = servers[framework]
    with slow_clients(srv.port, SLOW, script) as seen:
        statuses = _predictions(srv.url, keep_alive=True)
        probes = [
            requests.get(srv.url + path, timeout=BOUND_SECONDS).status_code
            for path in ("/health", "/ready")
        ]
        fresh = _predictions(srv.url, keep_alive=False)
    assert statuses == [200] * PREDICTIONS, srv.output()[-3000:]
    assert fresh == [200] * PREDICTIONS
    assert probes == [200, 200]
    # The server held the slow connections (it did not win by dropping them all).
    assert seen["open"] == SLOW, seen
