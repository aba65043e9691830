"""The contract Kubernetes relies on, with real containers: replicas come and go under load.

Three replicas of the image (``--network host``, three ports) behind nginx (``balancer.py``), as
``ml-api-service`` and its Ingress put them behind one address. Under steady load:

1. Rolling replacement, as the Deployment's ``maxSurge: 1, maxUnavailable: 0`` does it, three
   times: start a new replica, wait until ``/ready``, add it to the upstreams, ``docker stop``
   (SIGTERM) an old one *while nginx still sends it traffic* (the worst case of an endpoints
   update that lags, which the pod's preStop sleep normally hides), and remove it from the
   upstreams once it has exited. Zero failed requests, and every old replica exits 0.
2. ``docker kill`` (SIGKILL, no drain) of one replica: nginx routes around it; failures are at
   most the requests in flight at that moment (one per client thread).

The measurements are printed in the container-measurements summary. Needs a Docker Engine and
Debian's nginx; skipped with the reason when either is missing.
"""

from __future__ import annotations

import collections
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import VALID_ROW
from tests.container.balancer import Balancer, Load
from tests.container.engine import REPORT, SESSION_ID, Container, docker, free_port
from tests.tools import find_tool, missing

pytestmark = pytest.mark.container

THREADS = 4
REPLICAS = 3
# Shorter than the Deployment's 5 s to keep the test short; the sequence is the same.
DRAIN_SECONDS = 2
ENV = {"WEB_CONCURRENCY": "2", "ML_API_DRAIN_SECONDS": str(DRAIN_SECONDS)}


@pytest.fixture
def nginx_prefix(tmp_path: Path) -> Path:
    if find_tool("nginx") is None and not Path("/usr/sbin/nginx").exists():
        missing("nginx")
    prefix = tmp_path / "nginx"
    prefix.mkdir()
    return prefix


@pytest.fixture
def replicas(image) -> Iterator[list[Container]]:
    """Containers started by the test; every one is removed at the end, whatever happened."""
    started: list[Container] = []
    yield started
    for container in started:
        container.remove()


def start_replica(image_ref: str, started: list[Container]) -> Container:
    n = len(started)
    container = Container(image_ref, f"k8s-rolling-{SESSION_ID}-{n}", free_port(), env=ENV)
    started.append(container)
    container.wait_ready()
    return container


def served_by(balancer: Balancer) -> collections.Counter[str]:
    """How many /predict requests each upstream answered (last attempt), from nginx's log."""
    counts: collections.Counter[str] = collections.Counter()
    for line in balancer.access_log():
        match = re.search(r"POST /predict upstream=(\S+(?:, \S+)*) ", line)
        if match:
            counts[match.group(1).split(", ")[-1]] += 1
    return counts


def retried(balancer: Balancer) -> int:
    return sum("POST /predict" in line and ", " in line for line in balancer.access_log())


def test_rolling_replacement_then_kill(image, replicas, nginx_prefix: Path) -> None:
    body = {"features": VALID_ROW}
    old = [start_replica(image.ref, replicas) for _ in range(REPLICAS)]
    balancer = Balancer(nginx_prefix, [c.port for c in old])
    try:
        # 1. Rolling replacement under load.
        load = Load(balancer.url, body, threads=THREADS, max_requests=30_000, max_seconds=300)
        load.wait_for(50)
        current = list(old)
        for retiring in old:
            new = start_replica(image.ref, replicas)
            balancer.set_upstreams([c.port for c in current] + [new.port])
            before = load.total
            retiring.stop(grace_seconds=30)  # SIGTERM while nginx still routes to it
            state = retiring.wait_exit(timeout=60)
            assert state["ExitCode"] == 0, retiring.logs()[-3000:]
            assert load.total > before, "no request completed while a replica shut down"
            current = [c for c in current if c is not retiring] + [new]
            balancer.set_upstreams([c.port for c in current])
        load.wait_for(load.total + 50)
        outcomes = load.stop()
        total, failed = sum(outcomes.values()), sum(v for k, v in outcomes.items() if k != "200")
        REPORT["rolling replacement: requests"] = total
        REPORT["rolling replacement: failed"] = failed
        REPORT["rolling replacement: retried by nginx"] = retried(balancer)
        errors = balancer.upstream_errors()
        REPORT["rolling replacement: upstream attempts failed"] = dict(errors)
        assert failed == 0, f"{outcomes}: {load.failures[:5]}"
        assert total >= 200
        by_upstream = served_by(balancer)
        for container in replicas:
            assert by_upstream[f"127.0.0.1:{container.port}"] > 0, (container.name, by_upstream)

        # 2. SIGKILL one replica under load: no drain, in-flight requests on it are lost or
        #    retried; nginx then routes around it.
        log_lines = len(balancer.access_log())
        load = Load(balancer.url, body, threads=THREADS, max_requests=10_000, max_seconds=120)
        load.wait_for(100)
        victim = current[0]
        victim_hits_before = served_by(balancer)[f"127.0.0.1:{victim.port}"]
        docker("kill", "--signal", "KILL", victim.name)
        load.wait_for(load.total + 300)
        outcomes = load.stop()
        total, failed = sum(outcomes.values()), sum(v for k, v in outcomes.items() if k != "200")
        REPORT["kill: requests"] = total
        REPORT["kill: failed"] = failed
        REPORT["kill: retried by nginx"] = sum(
            "POST /predict" in line and ", " in line for line in balancer.access_log()[log_lines:]
        )
        REPORT["kill: upstream attempts failed"] = dict(balancer.upstream_errors() - errors)
        assert failed <= THREADS, f"{outcomes}: {load.failures[:5]}"
        assert victim_hits_before > 0
        assert outcomes["200"] >= total - THREADS
    finally:
        balancer.stop()
