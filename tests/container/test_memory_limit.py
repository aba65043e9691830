"""The image stays under the Deployment's memory limit with every request answered, and the
memory one request in flight costs is measured (docs/kubernetes.md "Sizing" derives the limit).

Each framework's production manifest is rendered with ``kubectl kustomize``; its container's memory
and CPU limits, worker count (``WEB_CONCURRENCY``, which the downward API sets to the CPU limit
rounded up), threads and request limits are applied to a real container (``docker run --memory
<limit> --memory-swap <limit> --cpus <limit>``: no swap to hide in). Closed-loop clients then keep
1, 16, 64 (a worker's request threads) and 128 ``/predict`` requests of ``ML_API_MAX_INSTANCES``
rows in flight, :data:`ROUNDS` requests each (bounded; loopback only), while the cgroup's anonymous
memory is sampled. Every request must be answered 200: a 504 or a dropped connection fails the
test, since a request given up early frees its memory and would make the peak look smaller. (The
request time limit is raised to :data:`TIME_LIMIT_SECONDS` here, so that the shared machine's
slowness is not mistaken for a failure; memory, not latency, is what this test measures.) No
process may be OOM-killed. The peak per level, and the slope between 1 and 64 in flight (MiB per
request in flight), go into the report for the sizing table.
"""

from __future__ import annotations

import http.client
import json
import math
import re
import secrets
import threading
import time
from typing import Any

import pytest

from tests.conftest import VALID_ROW
from tests.container.engine import REPORT, SESSION_ID, Container, free_port
from tests.deploy.kit import VARIANTS, documents, find, render

pytestmark = pytest.mark.container

LEVELS = (1, 16, 64, 128)
"""Requests in flight: one, a quarter of a worker's 64 threads, all of them, twice as many (the
second 64 wait in gunicorn's queue, not yet read: they should cost next to nothing)."""
ROUNDS = 3
TIME_LIMIT_SECONDS = 120
HEADROOM = 1.25
"""The manifest's limit must exceed the peak with every thread busy by this factor at least."""
FRAMEWORK_VARIANTS = {"flask": "production", "django": "production+django+spot"}


def mebibytes(quantity: str) -> int:
    """A Kubernetes memory quantity in Mi or Gi, in MiB."""
    match = re.fullmatch(r"(\d+)(Mi|Gi)", quantity)
    assert match, f"write memory quantities in Mi or Gi: {quantity}"
    return int(match.group(1)) * (1024 if match.group(2) == "Gi" else 1)


def manifest(framework: str) -> tuple[dict[str, Any], dict[str, str]]:
    """The rendered ml-api container and its ConfigMap data for this framework's variant."""
    variant = next(v for v in VARIANTS if v.name == FRAMEWORK_VARIANTS[framework])
    docs = documents(render(variant))
    deployment = find(docs, "Deployment", "ml-api-deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    (ref,) = container["envFrom"]
    return container, find(docs, "ConfigMap", ref["configMapRef"]["name"])["data"]


def cgroup_memory(container: Container) -> tuple[int, int]:
    """(anonymous bytes now, OOM kills so far) of the container's cgroup, v1 or v2."""
    script = (
        "if [ -f /sys/fs/cgroup/memory.stat ]; then "
        "cat /sys/fs/cgroup/memory.stat /sys/fs/cgroup/memory.events; "
        "else cat /sys/fs/cgroup/memory/memory.stat /sys/fs/cgroup/memory/memory.oom_control; fi"
    )
    out = container.exec("sh", "-c", script).stdout
    fields = dict(line.split()[:2] for line in out.splitlines() if len(line.split()) >= 2)
    anon = int(fields.get("anon", fields.get("total_rss", fields.get("rss", "0"))))
    return anon, int(fields.get("oom_kill", "0"))


def load(container: Container, body: bytes, clients: int) -> tuple[list[int | str], int]:
    """Keep ``clients`` requests in flight, :data:`ROUNDS` each; return statuses and peak anon."""
    statuses: list[int | str] = []
    peak = [cgroup_memory(container)[0]]
    loading = threading.Event()
    loading.set()

    def sample() -> None:
        while loading.is_set():
            try:
                peak[0] = max(peak[0], cgroup_memory(container)[0])
            except AssertionError:
                return  # the container is gone; the caller's checks say why
            time.sleep(0.25)

    def client() -> None:
        for _ in range(ROUNDS):
            conn = http.client.HTTPConnection("127.0.0.1", container.port, timeout=300)
            try:
                conn.request("POST", "/predict", body, {"Content-Type": "application/json"})
                response = conn.getresponse()
                response.read()
                statuses.append(response.status)
            except OSError as exc:
                statuses.append(type(exc).__name__)
            finally:
                conn.close()

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=900)
    loading.clear()
    sampler.join(timeout=30)
    return statuses, max(peak[0], cgroup_memory(container)[0])


