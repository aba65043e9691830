"""The prediction log: a sample of what the model was asked and what it answered.

With ``ML_API_PREDICTION_LOG_RATE`` above 0 (off by default: the records hold client data), each
predicted request is kept with that probability, as one JSON line::

    {"timestamp": "2026-12-07T19:30:00.123Z", "log_type": "prediction", "logger":
     "ml_api.predictions", "level": "INFO", "request_id": "...", "model": {"name": "penguins",
     "version": "3"}, "instances_total": 2, "instances": [{"island": "Biscoe", ...}, ...],
     "predictions": ["Gentoo", ...], "probabilities": [{"Adelie": 0.01, ...}, ...]}

- **Bounded**: at most ``ML_API_PREDICTION_LOG_MAX_INSTANCES`` instances per record (the first
  ones; ``instances_total`` says how many the request had), and a line of at most
  :data:`MAX_LINE_BYTES` (fewer instances are kept until it fits). Values are the validated ones
  (numbers, known categories), never the raw body.
- **Never logged**: headers (so API keys and tokens), and the features named in
  ``ML_API_LOG_EXCLUDE_FEATURES``.
- **Never blocks a request**: the request only draws the sample and puts the record on a bounded
  queue (:data:`QUEUE_SIZE` records); a writer thread per process encodes and writes. When the
  queue is full the record is dropped and counted
  (``ml_api_prediction_log_records_total{outcome="dropped"}``), as a write that fails is
  (``outcome="failed"``); written records count as ``outcome="written"``.
- **Where**: stdout by default, beside the JSON logs, where Fluent Bit picks the records out by
  ``log_type`` and ships them to their own Elasticsearch index (``deploy/logging``); or, on one
  machine, ``ML_API_PREDICTION_LOG_FILE``: rotating local files (:class:`RotatingFileSink`),
  shared safely by every worker process. ``ml-api drift --input`` reads these files.
"""

from __future__ import annotations

import fcntl
import json
import os
import queue
import random
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ml_api.core import metrics
from ml_api.core.context import current_request_id
from ml_api.core.model.schema import FeatureSchema
from ml_api.core.runtimes.predictor import PredictionResult, to_jsonable

__all__ = [
    "LOG_TYPE",
    "MAX_LINE_BYTES",
    "QUEUE_SIZE",
    "PredictionLog",
    "RotatingFileSink",
    "Sink",
    "StdoutSink",
]

LOG_TYPE = "prediction"
"""The ``log_type`` field of every record: what Fluent Bit routes on."""

MAX_LINE_BYTES = 16 * 1024
"""Longest record line, in bytes (the JSON logs' bound)."""

QUEUE_SIZE = 10_000
"""Records waiting for the writer, per process; past it new records are dropped (counted)."""

BATCH = 256
"""Most records the writer takes from the queue for one write."""


class Sink(Protocol):
    """Where encoded records go."""

    def write(self, lines: Sequence[bytes]) -> None:
        """Write whole lines (each ending in a newline); ``OSError`` when it cannot."""
        ...


class StdoutSink:
    """Standard output, one ``write`` per line so that no other process' line cuts into it."""

    def __init__(self, fd: int = 1) -> None:
        self._fd = fd

    def write(self, lines: Sequence[bytes]) -> None:
        """Write each line with its own ``os.write`` (a pipe keeps a write whole up to 4 KiB)."""
        for line in lines:
            view = memoryview(line)
            while view:
                view = view[os.write(self._fd, view) :]


