"""The head-reading worker's request threads: calls run, outcomes are handed on, threads bounded."""

from __future__ import annotations

import threading

import pytest

from ml_api.serving.request_pool import Outcome, RequestPool

BOUND_SECONDS = 30


def _collect(pool: RequestPool, calls: list[tuple]) -> list[Outcome]:
    """Run every ``(fn, args)`` and wait for all their outcomes (in completion order)."""
    outcomes: list[Outcome] = []
    finished = threading.Semaphore(0)

    def done(outcome: Outcome) -> None:
        outcomes.append(outcome)
        finished.release()

    for fn, args in calls:
        pool.call(fn, args, done)
    for _ in calls:
        assert finished.acquire(timeout=BOUND_SECONDS)
    return outcomes


def test_calls_run_and_their_results_are_handed_on():
    pool = RequestPool(4)
    try:
        outcomes = _collect(pool, [(pow, (2, n)) for n in range(20)])
    finally:
        pool.shutdown(wait=True)
    assert sorted(o.result() for o in outcomes) == [2**n for n in range(20)]
    assert not any(o.cancelled() for o in outcomes)


@pytest.mark.parametrize("error", [ValueError("bad"), SystemExit(1)])
def test_what_a_call_raises_is_handed_on_and_the_thread_stays(error):
    def fail():
        raise error

    pool = RequestPool(1)
    try:
        [failed] = _collect(pool, [(fail, ())])
        [ok] = _collect(pool, [(len, ("abc",))])  # the one thread still serves
    finally:
        pool.shutdown(wait=True)
    with pytest.raises(type(error)):
        failed.result()
    assert ok.result() == 3


def test_threads_start_as_calls_need_them_and_never_past_the_bound():
    release = threading.Event()
    started = threading.Semaphore(0)
    running = []

    def held(n):
        running.append(threading.current_thread().name)
        started.release()
        assert release.wait(BOUND_SECONDS)
        return n

    pool = RequestPool(3)
    outcomes: list[Outcome] = []
    finished = threading.Semaphore(0)

    def done(outcome):
        outcomes.append(outcome)
        finished.release()

    try:
        for n in range(5):
            pool.call(held, (n,), done)
        for _ in range(3):
            assert started.acquire(timeout=BOUND_SECONDS)
        assert len(set(running)) == 3  # 3 threads, all held: the other 2 calls wait queued
        release.set()
        for _ in range(5):
            assert finished.acquire(timeout=BOUND_SECONDS)
    finally:
        release.set()
        pool.shutdown(wait=True)
    assert sorted(o.result() for o in outcomes) == list(range(5))
    assert len(set(running)) == 3  # the queued calls ran on the same 3 threads


def test_an_idle_thread_is_reused():
    pool = RequestPool(8)
    names = []
    try:
        for _ in range(5):
            _collect(pool, [(lambda: names.append(threading.current_thread().name), ())])
    finally:
        pool.shutdown(wait=True)
    assert len(set(names)) == 1


def test_submit_gives_a_future_like_the_executor():
    pool = RequestPool(2)
    try:
        assert pool.submit(pow, 3, 2).result(timeout=BOUND_SECONDS) == 9
        failed = pool.submit(int, "x")
        with pytest.raises(ValueError):
            failed.result(timeout=BOUND_SECONDS)
    finally:
        pool.shutdown(wait=True)


def test_shutdown_lets_running_calls_finish_and_refuses_new_ones():
    release = threading.Event()
    pool = RequestPool(2)
    future = pool.submit(lambda: release.wait(BOUND_SECONDS) and "done")
    pool.shutdown(wait=False)
    release.set()
    assert future.result(timeout=BOUND_SECONDS) == "done"
    with pytest.raises(RuntimeError):
        pool.call(len, ("x",), lambda outcome: None)
    pool.shutdown(wait=True)  # twice is harmless
