"""The in-process limit: how fast the model itself predicts, with no HTTP in the way.

For each model, three callables on 1 and on 32 rows (the same instance repeated):

- ``numpy pipeline``: ``predict`` of the pipeline the seed app and MLServer load (numpy input);
- ``ml-api pipeline``: ``predict`` of the ml-api artifact's pipeline (a one-row DataFrame, as the
  service passes it);
- ``ml-api service``: ``PredictionService.predict_instances`` (validation, ``predict`` and
  ``predict_proba``, JSON-ready encoding): what one ``/predict`` costs without HTTP.

Timing uses :mod:`timeit` in this process, pinned to the servers' CPUs while it runs.
"""

from __future__ import annotations

import os
import pickle
import statistics
import timeit
from collections.abc import Callable
from typing import Any

import numpy as np

from bench.models import BenchModel
from ml_api.core.artifact import load_artifact
from ml_api.core.service import PredictionService
from ml_api.core.validation import validate_columns
from ml_api.settings import Settings

ROWS = (1, 32)


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


def _callables(model: BenchModel, rows: int) -> dict[str, Callable[[], Any]]:
    artifact = load_artifact(model.model_root, model.name, None)
    service = PredictionService(artifact, Settings(model_root=model.model_root))
    instances = [list(model.row) for _ in range(rows)]
    frame = artifact.schema.frame(validate_columns(artifact.schema, instances))
    out: dict[str, Callable[[], Any]] = {}
    if model.seed_dir is not None:
        with open(model.seed_dir / "models" / "model.pkl", "rb") as fh:
            plain = pickle.load(fh)
        matrix = np.asarray(instances, dtype=float)
        out["numpy pipeline"] = lambda: plain.predict(matrix)
    out["ml-api pipeline"] = lambda: artifact.model.predict(frame)
    out["ml-api service"] = lambda: service.predict_instances(instances)
    return out


def measure(
    models: dict[str, BenchModel], budget_s: float, cpus: tuple[int, ...] | None
) -> list[dict[str, Any]]:
    """Time every model's callables on 1 and 32 rows.

    Args:
        models: The prepared models.
        budget_s: Rough seconds to spend per (callable, rows) pair.
        cpus: Pin this process to these CPUs while timing (restored after).

    Returns:
        Rows of ``{"model", "callable", "rows", "ms_per_call", "rows_per_s"}``.
    """
    before = os.sched_getaffinity(0)
    if cpus:
        os.sched_setaffinity(0, cpus)
    try:
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
    finally:
        os.sched_setaffinity(0, before)