class RotatingFileSink:
    """A JSON-lines file rotated by size, which every worker process appends to.

    ``path`` grows to ``max_bytes``; then it becomes ``path.1`` (``path.1`` becomes ``path.2``...,
    the oldest past ``backups`` is deleted), so the log takes at most ``(backups + 1) *
    max_bytes`` bytes. Appends and rotations hold an exclusive ``flock`` on ``path.lock``, so
    concurrent workers never lose or split a line.

    Args:
        path: The file (its directory is created).
        max_bytes: Size past which the file is rotated, in bytes.
        backups: Rotated files kept.
    """

    def __init__(self, path: Path, max_bytes: int, backups: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.backups = backups
        path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, lines: Sequence[bytes]) -> None:
        """Append the lines, rotating first when they would take the file past ``max_bytes``."""
        data = b"".join(lines)
        with open(f"{self.path}.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                size = self.path.stat().st_size if self.path.exists() else 0
                if size and size + len(data) > self.max_bytes:
                    self._rotate()
                with open(self.path, "ab") as fh:
                    fh.write(data)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def files(self) -> list[Path]:
        """The log's files that exist, oldest first."""
        names = [Path(f"{self.path}.{i}") for i in range(self.backups, 0, -1)] + [self.path]
        return [p for p in names if p.exists()]

    def _rotate(self) -> None:
        oldest = Path(f"{self.path}.{self.backups}")
        if self.backups == 0:
            self.path.unlink(missing_ok=True)
            return
        oldest.unlink(missing_ok=True)
        for i in range(self.backups - 1, 0, -1):
            older = Path(f"{self.path}.{i}")
            if older.exists():
                older.rename(f"{self.path}.{i + 1}")
        self.path.rename(f"{self.path}.1")


class PredictionLog:
    """A sampled record per predicted request, written off the request path.

    An observer of :class:`~ml_api.core.service.PredictionService` (``ml_api.composition``
    attaches it when the rate is above 0).

    Args:
        sink: Where the lines go (:class:`StdoutSink`, :class:`RotatingFileSink`).
        schema: The model's features (the instances' field names).
        model: ``(name, version)`` of the served model.
        rate: Share of requests kept, ``0 < rate <= 1``.
        exclude: Feature names never written.
        max_instances: Most instances kept per record (the first ones).
        queue_size: Records waiting for the writer before new ones are dropped.
        draw: The sampling draw, uniform in ``[0, 1)`` (:func:`random.random`; tests fix it).
    """

    def __init__(
        self,
        sink: Sink,
        schema: FeatureSchema,
        model: tuple[str, str],
        *,
        rate: float,
        exclude: Sequence[str] = (),
        max_instances: int = 20,
        queue_size: int = QUEUE_SIZE,
        draw: Callable[[], float] = random.random,
    ) -> None:
        self.sink = sink
        self.rate = rate
        self._kept = [(j, n) for j, n in enumerate(schema.names) if n not in set(exclude)]
        self._model = {"name": model[0], "version": model[1]}
        self._max_instances = max_instances
        self._queue: queue.Queue[
            tuple[float, str | None, list[list[Any]], int, PredictionResult]
        ] = queue.Queue(maxsize=queue_size)
        self._draw = draw
        self._pid: int | None = None
        self._lock = threading.Lock()

    def observe(self, columns: list[list[Any]], n_instances: int, result: PredictionResult) -> None:
        """Maybe keep this request (``rate``); never waits.

        Args:
            columns: ``n_features`` validated columns of ``n_instances`` values.
            n_instances: Instances in the request.
            result: The answers.
        """
        if self._draw() >= self.rate:
            return
        k = min(n_instances, self._max_instances)
        kept = [list(columns[j][:k]) for j, _ in self._kept]
        item = (time.time(), current_request_id(), kept, n_instances, result.head(k))
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            metrics.child(metrics.PREDICTION_LOG_RECORDS, "dropped").inc()
            return
        if self._pid != os.getpid():
            self._start_writer()

    def drain(self, timeout: float = 10.0) -> None:
        """Wait until every queued record is written (tests, shutdown), at most ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)

    def encode(
        self,
        stamp: float,
        request_id: str | None,
        kept: list[list[Any]],
        n_instances: int,
        answers: PredictionResult,
    ) -> bytes:
        """One record as a JSON line of at most :data:`MAX_LINE_BYTES` bytes.

        Args:
            stamp: When the request was answered (seconds since the epoch).
            request_id: The request's id (``None`` outside a request: the CLI).
            kept: The logged features' columns, the first instances only.
            n_instances: Instances the request had.
            answers: The kept instances' result.

        Returns:
            The line, its newline included; instances are halved until it fits.
        """
        labels = to_jsonable(answers.labels)
        probabilities = (
            [
                dict(zip(answers.class_keys, row, strict=True))
                for row in answers.probabilities.tolist()
            ]
            if answers.probabilities is not None
            else None
        )
        k = len(labels)
        while True:
            record: dict[str, Any] = {
                "timestamp": datetime.fromtimestamp(stamp, UTC).isoformat(timespec="milliseconds"),
                "log_type": LOG_TYPE,
                "logger": "ml_api.predictions",
                "level": "INFO",
                "request_id": request_id,
                "model": self._model,
                "instances_total": n_instances,
                "instances": [
                    {name: _plain(col[i]) for (_, name), col in zip(self._kept, kept, strict=True)}
                    for i in range(k)
                ],
                "predictions": labels[:k],
            }
            if probabilities is not None:
                record["probabilities"] = probabilities[:k]
            line = (json.dumps(record, allow_nan=False, separators=(",", ":")) + "\n").encode()
            if len(line) <= MAX_LINE_BYTES or k == 0:
                return line
            k //= 2

    def _start_writer(self) -> None:
        with self._lock:
            if self._pid == os.getpid():
                return
            self._pid = os.getpid()
        threading.Thread(
            target=self._write_forever, name="ml-api-prediction-log", daemon=True
        ).start()

    def _write_forever(self) -> None:
        while True:
            items = [self._queue.get()]
            while len(items) < BATCH:
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                self.sink.write([self.encode(*item) for item in items])
                metrics.child(metrics.PREDICTION_LOG_RECORDS, "written").inc(len(items))
            except (OSError, ValueError, TypeError):
                metrics.child(metrics.PREDICTION_LOG_RECORDS, "failed").inc(len(items))
            finally:
                for _ in items:
                    self._queue.task_done()


def _plain(value: Any) -> Any:
    """A validated value as JSON: ``NaN`` (null) as ``None``, numpy scalars as Python ones."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value != value:
        return None
    return value
