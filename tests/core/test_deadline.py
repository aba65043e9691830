import threading
import time

import pytest

from ml_api.core.deadline import deadline
from ml_api.core.errors import RequestTimeout


def test_overrun_raises_504_in_the_main_thread():
    started = time.monotonic()
    with pytest.raises(RequestTimeout) as info, deadline(0.05):
        while time.monotonic() - started < 5:
            time.sleep(0.01)
    assert info.value.status == 504
    assert time.monotonic() - started < 5  # interrupted, not run to the end


def test_no_alarm_left_behind():
    with deadline(0.05):
        pass
    time.sleep(0.1)  # a stray SIGALRM would raise here


def test_other_threads_are_not_interrupted():
    errors = []

    def work():
        try:
            with deadline(0.01):
                time.sleep(0.05)
        except Exception as exc:  # pragma: no cover - the failure being tested for
            errors.append(exc)

    t = threading.Thread(target=work)
    t.start()
    t.join()
    assert errors == []


def test_the_limit_counts_from_the_arrival_in_a_request_thread():
    """A request that waited in the server's queue has only what is left of its limit."""
    from ml_api.core.deadline import arrived, check, remaining

    outcome = {}

    def work():
        with arrived(time.monotonic() - 20), deadline(10):  # waited 20 s of a 10 s limit
            outcome["remaining"] = remaining()
            try:
                check()
            except RequestTimeout as exc:
                outcome["error"] = exc
        with deadline(10):  # the next request, not queued: the whole limit
            outcome["next"] = remaining()

    t = threading.Thread(target=work)
    t.start()
    t.join()
    assert outcome["remaining"] < 0
    assert outcome["error"].status == 504
    assert outcome["next"] > 5


def test_an_arrival_past_the_limit_still_interrupts_the_main_thread():
    """The alarm is armed even when nothing is left of the limit (0 would disarm it)."""
    from ml_api.core.deadline import arrived

    started = time.monotonic()
    with pytest.raises(RequestTimeout), arrived(started - 20), deadline(10):
        while time.monotonic() - started < 5:  # not interrupted: no error, the test fails
            time.sleep(0.01)
