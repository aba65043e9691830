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
