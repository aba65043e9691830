"""``docker stop`` while traffic flows: every request the server accepted is answered, the
container exits by itself within the grace period, and every log line is one JSON object."""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import pytest

from tests.container.engine import REPORT, SESSION_ID, Container, free_port

pytestmark = pytest.mark.container

GRACE_SECONDS = 30  # docker stop -t: longer than gunicorn's 20 s graceful timeout
CLIENTS = 4
MAX_REQUESTS = 20_000  # bounds the load whatever happens
MAX_SECONDS = 60.0
PAUSE_SECONDS = 0.005  # between one client's requests: steady, not a flood
BODY = json.dumps({"features": ["Biscoe", 50.0, 15.0, 220.0, 5500.0, "male"]})


@dataclass
class Tally:
    """What the clients saw. ``refused``: the connection was refused (the server had stopped
    listening: never accepted). ``failed``: connected, but no complete HTTP answer."""

    answered: Counter = field(default_factory=Counter)
    refused: int = 0
    failed: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def sent(self) -> int:
        return sum(self.answered.values()) + self.refused + len(self.failed)


def one_request(port: int, tally: Tally) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=GRACE_SECONDS)
    try:
        conn.connect()
    except ConnectionRefusedError:
        with tally.lock:
            tally.refused += 1
        return
    try:
        conn.request("POST", "/predict", BODY, {"Content-Type": "application/json"})
        response = conn.getresponse()
        payload = response.read()
        outcome = response.status if b"prediction" in payload or response.status != 200 else None
    except (OSError, http.client.HTTPException) as exc:
        with tally.lock:
            tally.failed.append(f"{type(exc).__name__}: {exc}")
        return
    finally:
        conn.close()
    with tally.lock:
        tally.answered[outcome] += 1


def client(port: int, tally: Tally, stop: threading.Event, deadline: float) -> None:
    while not stop.is_set() and time.monotonic() < deadline and tally.sent < MAX_REQUESTS:
        one_request(port, tally)
        time.sleep(PAUSE_SECONDS)


def test_docker_stop_under_load_drops_no_accepted_request(image):
    name = f"ml_api-test-{SESSION_ID}-stop"
    env = {"WEB_CONCURRENCY": "2"}
    with Container(image.ref, name, free_port(), env) as container:
        container.wait_ready()
        tally, stop = Tally(), threading.Event()
        deadline = time.monotonic() + MAX_SECONDS
        threads = [
            threading.Thread(target=client, args=(container.port, tally, stop, deadline))
            for _ in range(CLIENTS)
        ]
        for t in threads:
            t.start()
        while sum(tally.answered.values()) < 200 and time.monotonic() < deadline:
            time.sleep(0.05)  # traffic is flowing before the stop
        answered_before_stop = sum(tally.answered.values())
        stop_seconds = container.stop(GRACE_SECONDS)
        # keep sending briefly after the stop: those connections must be refused, not hang
        time.sleep(0.5)
        stop.set()
        for t in threads:
            t.join(GRACE_SECONDS + 10)
        state = container.state()
        lines = container.log_lines()

    REPORT["docker stop under load"] = (
        f"sent {tally.sent}, answered {sum(tally.answered.values())} "
        f"({answered_before_stop} before the stop), refused after close {tally.refused}, "
        f"failed {len(tally.failed)}; stop took {stop_seconds:.1f} s"
    )
    assert answered_before_stop >= 200
    assert tally.failed == [], tally.failed[:5]
    assert set(tally.answered) == {200}, tally.answered
    assert tally.refused > 0  # the load really outlived the server
    # Exit code 0: gunicorn exited by itself; 137 would mean SIGKILL after the grace period.
    assert state["ExitCode"] == 0 and not state["OOMKilled"], (state, lines[-20:])
    not_json = []
    for line in lines:
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            not_json.append(line)
            continue
        assert isinstance(record, dict) and {"timestamp", "level", "logger", "message"} <= set(
            record
        ), line
    assert not_json == [], not_json[:10]
