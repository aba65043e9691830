"""The in-process limit: how fast the model itself predicts, with no HTTP in the way.

For each model, these callables on 1 and on 64 rows (the same instance repeated; 64 is
``ML_API_BATCH_MAX_ROWS``, the largest batch a worker forms):

- ``numpy pipeline``: ``predict`` of the pipeline the seed app and MLServer load (numpy input);
- ``ml-api pipeline``: ``predict`` of the ml-api artifact's pipeline (a DataFrame, or the float
  matrix of an all-numeric model, as the scikit-learn runtime passes it): scikit-learn's limit;
- ``onnxruntime session``: ``InferenceSession.run`` of the artifact's ``model.onnx`` on inputs
  already built (one thread, as served): ONNX Runtime's limit;
- ``ml-api service, scikit-learn`` and ``ml-api service, onnxruntime``:
  ``V1Protocol.predict_instances`` with ``ML_API_RUNTIME=sklearn`` and ``onnx``
  (validation, the model call, JSON-ready encoding): what one ``/predict`` costs without HTTP.

The ONNX rows are left out for a model whose ONNX form did not pass the acceptance gate.

:func:`measure_batching` adds the batcher's throughput: 64 threads each sending 1-row requests to
one service for a few seconds, with adaptive batching on and off, for each runtime (rows/s; the
``ms_per_call`` column is then milliseconds per request, amortized).

Timing uses :mod:`timeit` in this process, pinned to the servers' CPUs while it runs.
"""

from __future__ import annotations

import os
import pickle
import statistics
import threading
import time
import timeit
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

import numpy as np

from bench.models import BenchModel
from ml_api.composition import build_scoring
from ml_api.core.model.artifact import load_artifact
from ml_api.core.model.validation import validate_columns
from ml_api.core.protocols.v1 import V1Protocol
from ml_api.core.runtimes.onnx_runtime import OnnxPredictor
from ml_api.core.service import PredictionService
from ml_api.settings import Settings

ROWS = (1, 64)
BATCH_THREADS = 64
RUNTIMES = {"sklearn": "scikit-learn", "onnx": "onnxruntime"}


def time_call(fn: Callable[[], Any], budget_s: float, repeats: int = 5) -> float:
    """Median seconds per call of ``fn`` over ``repeats`` batches filling about ``budget_s``."""
    fn()  # warm
    number, took = 1, 0.0
    while True:
        took = timeit.timeit(fn, number=number)
        if took >= budget_s / (repeats * 4) or number >= 1_000_000:
            break
        number *= 2
    target = max(1, int(number * (budget_s / repeats) / max(took, 1e-9)))
    runs = timeit.repeat(fn, number=target, repeat=repeats)
    return statistics.median(runs) / target


def _onnx_passed(artifact: Any) -> bool:
    return OnnxPredictor.status(artifact)[0]


def _callables(model: BenchModel, rows: int) -> dict[str, Callable[[], Any]]:
    artifact = load_artifact(model.model_root, model.name, None)
    runtimes = [r for r in RUNTIMES if r == "sklearn" or _onnx_passed(artifact)]
    services = {
        r: build_scoring(Settings(model_root=model.model_root, runtime=r), artifact=artifact)
        for r in runtimes
    }
    instances = [list(model.row) for _ in range(rows)]
    columns = validate_columns(artifact.schema, instances)
    frame = (
        artifact.schema.matrix(columns)
        if artifact.card.input == "array"
        else artifact.schema.frame(columns)
    )
    out: dict[str, Callable[[], Any]] = {}
    if model.seed_dir is not None:
        with open(model.seed_dir / "models" / "model.pkl", "rb") as fh:
            plain = pickle.load(fh)
        matrix = np.asarray(instances, dtype=float)
        out["numpy pipeline"] = lambda: plain.predict(matrix)
    out["ml-api pipeline"] = lambda: artifact.model.predict(frame)
    if "onnx" in services:
        # the ONNX runtime inside the registry's fallback wrapper (WithFallback.primary)
        session = services["onnx"].predictor.primary.session  # type: ignore[attr-defined]
        feed = session.feed_columns(columns)
        out["onnxruntime session"] = lambda: session.run(feed)
    for r, service in services.items():
        out[f"ml-api service, {RUNTIMES[r]}"] = partial(
            V1Protocol(service).predict_instances, instances
        )
    return out


def _throughput(service: PredictionService, row: list[Any], seconds: float) -> float:
    """Rows per second of 1-row requests from :data:`BATCH_THREADS` threads on one service."""
    start = threading.Barrier(BATCH_THREADS + 1)
    stop = threading.Event()
    counts = [0] * BATCH_THREADS

    def client(i: int) -> None:
        start.wait()
        while not stop.is_set():
            V1Protocol(service).predict_instances([row])
            counts[i] += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(BATCH_THREADS)]
    for t in threads:
        t.start()
    start.wait()
    began = time.perf_counter()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join()
    return sum(counts) / (time.perf_counter() - began)


@contextmanager
def _pinned(cpus: tuple[int, ...] | None) -> Iterator[None]:
    """Pin this process to ``cpus`` (when given) for the block, then restore its affinity."""
    before = os.sched_getaffinity(0)
    if cpus:
        os.sched_setaffinity(0, cpus)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def measure_batching(
    models: dict[str, BenchModel], seconds: float, cpus: tuple[int, ...] | None
) -> list[dict[str, Any]]:
    """Rows/s of the batcher path: 64 threads of 1-row requests, batching on and off, per runtime.

    Args:
        models: The prepared models.
        seconds: How long each (model, runtime, batching) cell runs.
        cpus: Pin this process to these CPUs while measuring (restored after).

    Returns:
        Rows of ``{"model", "callable", "rows", "ms_per_call", "rows_per_s"}`` (``rows`` 1:
        per request; ``ms_per_call``: milliseconds per request, amortized over the threads).
    """
    with _pinned(cpus):
        results = []
        for key, model in models.items():
            artifact = load_artifact(model.model_root, model.name, None)
            for r in [r for r in RUNTIMES if r == "sklearn" or _onnx_passed(artifact)]:
                for batching in (True, False):
                    settings = Settings(model_root=model.model_root, runtime=r, batching=batching)
                    service = build_scoring(settings, artifact=artifact)
                    rps = _throughput(service, list(model.row), seconds)
                    results.append(
                        {
                            "model": key,
                            "callable": f"{BATCH_THREADS} threads, batching "
                            f"{'on' if batching else 'off'}, {RUNTIMES[r]}",
                            "rows": 1,
                            "ms_per_call": round(1000 / rps, 4),
                            "rows_per_s": round(rps, 1),
                        }
                    )
        return results


def measure(
    models: dict[str, BenchModel], budget_s: float, cpus: tuple[int, ...] | None
) -> list[dict[str, Any]]:
    """Time every model's callables on 1 and 64 rows.

    Args:
        models: The prepared models.
        budget_s: Rough seconds to spend per (callable, rows) pair.
        cpus: Pin this process to these CPUs while timing (restored after).

    Returns:
        Rows of ``{"model", "callable", "rows", "ms_per_call", "rows_per_s"}``.
    """
    with _pinned(cpus):
        results = []
        for key, model in models.items():
            for rows in ROWS:
                for name, fn in _callables(model, rows).items():
                    seconds = time_call(fn, budget_s)
                    results.append(
                        {
                            "model": key,
                            "callable": name,
                            "rows": rows,
                            "ms_per_call": round(seconds * 1000, 4),
                            "rows_per_s": round(rows / seconds, 1),
                        }
                    )
        return results
