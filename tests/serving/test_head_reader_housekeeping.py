"""The head-reading worker's heartbeat and parent check run at most every HOUSEKEEPING_SECONDS."""

from __future__ import annotations

import os
from types import SimpleNamespace

from gunicorn.config import Config

from ml_api.serving import head_reader
from ml_api.serving.head_reader import HOUSEKEEPING_SECONDS, HeadReadingWorker


def _worker(monkeypatch, clock):
    monkeypatch.setattr(head_reader.time, "monotonic", lambda: clock[0])
    cfg = Config()
    worker = HeadReadingWorker(0, os.getppid(), [], SimpleNamespace(), 30, cfg, None)
    beats = []
    monkeypatch.setattr(worker.tmp, "notify", lambda: beats.append(clock[0]))
    return worker, beats


def test_the_heartbeat_is_written_at_most_every_interval(monkeypatch):
    clock = [1000.0]
    worker, beats = _worker(monkeypatch, clock)
    try:
        for step in range(10):  # ten loop turns within one interval, then one after it
            clock[0] = 1000.0 + step * HOUSEKEEPING_SECONDS / 10
            worker.notify()
        clock[0] = 1000.0 + HOUSEKEEPING_SECONDS
        worker.notify()
    finally:
        worker.tmp.close()
    assert beats == [1000.0, 1000.0 + HOUSEKEEPING_SECONDS]


def test_a_gone_master_is_noticed_at_the_next_check(monkeypatch):
    clock = [1000.0]
    worker, _ = _worker(monkeypatch, clock)
    worker.log = SimpleNamespace(info=lambda *args: None)
    try:
        assert worker.is_parent_alive()
        worker.ppid = -1  # the master changed: gunicorn's own rule says stop
        clock[0] += HOUSEKEEPING_SECONDS / 2
        assert worker.is_parent_alive()  # not asked again within the interval
        clock[0] += HOUSEKEEPING_SECONDS / 2
        assert not worker.is_parent_alive()
    finally:
        worker.tmp.close()
