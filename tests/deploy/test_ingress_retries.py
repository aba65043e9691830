"""The production Ingress retries only what cannot replay overload, in a real nginx.

nginx (Debian's, a foreground process of the test) runs the directives ingress-nginx makes of the
production Ingress's annotations (tests/container/balancer.py reads them from ingress.yaml), in
front of stub pods on loopback that count the requests they receive. The read timeout is shortened
to 1 s so a "slow pod" case takes seconds; everything else is the Ingress's.

- A pod that is slow (the request times out at the proxy) gets the request once: no other pod is
  sent the same work (a timeout means busy; a retry would multiply an overload).
- A pod that refuses with 503 (draining, not ready) or cannot be reached: the POST goes to another
  pod, and all tries together are bounded by ``proxy-next-upstream-tries``.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from tests.container.balancer import Balancer, ingress_annotations
from tests.tools import require_tool

BODY = b'{"features": ["Biscoe", 50.0, 15.0, 220.0, 5500.0, "male"]}'


class Pod:
    """A stub replica: answers ``status`` to POST after ``delay`` seconds, counts the POSTs."""

    def __init__(self, status: int = 200, delay: float = 0.0) -> None:
        self.status, self.delay, self.posts = status, delay, 0
        pod = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # nginx's own start-up check goes through /health
                self._answer(200)

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                pod.posts += 1
                time.sleep(pod.delay)
                self._answer(pod.status)

            def _answer(self, status: int) -> None:
                body = b'{"ok": true}'
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def closed_port() -> int:
    """A loopback port nothing listens on (a pod that is gone: connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def nginx(tmp_path: Path) -> Iterator[object]:
    require_tool("nginx")
    started: list[Balancer] = []
    pods: list[Pod] = []

    def start(*specs: Pod | int) -> Balancer:
        pods.extend(s for s in specs if isinstance(s, Pod))
        ports = [s.port if isinstance(s, Pod) else s for s in specs]
        prefix = tmp_path / f"nginx{len(started)}"
        prefix.mkdir()
        balancer = Balancer(prefix, ports, proxy_read_timeout="1")
        started.append(balancer)
        return balancer

    yield start
    for balancer in started:
        balancer.stop()
    for pod in pods:
        pod.close()


def post(balancer: Balancer) -> requests.Response:
    return requests.post(
        balancer.url + "/predict",
        data=BODY,
        headers={"Content-Type": "application/json"},
        timeout=30,
    )


def test_the_ingress_does_not_retry_timeouts() -> None:
    notes = ingress_annotations()
    conditions = notes["proxy-next-upstream"].split()
    assert "timeout" not in conditions and "http_504" not in conditions
    assert {"error", "http_502", "http_503", "non_idempotent"} <= set(conditions)
    assert int(notes["proxy-next-upstream-tries"]) == 2
    assert int(notes["proxy-read-timeout"]) > 10  # above the app's ML_API_REQUEST_TIMEOUT_SECONDS
    assert int(notes["proxy-next-upstream-timeout"]) >= int(notes["proxy-read-timeout"])


def test_a_slow_pod_gets_the_request_once_and_no_other_pod_gets_it(nginx) -> None:
    slow = [Pod(delay=2.5), Pod(delay=2.5), Pod(delay=2.5)]
    balancer = nginx(*slow)
    answer = post(balancer)
    assert answer.status_code == 504
    time.sleep(2.0)  # any replay would have reached a pod by now
    assert sum(p.posts for p in slow) == 1, [p.posts for p in slow]


def test_a_draining_pod_passes_the_post_to_another(nginx) -> None:
    draining, ready = Pod(status=503), Pod(status=200)
    balancer = nginx(draining, ready)
    answers = [post(balancer).status_code for _ in range(4)]
    assert answers == [200] * 4
    assert ready.posts == 4 and draining.posts >= 1


def test_a_gone_pod_passes_the_post_to_another(nginx) -> None:
    ready = Pod(status=200)
    balancer = nginx(closed_port(), ready)
    assert [post(balancer).status_code for _ in range(4)] == [200] * 4
    assert ready.posts == 4


def test_retries_are_bounded(nginx) -> None:
    pods = [Pod(status=503) for _ in range(4)]
    balancer = nginx(*pods)
    assert post(balancer).status_code == 503
    assert sum(p.posts for p in pods) == 2  # proxy-next-upstream-tries
