"""``docker stop`` while traffic flows: no request is lost, the container exits by itself within
the grace period, and every log line is one JSON object.

The traffic goes the way a load balancer sends it: a readiness prober polls ``GET /ready`` (every
0.1 s, like a Kubernetes readiness probe or an LB health check) and the clients stop sending new
requests once it answers 503. The server keeps serving for ``ML_API_DRAIN_SECONDS`` (5 s) after
SIGTERM, far longer than the probe period, so no request may fail: not those sent between the
SIGTERM and the prober noticing, nor those in flight when the listeners close. (Clients that ignore
readiness and keep connecting straight to the container until it stops listening can see their
last connection reset; no server-side setting avoids that.)
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import pytest
import requests

from tests.container.engine import REPORT, SESSION_ID, Container, free_port

pytestmark = pytest.mark.container

GRACE_SECONDS = 30  # docker stop -t: above the 5 s drain plus gunicorn's 20 s graceful timeout
CLIENTS = 4
MAX_REQUESTS = 20_000  # bounds the load whatever happens
MAX_SECONDS = 60.0
PAUSE_SECONDS = 0.005  # between one client's requests: steady, not a flood
PROBE_PERIOD = 0.1
PREDICT = {"features": ["Biscoe", 50.0, 15.0, 220.0, 5500.0, "male"]}


@dataclass
class Tally:
    """What the clients saw: HTTP statuses of answered requests, and every failure."""

    answered: Counter = field(default_factory=Counter)
    answered_after_sigterm: int = 0
    failed: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def sent(self) -> int:
        return sum(self.answered.values()) + len(self.failed)


class Rotation:
    """The load balancer's view: in rotation until ``/ready`` answers anything but 200."""

    def __init__(self, url: str, deadline: float) -> None:
        self.out = threading.Event()
        self.sigterm_sent = threading.Event()
        self.deadline = deadline
        self.url = url

    def probe(self) -> None:
        while not self.out.is_set() and time.monotonic() < self.deadline:
            try:
                if requests.get(self.url + "/ready", timeout=2).status_code != 200:
                    self.out.set()
            except requests.RequestException:
                self.out.set()
            time.sleep(PROBE_PERIOD)


def client(url: str, tally: Tally, rotation: Rotation) -> None:
    with requests.Session() as session:
        while (
            not rotation.out.is_set()
            and time.monotonic() < rotation.deadline
            and tally.sent < MAX_REQUESTS
        ):
            try:
                r = session.post(url + "/predict", json=PREDICT, timeout=GRACE_SECONDS)
                status = r.status_code if r.json().get("prediction") == ["Gentoo"] else -1
            except (requests.RequestException, ValueError) as exc:
                with tally.lock:
                    tally.failed.append(repr(exc))
                continue
            with tally.lock:
                tally.answered[status] += 1
                tally.answered_after_sigterm += rotation.sigterm_sent.is_set()
            time.sleep(PAUSE_SECONDS)


def test_docker_stop_under_load_loses_no_request(image):
    name = f"ml_api-test-{SESSION_ID}-stop"
    with Container(image.ref, name, free_port(), {"WEB_CONCURRENCY": "2"}) as container:
        container.wait_ready()
        tally = Tally()
        rotation = Rotation(container.url, time.monotonic() + MAX_SECONDS)
        threads = [threading.Thread(target=rotation.probe)] + [
            threading.Thread(target=client, args=(container.url, tally, rotation))
            for _ in range(CLIENTS)
        ]
        for t in threads:
            t.start()
        while sum(tally.answered.values()) < 200 and time.monotonic() < rotation.deadline:
            time.sleep(0.05)  # traffic is flowing before the stop
        rotation.sigterm_sent.set()
        stop_seconds = container.stop(GRACE_SECONDS)  # returns once the container has exited
        for t in threads:
            t.join(GRACE_SECONDS)
        state = container.state()
        lines = container.log_lines()

    answered = sum(tally.answered.values())
    REPORT["docker stop under load"] = (
        f"sent {tally.sent}, answered {answered} ({tally.answered_after_sigterm} of them after "
        f"SIGTERM), failed {len(tally.failed)}; docker stop took {stop_seconds:.1f} s "
        f"(5 s drain included), exit code {state['ExitCode']}"
    )
    assert rotation.out.is_set(), "readiness never left 200 after SIGTERM"
    assert answered >= 200
    assert tally.failed == [], tally.failed[:5]
    assert set(tally.answered) == {200}, tally.answered
    # Exit code 0: gunicorn exited by itself; 137 would mean SIGKILL at the end of the grace period.
    assert state["ExitCode"] == 0 and not state["OOMKilled"], (state, lines[-20:])
    assert any("drain" in line for line in lines), lines[-20:]
    not_json = []
    for line in lines:
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            not_json.append(line)
            continue
        assert isinstance(record, dict), line
        assert {"timestamp", "level", "logger", "message"} <= set(record), line
    assert not_json == [], not_json[:10]
