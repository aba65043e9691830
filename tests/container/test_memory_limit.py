"""The image stays under the Deployment's memory limit under concurrent maximum-size requests.

Issue 16, item 3: the Django pods were OOM-killed under batch traffic with the base's 512 Mi. Here
each framework's production manifest is rendered with ``kubectl kustomize``; its container's
memory and CPU limits, worker count (``WEB_CONCURRENCY``, which the downward API sets to the CPU
limit rounded up), threads and request limits are applied to a real container (``docker run
--memory <limit> --memory-swap <limit> --cpus <limit>``, so there is no swap to hide in), which
then gets :data:`CLIENTS` concurrent ``/predict`` requests of ``ML_API_MAX_INSTANCES`` rows each,
:data:`ROUNDS` times over (bounded; loopback only). Every request must get an answer: 200, or the
app's own 504 when the shared machine is too slow for the request timeout (a killed worker would
drop connections instead); no process may be OOM-killed (``docker inspect`` ``OOMKilled`` false,
the cgroup's OOM-kill counter zero, no gunicorn "out of memory" line) and the container must still
be running. The peak anonymous memory seen is recorded for the README's sizing table.
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

CLIENTS = 128
ROUNDS = 3
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


@pytest.mark.parametrize("framework", ["flask", "django"])
def test_concurrent_maximum_size_requests_fit_the_memory_limit(image, framework: str) -> None:
    spec, config = manifest(framework)
    limit_mib = mebibytes(spec["resources"]["limits"]["memory"])
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
        or k in ("ML_API_MAX_BODY_BYTES", "ML_API_REQUEST_TIMEOUT_SECONDS", "ML_API_THREADS")
    }
    env["WEB_CONCURRENCY"] = str(math.ceil(cpus))  # what the downward API gives the pod
    if framework == "django":
        env |= {"ML_API_SECRET_KEY": secrets.token_urlsafe(50), "ML_API_ALLOWED_HOSTS": "*"}
    memory = [f"--memory={limit_mib}m", f"--memory-swap={limit_mib}m", f"--cpus={cpus}"]
    container = Container(
        image.ref, f"ml_api-test-{SESSION_ID}-mem-{framework}", free_port(), env, extra_args=memory
    )
    statuses: list[int | str] = []
    peak = [0]
    try:
        container.wait_ready()
        idle, _ = cgroup_memory(container)
        loading = threading.Event()
        loading.set()

        def sample() -> None:
            while loading.is_set():
                try:
                    peak[0] = max(peak[0], cgroup_memory(container)[0])
                except AssertionError:
                    return  # the container is gone; the checks below say why
                time.sleep(0.5)

        def client() -> None:
            for _ in range(ROUNDS):
                conn = http.client.HTTPConnection("127.0.0.1", container.port, timeout=120)
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
        clients = [threading.Thread(target=client) for _ in range(CLIENTS)]
        for thread in clients:
            thread.start()
        for thread in clients:
            thread.join(timeout=600)
        loading.clear()
        sampler.join(timeout=30)
        anon_after, oom_kills = cgroup_memory(container)
        peak[0] = max(peak[0], anon_after)
        state = container.state()
        logs = container.logs()
    finally:
        container.remove()
    mib = 1024 * 1024
    REPORT[f"{framework} memory (MiB anon): idle / peak under {CLIENTS} x {rows} rows / limit"] = (
        f"{idle / mib:.0f} / {peak[0] / mib:.0f} / {limit_mib}"
        f" ({statuses.count(200)} x 200, {statuses.count(504)} x 504)"
    )
    assert state["OOMKilled"] is False and state["Running"] is True, state
    assert oom_kills == 0
    assert "out of memory" not in logs.lower(), logs[-3000:]
    assert len(statuses) == CLIENTS * ROUNDS
    assert set(statuses) <= {200, 504}, sorted(set(map(str, statuses)))
    assert statuses.count(200) >= CLIENTS, sorted(set(map(str, statuses)))
