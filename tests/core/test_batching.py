"""The adaptive batcher: no wait when alone, merging under concurrency, caps, isolation, order."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from ml_api.core.batching import Batcher


class Model:
    """A stand-in model call that records its batches and can be held to build a queue."""

    def __init__(self):
        self.calls: list[list[int]] = []
        self.threads: list[str] = []
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()

    def __call__(self, columns, sizes):
        self.entered.set()
        self.gate.wait(10)
        values = columns[0]
        if any(v == "boom" for v in values):
            raise ValueError("boom")
        self.calls.append(list(sizes))
        self.threads.append(threading.current_thread().name)
        out, start = [], 0
        for n in sizes:
            out.append([v * 10 for v in values[start : start + n]])
            start += n
        return out


def test_lone_request_runs_at_once_in_its_own_thread():
    model = Model()
    batcher = Batcher(model, max_rows=64, max_wait_seconds=1.0)
    started = time.monotonic()
    assert batcher.submit([[1, 2]], 2) == [10, 20]
    assert time.monotonic() - started < 0.5  # max_wait does not apply to a request alone
    assert model.calls == [[2]]
    assert model.threads == [threading.current_thread().name]


def _hold_then_release(batcher, model, waiting_items):
    """Block the model on a first request, queue `waiting_items`, release, return results."""
    model.gate.clear()
    with ThreadPoolExecutor(len(waiting_items) + 1) as pool:
        first = pool.submit(batcher.submit, [[0]], 1)
        assert model.entered.wait(5)
        futures = []
        for values in waiting_items:
            futures.append(pool.submit(batcher.submit, [values], len(values)))
            time.sleep(0.02)  # keep submission order deterministic
        model.gate.set()
        return first.result(10), [f.result(10) for f in futures]


def test_concurrent_requests_share_one_call_and_get_their_own_results():
    model = Model()
    batcher = Batcher(model, max_rows=64)
    first, rest = _hold_then_release(batcher, model, [[1], [2, 3], [4]])
    assert first == [0]
    assert rest == [[10], [20, 30], [40]]
    assert model.calls == [[1], [1, 2, 1]]


def test_rows_are_capped_and_a_large_request_runs_alone_in_order():
    model = Model()
    batcher = Batcher(model, max_rows=4)
    _, rest = _hold_then_release(batcher, model, [[1, 1], [2, 2], [3, 3, 3, 3, 3, 3], [4]])
    assert rest == [[10, 10], [20, 20], [30] * 6, [40]]
    assert model.calls == [[1], [2, 2], [6], [1]]  # FIFO: the big one is not skipped over
    assert all(sum(c) <= 4 or len(c) == 1 for c in model.calls)


def test_a_failing_request_does_not_fail_its_batch_mates():
    model = Model()
    batcher = Batcher(model, max_rows=64)
    model.gate.clear()
    with ThreadPoolExecutor(4) as pool:
        first = pool.submit(batcher.submit, [[0]], 1)
        assert model.entered.wait(5)
        good = pool.submit(batcher.submit, [[1]], 1)
        time.sleep(0.02)
        bad = pool.submit(batcher.submit, [["boom"]], 1)
        time.sleep(0.02)
        other = pool.submit(batcher.submit, [[2]], 1)
        time.sleep(0.02)
        model.gate.set()
        assert first.result(10) == [0]
        assert good.result(10) == [10] and other.result(10) == [20]
        with pytest.raises(ValueError, match="boom"):
            bad.result(10)


def test_waiting_request_times_out_cleanly():
    model = Model()
    batcher = Batcher(model, max_rows=64)
    model.gate.clear()
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(batcher.submit, [[0]], 1)
        assert model.entered.wait(5)
        late = pool.submit(batcher.submit, [[1]], 1, 0.05)
        with pytest.raises(TimeoutError):
            late.result(5)
        model.gate.set()
        assert first.result(5) == [0]
    assert batcher.submit([[5]], 1) == [50]  # the batcher is still usable afterwards
    assert model.calls == [[1], [1]]


def test_max_wait_collects_more_rows_only_under_concurrency():
    model = Model()
    batcher = Batcher(model, max_rows=3, max_wait_seconds=0.3)
    model.gate.clear()
    with ThreadPoolExecutor(4) as pool:
        first = pool.submit(batcher.submit, [[0]], 1)
        assert model.entered.wait(5)
        a = pool.submit(batcher.submit, [[1]], 1)
        time.sleep(0.02)
        b = pool.submit(batcher.submit, [[2]], 1)
        time.sleep(0.02)
        model.gate.set()
        time.sleep(0.05)  # the leader of [a, b] is now waiting for a third row
        c = pool.submit(batcher.submit, [[3]], 1)
        assert [f.result(5) for f in (first, a, b, c)] == [[0], [10], [20], [30]]
    assert model.calls == [[1], [1, 1, 1]]


def test_many_threads_all_get_the_right_answer():
    model = Model()
    batcher = Batcher(model, max_rows=16)

    def call(i):
        return i, batcher.submit([[i, i + 1]], 2)

    with ThreadPoolExecutor(32) as pool:
        results = list(pool.map(call, range(500)))
    for i, result in results:
        assert result == [i * 10, (i + 1) * 10]
    assert sum(sum(c) for c in model.calls) == 1000


def test_a_lone_request_leaves_the_batcher_free_even_when_it_fails():
    """A request alone runs without joining the queue; whether it succeeds or raises, the
    batcher is free afterwards and a request queued behind it is still promoted and answered."""
    model = Model()
    batcher = Batcher(model, max_rows=64)
    with pytest.raises(ValueError, match="boom"):
        batcher.submit([["boom"]], 1)
    assert batcher.submit([[3]], 1) == [30]
    assert model.calls == [[1]] and not batcher._queue and not batcher._busy
    # a lone leader held in the model: the next request queues and is promoted after it
    first, rest = _hold_then_release(batcher, model, [[4], [5]])
    assert (first, rest) == ([0], [[40], [50]])
    assert model.calls == [[1], [1], [1, 1]] and not batcher._queue and not batcher._busy
