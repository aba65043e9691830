"""A process that writes metrics as served requests do, for ``test_metric_tally``.

Run as ``python -m tests.core.metric_tally_worker SEED THREADS REQUESTS [fork]`` with
``PROMETHEUS_MULTIPROC_DIR`` set. Every thread makes ``REQUESTS`` requests
(``telemetry.begin_request`` ... ``end_request``), each writing through ``metrics.child`` (deferred
to the request's end) and, for the same amounts, straight through prometheus_client's
``.labels(...).inc()``/``.observe()`` on twin metrics (``direct_*``): the merged exposition of the
two must be equal. Some writes go outside any request (at once) and inside ``writes_now``. With
``fork``, the process writes, then forks, and the child does the requests (its own file).
"""

from __future__ import annotations

import os
import random
import sys
import threading

from prometheus_client import Counter, Histogram

from ml_api.core import metrics, telemetry

BOUNDS = (0.25, 0.5, 1.0, 4.0)
TALLY_COUNTER = Counter("tally_counter", "deferred", ("k",))
DIRECT_COUNTER = Counter("direct_counter", "direct", ("k",))
TALLY_HIST = Histogram("tally_hist", "deferred", ("k",), buckets=BOUNDS)
DIRECT_HIST = Histogram("direct_hist", "direct", ("k",), buckets=BOUNDS)
AMOUNTS = (0.0, 0.125, 0.25, 0.25 + 2**-20, 0.5, 1.0, 3.0, 4.0, 7, float("nan"))
"""On and beside the bounds; binary fractions, so sums are exact in any order (threads)."""


def write(rng: random.Random) -> None:
    """One counter increment and one observation, deferred and direct, same labels and amounts."""
    k = rng.choice("abc")
    count = rng.choice((1, 2, 5))
    amount = rng.choice(AMOUNTS)
    if amount != amount:
        k = "nan"  # NaN falls in no bucket, and makes its series' sum NaN
    metrics.child(TALLY_COUNTER, k).inc(count)
    DIRECT_COUNTER.labels(k).inc(count)
    metrics.child(TALLY_HIST, k).observe(amount)
    DIRECT_HIST.labels(k).observe(amount)


def thread_requests(seed: int, requests: int) -> None:
    rng = random.Random(seed)
    for i in range(requests):
        ctx = telemetry.begin_request("POST", "/predict", None)
        for _ in range(rng.randint(0, 4)):
            write(rng)
        if i % 7 == 0:
            with metrics.writes_now():
                write(rng)
        telemetry.end_request(ctx, 200 if i % 5 else 422, "/predict")
        write(rng)  # outside a request: at once


def run(seed: int, threads: int, requests: int) -> None:
    workers = [
        threading.Thread(target=thread_requests, args=(seed * 1000 + t, requests))
        for t in range(threads)
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join()


def main() -> None:
    seed, threads, requests = (int(a) for a in sys.argv[1:4])
    if sys.argv[4:] == ["fork"]:
        write(random.Random(-seed))  # the parent's own writes, in its own file
        pre = (TALLY_COUNTER.labels("pre"), DIRECT_COUNTER.labels("pre"))  # made before the fork
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                # the child's first write: apply() itself must notice the fork (own file)
                metrics.apply([(pre[0]._value, 1.0)])
                pre[1].inc()
                run(seed, threads, requests)
                code = 0
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        sys.exit(os.waitstatus_to_exitcode(status))
    run(seed, threads, requests)


if __name__ == "__main__":
    main()
