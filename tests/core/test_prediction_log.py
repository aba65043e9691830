"""The prediction log: sampled, bounded records written off the request path; drops counted;
excluded features absent; rotating files shared by several processes."""

from __future__ import annotations

import json
import multiprocessing
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from prometheus_client import REGISTRY

from ml_api.composition import build_scoring
from ml_api.core.prediction_log import (
    MAX_LINE_BYTES,
    PredictionLog,
    RotatingFileSink,
    StdoutSink,
)
from ml_api.core.runtimes.predictor import PredictionResult
from ml_api.settings import Settings
from tests.conftest import VALID_NAMED, VALID_ROW


class ListSink:
    def __init__(self) -> None:
        self.lines: list[bytes] = []

    def write(self, lines: Sequence[bytes]) -> None:
        self.lines.extend(lines)


class BlockedSink(ListSink):
    """A sink that hangs until released: the queue fills, requests must not wait."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def write(self, lines: Sequence[bytes]) -> None:
        self.release.wait(60)
        super().write(lines)


def _count(outcome: str) -> float:
    value = REGISTRY.get_sample_value("ml_api_prediction_log_records_total", {"outcome": outcome})
    return value or 0.0


def _log(settings: Settings, **kwargs: object) -> PredictionLog:
    service = build_scoring(settings)
    return PredictionLog(
        kwargs.pop("sink", ListSink()),  # type: ignore[arg-type]
        service.schema,
        ("penguins", "1"),
        **kwargs,  # type: ignore[arg-type]
    )


def test_records_hold_instances_and_answers_without_excluded_fields(model_root: Path) -> None:
    settings = Settings(
        model_root=model_root,
        prediction_log_rate=1.0,
        log_exclude_features="sex,island",
    )
    service = build_scoring(settings, monitored=True)
    (log,) = [o for o in service.observers if isinstance(o, PredictionLog)]
    sink = ListSink()
    log.sink = sink
    service.predict_rows([VALID_ROW, {**VALID_NAMED, "sex": None}])
    log.drain()
    (line,) = sink.lines
    record = json.loads(line)
    assert record["log_type"] == "prediction" and record["model"]["name"] == "penguins"
    assert record["instances_total"] == 2
    assert record["instances"] == [
        {"bill_length_mm": 50.0, "bill_depth_mm": 15.0, "flipper_length_mm": 220.0,
         "body_mass_g": 5500.0},
    ] * 2  # fmt: skip
    assert "Biscoe" not in line.decode() and "male" not in line.decode()
    assert len(record["predictions"]) == 2
    assert set(record["probabilities"][0]) == {"Adelie", "Chinstrap", "Gentoo"}
    assert record["timestamp"].endswith("+00:00")


def test_sampling_keeps_about_the_rate(model_root: Path) -> None:
    draws = iter(np.random.default_rng(1).random(1000).tolist())
    sink = ListSink()
    log = _log(Settings(model_root=model_root), sink=sink, rate=0.1, draw=lambda: next(draws))
    result = PredictionResult(np.array(["Adelie"]), None)
    for _ in range(1000):
        log.observe([[v] for v in VALID_ROW], 1, result)
    log.drain()
    assert 70 <= len(sink.lines) <= 130


def test_records_are_bounded(model_root: Path) -> None:
    sink = ListSink()
    log = _log(Settings(model_root=model_root), sink=sink, rate=1.0, max_instances=5)
    n = 40
    columns = [[v] * n for v in VALID_ROW]
    log.observe(columns, n, PredictionResult(np.array(["Adelie"] * n), None))
    log.drain()
    record = json.loads(sink.lines[0])
    assert record["instances_total"] == n and len(record["instances"]) == 5
    # a line never passes MAX_LINE_BYTES: instances are halved until it fits
    wide = _log(Settings(model_root=model_root), sink=sink, rate=1.0, max_instances=1000)
    big = PredictionResult(np.array(["x" * 2000] * 100), None)
    wide.observe([[v] * 100 for v in VALID_ROW], 100, big)
    wide.drain()
    last = sink.lines[-1]
    assert len(last) <= MAX_LINE_BYTES
    assert 0 < len(json.loads(last)["instances"]) < 100


def test_a_full_queue_drops_and_counts_never_waits(model_root: Path) -> None:
    sink = BlockedSink()
    log = _log(Settings(model_root=model_root), sink=sink, rate=1.0, queue_size=3)
    result = PredictionResult(np.array(["Adelie"]), None)
    dropped = _count("dropped")
    for _ in range(20):  # returns at once although the sink hangs
        log.observe([[v] for v in VALID_ROW], 1, result)
    # one record taken by the writer (hanging), three queued, the rest dropped
    assert 15 <= _count("dropped") - dropped <= 17
    written = _count("written")
    sink.release.set()
    log.drain()
    assert 3 <= _count("written") - written <= 4


def _append(path: str, worker: int) -> None:
    sink = RotatingFileSink(Path(path), max_bytes=2_000, backups=50)
    for i in range(100):
        sink.write([json.dumps({"w": worker, "i": i, "pad": "x" * 40}).encode() + b"\n"])


def test_rotating_files_are_shared_by_processes_without_losing_a_line(tmp_path: Path) -> None:
    path = tmp_path / "log" / "predictions.jsonl"
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_append, args=(str(path), w)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    sink = RotatingFileSink(path, max_bytes=2_000, backups=50)
    files = sink.files()
    assert len(files) > 5 and all(f.stat().st_size <= 2_000 for f in files)
    seen = {(r["w"], r["i"]) for f in files for r in map(json.loads, f.read_text().splitlines())}
    assert seen == {(w, i) for w in range(4) for i in range(100)}


def test_rotation_keeps_only_the_backups(tmp_path: Path) -> None:
    sink = RotatingFileSink(tmp_path / "p.jsonl", max_bytes=100, backups=2)
    for i in range(20):
        sink.write([b"%02d" % i + b"x" * 60 + b"\n"])
    assert [f.name for f in sink.files()] == ["p.jsonl.2", "p.jsonl.1", "p.jsonl"]
    assert sink.files()[-1].read_bytes().startswith(b"19")


def test_stdout_sink_writes_whole_lines(tmp_path: Path) -> None:
    target = tmp_path / "out"
    with open(target, "wb") as fh:
        StdoutSink(fh.fileno()).write([b'{"a":1}\n', b'{"b":2}\n'])
    assert target.read_bytes() == b'{"a":1}\n{"b":2}\n'


def test_off_by_default(model_root: Path) -> None:
    service = build_scoring(Settings(model_root=model_root), monitored=True)
    assert not any(isinstance(o, PredictionLog) for o in service.observers)


def test_settings_refuse_a_rate_outside_0_to_1(model_root: Path) -> None:
    with pytest.raises(ValueError, match="prediction_log_rate"):
        Settings(model_root=model_root, prediction_log_rate=1.5)
