"""A request's metric writes are deferred to its end and applied under one lock, exactly.

``metrics.child`` wraps counters and histograms so that, inside a request, their writes join the
request's pending writes; ``telemetry.end_request`` applies them all (``metrics.apply``) before
the response leaves. These tests hold it to prometheus_client's own numbers: the same writes made
through ``.labels(...).inc()``/``.observe()`` on twin metrics must export the same samples, in
single-process mode here and in multiprocess mode across processes, threads and a fork (real
mmap files, merged by prometheus_client's ``MultiProcessCollector``).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client import multiprocess as prom_multiprocess
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.parser import text_string_to_metric_families

from ml_api.core import metrics, telemetry

ROOT = Path(__file__).resolve().parents[2]


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def _same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


def _twins(samples, deferred: str, direct: str):
    """The deferred metric's samples and its direct twin's, under the deferred name."""
    mine = {k: v for k, v in samples.items() if k[0].startswith(deferred + "_")}
    theirs = {
        (deferred + k[0][len(direct) :], k[1]): v
        for k, v in samples.items()
        if k[0].startswith(direct + "_")
    }
    mine = {k: v for k, v in mine.items() if not k[0].endswith("_created")}
    theirs = {k: v for k, v in theirs.items() if not k[0].endswith("_created")}
    return mine, theirs


def test_writes_wait_for_the_request_end_then_count_exactly():
    registry = CollectorRegistry()
    counter = Counter("t_wait", "c", ("k",), registry=registry)
    hist = Histogram("t_wait_h", "h", ("k",), buckets=(1.0, 2.0), registry=registry)
    ctx = telemetry.begin_request("GET", "/x", None)
    metrics.child(counter, "a").inc(3)
    metrics.child(hist, "a").observe(2.0)
    assert counter.labels("a")._value.get() == 0  # pending until the request ends
    assert len(ctx.tally) == 3  # one counter value, the histogram's sum and one bucket
    telemetry.end_request(ctx, 200, "/x")
    assert ctx.tally is None
    got = _samples(generate_latest(registry).decode())
    assert got[("t_wait_total", (("k", "a"),))] == 3
    assert got[("t_wait_h_bucket", (("k", "a"), ("le", "1.0")))] == 0
    assert got[("t_wait_h_bucket", (("k", "a"), ("le", "2.0")))] == 1
    assert got[("t_wait_h_sum", (("k", "a"),))] == 2.0
    metrics.child(counter, "a").inc()  # outside a request: at once
    assert counter.labels("a")._value.get() == 4


def test_writes_now_inside_a_request_and_negative_counts_refused():
    registry = CollectorRegistry()
    counter = Counter("t_now", "c", ("k",), registry=registry)
    ctx = telemetry.begin_request("GET", "/x", None)
    with metrics.writes_now():
        metrics.child(counter, "a").inc(2)
    assert counter.labels("a")._value.get() == 2
    with pytest.raises(ValueError, match="non-negative"):
        metrics.child(counter, "a").inc(-1)
    telemetry.end_request(ctx, 200, "/x")
    assert counter.labels("a")._value.get() == 2


def test_concurrent_requests_in_threads_match_direct_writes():
    from tests.core import metric_tally_worker as worker

    worker.run(seed=7, threads=8, requests=60)
    got = _samples(generate_latest().decode())
    _assert_twins_equal(got)


def _assert_twins_equal(got) -> None:
    """Each deferred series equals its directly written twin, sample by sample (and exists)."""
    for deferred, direct in (
        ("tally_counter", "direct_counter"),
        ("tally_hist", "direct_hist"),
    ):
        mine, theirs = _twins(got, deferred, direct)
        assert mine.keys() == theirs.keys() and mine
        assert all(_same(mine[k], theirs[k]) for k in mine), (mine, theirs)


def _run_workers(prom: Path, *args: list[str]) -> None:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(prom), "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.core.metric_tally_worker", *a],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for a in args
    ]
    for p in procs:
        out, _ = p.communicate(timeout=300)
        assert p.returncode == 0, out.decode()


def _merged(prom: Path):
    registry = CollectorRegistry()
    prom_multiprocess.MultiProcessCollector(registry, path=str(prom))
    return _samples(generate_latest(registry).decode())


def test_multiprocess_two_processes_threads_and_a_fork_exact(tmp_path):
    """Two processes of 4 threads, and a forked child, write real mmap files; merged, the
    deferred series equal their direct twins and every request is counted once."""
    prom = tmp_path / "prom"
    prom.mkdir()
    threads, requests = 4, 50
    _run_workers(
        prom,
        ["1", str(threads), str(requests)],
        ["2", str(threads), str(requests)],
        ["3", "2", str(requests), "fork"],
    )
    got = _merged(prom)
    assert len(list(prom.glob("counter_*.db"))) == 4  # 2 processes, a parent and its child
    for path in [*prom.glob("counter_*.db"), *prom.glob("histogram_*.db")]:
        # each process made the same writes both ways: each file holds equal twins
        per_file: dict[tuple[str, str], float] = defaultdict(float)
        for key, value, _, _ in MmapedDict.read_all_values_from_file(str(path)):
            _, sample, labels, _ = json.loads(key)  # prometheus_client's mmap_key
            if sample.startswith(("tally_", "direct_")):
                name = sample.replace("direct_", "tally_", 1)
                per_file[(sample.split("_")[0], name + json.dumps(labels, sort_keys=True))] = value
        for (kind, name), value in per_file.items():
            if kind == "tally":
                assert _same(value, per_file.get(("direct", name), -1.0)), (path.name, name)
    _assert_twins_equal(got)
    by_status: dict[str, float] = defaultdict(float)
    for (name, labels), value in got.items():
        if name == "ml_api_http_requests_total" and dict(labels)["route"] == "/predict":
            by_status[dict(labels)["status"]] += value
    total = (2 * threads + 2) * requests
    assert sum(by_status.values()) == total
    assert by_status["422"] == (2 * threads + 2) * len(range(0, requests, 5))
    count = sum(
        v
        for (name, labels), v in got.items()
        if name == "ml_api_http_request_duration_seconds_count"
        and dict(labels)["route"] == "/predict"
    )
    assert count == total
    assert got[("ml_api_http_requests_in_flight", ())] == 0


PIN = """
import os, sys
from prometheus_client import Counter, Histogram, values
from ml_api.core import metrics
cls = values.ValueClass
assert cls._multiprocess and cls is metrics._MMAPED
assert "lock" in cls.inc.__code__.co_freevars and "lock" in cls.set.__code__.co_freevars
assert metrics._MMAP_LOCK is metrics._lock_of(cls)
c = Counter("pin_c", "c", ("k",)).labels("a")
h = Histogram("pin_h", "h", ("k",), buckets=(1.0,)).labels("a")
v = c._value
for attr in ("_value", "_timestamp", "_key", "_file", "_MmapedValue__check_for_pid_change"):
    assert hasattr(v, attr), attr
assert hasattr(v._file, "write_value") and hasattr(v._file, "read_value")
assert h._upper_bounds == [1.0, float("inf")] and len(h._buckets) == 2 and h._sum._multiprocess
# the lock apply() takes is the one inc() takes: held here, inc() cannot take it
assert metrics._MMAP_LOCK.acquire(blocking=False)
assert not any(c.acquire(blocking=False) for c in [metrics._MMAP_LOCK])
metrics._MMAP_LOCK.release()
metrics.apply([(v, 2.0)])
c.inc(3)
assert v.get() == 5.0 and v._file.read_value(v._key) == (5.0, 0.0)
print("ok")
"""


def test_prometheus_client_internals_have_the_shape_apply_relies_on(tmp_path):
    """``metrics.apply`` uses prometheus_client's private value class (pinned in
    constraints.txt): its lock, fork check, key, file and value. A new version that moves any of
    them fails here, not in production."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-c", PIN], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
