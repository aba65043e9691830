"""``python -m bench --invariance``: what batch-invariant answers cost on a lone instance.

Each runtime evaluates a lone instance as two rows (``SMALLEST_CALL_ROWS`` in
``ml_api.core.runtimes.predictor``), so every model call takes BLAS's and MLAS's matrix-matrix
(GEMM) path and a row's bits do not depend on the batch it came in. Before, a lone row went to
the one-row matrix-vector (GEMV) path. For each model and runtime this times the runtime's
underlying model call on one instance both ways, on inputs already built:

- scikit-learn: the artifact's pipeline (``predict_proba`` for a classifier with
  probabilities, else ``predict``) on the frame (or float matrix) the runtime assembles;
- onnxruntime: ``InferenceSession.run`` of the runtime's session (one thread, as served), on
  the feed ``OnnxSession.run`` hands it (the row repeated) and on the 1-row feed.

"1 row as 2" is the served path, "1 row alone" the old one; each is the median of
:func:`bench.inprocess.time_call`'s repeats, and the ratio is served / alone. "same bits" says
whether the served first row equals the lone row's output bit for bit (``no`` is the reason the
runtimes pad). Calls of 2 rows or more are unchanged and not timed here.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np

from bench.inprocess import _pinned, time_call
from bench.models import BenchModel
from ml_api.core.model.artifact import load_artifact
from ml_api.core.model.validation import validate_columns
from ml_api.core.runtimes.onnx_runtime import OnnxPredictor
from ml_api.core.runtimes.predictor import SMALLEST_CALL_ROWS
from ml_api.core.runtimes.registry import WithFallback, load_predictor

DEFAULT_MODELS = "penguins,rf"
"""``--invariance`` models unless ``--models`` is given: the default model and the forest."""

Call = Callable[[Any], Any]


def _sklearn_pair(artifact: Any, columns: list[list[Any]]) -> tuple[Call, Any, Any]:
    predictor = load_predictor(artifact, "sklearn")
    model = predictor.model  # type: ignore[attr-defined]
    call = model.predict_proba if predictor.has_probabilities else model.predict
    assemble = artifact.schema.matrix if artifact.card.input == "array" else artifact.schema.frame
    return call, assemble(_as_two(columns)), assemble(columns)


def _onnx_pair(artifact: Any, columns: list[list[Any]]) -> tuple[Call, Any, Any]:
    predictor = load_predictor(artifact, "onnx")
    if isinstance(predictor, WithFallback):
        predictor = predictor.primary
    assert isinstance(predictor, OnnxPredictor)
    session = predictor.session
    raw, names = session._session, session._outputs  # the session without the 2-row rule

    def call(feed: dict[str, np.ndarray]) -> Any:
        return raw.run(names, feed)[-1]  # probabilities, or a regressor's values

    return call, session.feed_columns(_as_two(columns)), session.feed_columns(columns)


def _as_two(columns: list[list[Any]]) -> list[list[Any]]:
    return [col * SMALLEST_CALL_ROWS for col in columns]


def _same_bits(served: Any, alone: Any) -> bool:
    first, lone = np.asarray(served)[:1], np.asarray(alone)
    return first.shape == lone.shape and first.tobytes() == lone.tobytes()


def measure(
    models: dict[str, BenchModel], budget_s: float, cpus: tuple[int, ...] | None
) -> list[dict[str, Any]]:
    """Time each model's lone-instance call per runtime, as 2 rows and alone.

    Args:
        models: The prepared models.
        budget_s: Rough seconds per timing (two timings per model and runtime).
        cpus: Pin this process to these CPUs while timing (restored after).

    Returns:
        Rows of ``{"model", "runtime", "ms_as_2", "ms_alone", "ratio", "same_bits"}``
        (milliseconds per call, medians; ``ratio`` is ``ms_as_2 / ms_alone``). A model whose
        ONNX form did not pass the acceptance gate has no onnxruntime row.
    """
    pairs = {"scikit-learn": _sklearn_pair, "onnxruntime": _onnx_pair}
    results = []
    with _pinned(cpus):
        for key, model in models.items():
            artifact = load_artifact(model.model_root, model.name, None)
            columns = validate_columns(artifact.schema, [list(model.row)])
            for runtime, pair in pairs.items():
                if runtime == "onnxruntime" and not OnnxPredictor.status(artifact)[0]:
                    continue
                call, two, one = pair(artifact, columns)
                as_2 = time_call(partial(call, two), budget_s)
                alone = time_call(partial(call, one), budget_s)
                results.append(
                    {
                        "model": key,
                        "runtime": runtime,
                        "ms_as_2": round(as_2 * 1000, 4),
                        "ms_alone": round(alone * 1000, 4),
                        "ratio": round(as_2 / alone, 3),
                        "same_bits": _same_bits(call(two), call(one)),
                    }
                )
    return results


def markdown(rows: list[dict[str, Any]]) -> str:
    """The ``--invariance`` table: one row per model and runtime."""
    lines = [
        "## Batch invariance: 1 row evaluated as 2 (served) vs alone (before), in-process",
        "",
        "| model | runtime | 1 row as 2, ms | 1 row alone, ms | ratio | same bits |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['model']} | {r['runtime']} | {r['ms_as_2']:.4f} | {r['ms_alone']:.4f} | "
        f"{r['ratio']:.3f} | {'yes' if r['same_bits'] else 'no'} |"
        for r in rows
    ]
    return "\n".join(lines)