@pytest.mark.parametrize("framework", ["flask", "django"])
def test_every_request_answered_within_the_memory_limit(image, framework: str) -> None:
    spec, config = manifest(framework)
    limit_mib = mebibytes(spec["resources"]["limits"]["memory"])
    assert spec["resources"]["requests"]["memory"] == spec["resources"]["limits"]["memory"]
    cpus = spec["resources"]["limits"]["cpu"]
    cpus = float(cpus[:-1]) / 1000 if cpus.endswith("m") else float(cpus)
    workers = next(e for e in spec["env"] if e["name"] == "WEB_CONCURRENCY")
    assert workers["valueFrom"]["resourceFieldRef"]["resource"] == "limits.cpu"
    rows = int(config["ML_API_MAX_INSTANCES"])
    body = json.dumps({"features": [VALID_ROW] * rows}).encode()
    assert len(body) <= int(config["ML_API_MAX_BODY_BYTES"])
    env = {
        k: v
        for k, v in config.items()
        if k in ("ML_API_FRAMEWORK", "WEB_CONCURRENCY", "ML_API_MAX_INSTANCES")
        or k in ("ML_API_MAX_BODY_BYTES", "ML_API_THREADS")
    }
    env["WEB_CONCURRENCY"] = str(math.ceil(cpus))  # what the downward API gives the pod
    env["ML_API_REQUEST_TIMEOUT_SECONDS"] = str(TIME_LIMIT_SECONDS)
    if framework == "django":
        env |= {"ML_API_SECRET_KEY": secrets.token_urlsafe(50), "ML_API_ALLOWED_HOSTS": "*"}
    memory = [f"--memory={limit_mib}m", f"--memory-swap={limit_mib}m", f"--cpus={cpus}"]
    container = Container(
        image.ref, f"ml_api-test-{SESSION_ID}-mem-{framework}", free_port(), env, extra_args=memory
    )
    peaks: dict[int, int] = {}
    answered: dict[int, list[int | str]] = {}
    try:
        container.wait_ready()
        load(container, body, 1)  # warm: the first large request's allocations
        idle, _ = cgroup_memory(container)
        for level in LEVELS:
            answered[level], peaks[level] = load(container, body, level)
        _, oom_kills = cgroup_memory(container)
        state = container.state()
        logs = container.logs()
        malloc = container.exec("sh", "-c", "echo $MALLOC_ARENA_MAX").stdout.strip()
    finally:
        container.remove()
    mib = 1024 * 1024
    per_request = (peaks[64] - peaks[1]) / 63 / mib
    REPORT[
        f"{framework} memory (MiB anon), {rows}-row requests: idle / peak at 1, 16, 64, 128 "
        "in flight / limit"
    ] = (  # fmt: skip
        f"{idle / mib:.0f} / "
        + ", ".join(f"{peaks[n] / mib:.0f}" for n in LEVELS)
        + f" / {limit_mib}; {per_request:.2f} MiB per request in flight"
    )
    assert malloc == "2"  # the image's allocator setting: arenas independent of the node's CPUs
    assert state["OOMKilled"] is False and state["Running"] is True, state
    assert oom_kills == 0
    assert "out of memory" not in logs.lower(), logs[-3000:]
    for level in LEVELS:
        assert answered[level] == [200] * (level * ROUNDS), (
            level,
            sorted(map(str, answered[level])),
        )
    assert max(peaks.values()) * HEADROOM <= limit_mib * mib, (
        f"peak {max(peaks.values()) / mib:.0f} MiB x {HEADROOM} is over the {limit_mib}Mi limit"
    )
