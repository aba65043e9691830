"""The ONNX Runtime predictor: the artifact's ``model.onnx``, run with one thread per worker.

A model version that passed the acceptance gate at training or import (``ml_api.onnx_export``)
carries ``model.onnx`` beside the scikit-learn pipeline; its sha256 is in the card and is checked
at load like the model file's. :class:`OnnxPredictor` is one implementation of
:class:`ml_api.core.runtimes.predictor.Predictor`, beside scikit-learn's: validation, batching,
the V1/V2 encodings and the CLI do not know which runtime runs. ``ML_API_RUNTIME`` picks it
(:func:`ml_api.core.runtimes.registry.load_predictor`), which also composes it with the
scikit-learn runtime for the instances it declines (numbers beyond float32).

Inputs (the same as the gate fed): an all-numeric model fitted on a float matrix takes one
``float32`` tensor ``X`` ``(n_instances, n_features)``; a mixed-type model takes one
``(n_instances, 1)`` tensor per feature, ``float32`` for numbers and numeric category codes
(``NaN`` where missing) and ``string`` for categories (``""`` where missing). Outputs: labels
mapped back to the model's own classes (original type), and probabilities
``(n_instances, n_classes)`` in the model's class order, or regression values ``(n_instances,)``.

ONNX Runtime computes in ``float32``: probabilities can differ from scikit-learn's in the 6th
decimal (the gate bounds the difference at 1e-5 on every training row); labels were identical on
every training row.

``onnxruntime`` is imported when a session is built, never at module import.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ml_api.core.errors import InvalidInput
from ml_api.core.model.artifact import Artifact
from ml_api.core.model.integrity import ArtifactError
from ml_api.core.model.schema import FeatureSchema
from ml_api.core.runtimes.predictor import (
    SMALLEST_CALL_ROWS,
    Capabilities,
    Declined,
    PredictionResult,
    Runtime,
    to_jsonable,
)

_ORT_LEVELS = {0: logging.DEBUG, 1: logging.INFO, 2: logging.WARNING, 3: logging.ERROR}
_ort_logger = logging.getLogger("onnxruntime")
_ort_lock = threading.Lock()
_ort_ready = False


def _log_ort(severity: int, category: str, logid: str, location: str, message: str) -> None:
    _ort_logger.log(_ORT_LEVELS.get(severity, logging.CRITICAL), "%s", message)


def import_onnxruntime() -> Any:
    """Import ``onnxruntime`` the way a server needs it (once per process).

    - ``ORT_DISABLE_TELEMETRY=1`` (unless set) before the import: ONNX Runtime otherwise writes
      a device id and a telemetry store under ``$XDG_CACHE_HOME`` (``~/.cache``) when imported,
      and prints a non-JSON warning where it cannot (the container's read-only root).
    - Its own log lines go to the ``onnxruntime`` Python logger (warnings and above), so they
      come out as JSON like every other line.

    Returns:
        The ``onnxruntime`` module.

    Raises:
        ImportError: ``onnxruntime`` is not installed.
    """
    global _ort_ready
    with _ort_lock:
        os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
        import onnxruntime

        if not _ort_ready:
            onnxruntime.set_default_logger_callback(_log_ort, 2)
            _ort_ready = True
    return onnxruntime


MISSING_CATEGORY = ""
"""What a string input holds where the category is missing (ONNX string tensors have no NaN)."""

_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def onnx_input_names(names: Sequence[str]) -> list[str]:
    """The ONNX input name of each feature: its own name where that is a plain identifier.

    skl2onnx rewrites any other name (``od280/od315_of_diluted_wines``, ``mean radius``) to one
    of its own, so such a feature is given ``input_<position>`` instead (made unique against the
    plain names). Only the ONNX graph sees these names: the schema, the card, the API and every
    error keep the feature's own name. A plain name maps to itself, so the ONNX files written
    before this mapping keep their inputs.

    Args:
        names: The features' names, in schema order (``n_features``).

    Returns:
        ``n_features`` distinct input names, in the same order.
    """
    taken = {n for n in names if _PLAIN_NAME.fullmatch(n)}
    out = []
    for i, name in enumerate(names):
        if _PLAIN_NAME.fullmatch(name):
            out.append(name)
            continue
        safe = f"input_{i}"
        while safe in taken:
            safe += "_"
        taken.add(safe)
        out.append(safe)
    return out


def _fill_missing(values: Sequence[Any]) -> list[Any]:
    """``values``, each missing one (as ``pandas.isna`` finds it) made :data:`MISSING_CATEGORY`.

    Validated text is ``str`` or missing (``None``/``NaN``): one pass in Python (``v == v`` is
    false only for NaN-like values) costs a fraction of building an array for ``pandas.isna``
    at a request's few values. A value whose comparison has no truth value (``pandas.NA``, from
    a frame) falls back to ``pandas.isna`` itself.
    """
    try:
        return [v if v is not None and v == v else MISSING_CATEGORY for v in values]
    except TypeError:
        return [MISSING_CATEGORY if pd.isna(v) else v for v in values]


class OnnxSession:
    """One ONNX Runtime session and the conversions in and out of it.

    Args:
        model_bytes: The serialized ONNX model.
        schema: The feature schema (input names, kinds and order).
        array_input: One ``X`` matrix input instead of one input per feature.
        classes: The model's classes in probability-column order (their original types), or
            ``None`` for a regressor.

    Raises:
        ImportError: ``onnxruntime`` is not installed.
        Exception: ONNX Runtime refused the model (its own error types).
    """

    def __init__(
        self,
        model_bytes: bytes,
        schema: FeatureSchema,
        *,
        array_input: bool,
        classes: Sequence[Any] | np.ndarray | None,
    ) -> None:
        ort = import_onnxruntime()
        options = ort.SessionOptions()
        # One thread each: a server runs one worker process per CPU, and the batcher already
        # runs requests concurrently; a pool per session would only contend.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self._session = ort.InferenceSession(
            model_bytes, options, providers=["CPUExecutionProvider"]
        )
        self._errors: tuple[type[BaseException], ...] = _ort_errors()
        self.schema = schema
        self.array_input = array_input
        # numeric-coded categoricals (integer codes) are float inputs, like numeric features
        self._numeric = [f.kind == "numeric" or f.is_coded for f in schema.features]
        self._inputs = onnx_input_names(schema.names)
        # the feed's layout, built once: the float inputs (one float32 matrix, one row each)
        # and the string inputs, by column position
        self._float_inputs = [
            (j, name)
            for j, (name, num) in enumerate(zip(self._inputs, self._numeric, strict=True))
            if num
        ]
        self._string_inputs = [
            (j, name)
            for j, (name, num) in enumerate(zip(self._inputs, self._numeric, strict=True))
            if not num
        ]
        self._real = {
            safe: name
            for safe, name in zip(self._inputs, schema.names, strict=True)
            if safe != name
        }
        self._outputs = [o.name for o in self._session.get_outputs()]
        if classes is None:
            self.classes: np.ndarray | None = None
            return
        self.classes = np.empty(len(classes), dtype=object)
        self.classes[:] = list(classes)
        # The label output holds the classes as int64 or as strings; map them back by position.
        label_type = self._session.get_outputs()[0].type
        keys = (
            np.asarray([int(c) for c in self.classes], dtype=np.int64)
            if "int64" in label_type
            else np.asarray([str(c) for c in self.classes], dtype=object)
        )
        self._key_order = np.argsort(keys, kind="stable")
        self._sorted_keys = keys[self._key_order]

    @property
    def errors(self) -> tuple[type[BaseException], ...]:
        """ONNX Runtime's exception types for a run that failed on its inputs."""
        return self._errors

    def reason(self, exc: BaseException) -> str:
        """One line from ONNX Runtime's error, naming features by their own names.

        Args:
            exc: What :meth:`run` raised.

        Returns:
            Its first line without ONNX Runtime's ``[ONNXRuntimeError] : 2 : INVALID_ARGUMENT :``
            prefix, at most 300 characters, with internal input names (:func:`onnx_input_names`)
            replaced by the features' names.
        """
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        text = re.sub(r"^\[ONNXRuntimeError\]( : \S+)* : ", "", text)
        if self._real:
            pattern = re.compile(r"\b(" + "|".join(map(re.escape, self._real)) + r")\b")
            text = pattern.sub(lambda m: self._real[m.group(1)], text)
        return text[:300]

    def feed_columns(self, columns: Sequence[Sequence[Any]]) -> dict[str, np.ndarray]:
        """Build the session's inputs from validated columns.

        Args:
            columns: ``n_features`` lists of ``n_instances`` values from
                :meth:`~ml_api.core.model.schema.FeatureSchema.validate_columns` (floats with
                ``NaN``, strings with ``NaN`` where missing).

        Returns:
            Input name to array (see the module docstring for shapes and types).
        """
        return self.prepare(columns, pad=False)[0]

    def prepare(
        self, columns: Sequence[Sequence[Any]], *, pad: bool = True
    ) -> tuple[dict[str, np.ndarray], int, np.ndarray | None]:
        """Build the session's inputs and find the numbers that did not survive ``float32``.

        Every float input is cast in one conversion (one ``float32`` matrix whose rows are the
        inputs), and checked for ``inf`` once: the same values, input by input, as casting each
        column alone.

        Args:
            columns: As :meth:`feed_columns` takes them (``n_features`` columns of
                ``n_instances`` values).
            pad: Repeat a lone instance to :data:`SMALLEST_CALL_ROWS` rows here, as :meth:`run`
                would (pass the feed to ``run`` with ``rows``).

        Returns:
            ``(feed, n_instances, wide)``: the inputs (see :meth:`feed_columns`), the instances
            they hold before padding, and ``None`` when every number fits ``float32``, else
            which instances hold one beyond its range (``(n_instances,)``, ``bool``; see
            :meth:`beyond_float32`).
        """
        rows = len(columns[0]) if columns else 0
        repeat = SMALLEST_CALL_ROWS if pad and 0 < rows < SMALLEST_CALL_ROWS else 0
        with np.errstate(over="ignore"):  # beyond float32: inf, found below
            if self.array_input:  # (n_features, n_instances)
                matrix = np.asarray(columns, dtype=np.float32)
            else:  # (n_float_inputs, n_instances); shape (0,) without float inputs
                matrix = np.asarray([columns[j] for j, _ in self._float_inputs], dtype=np.float32)
        wide: np.ndarray | None = None
        if matrix.size:
            infinite = np.isinf(matrix)
            if infinite.any():
                wide = np.asarray(infinite.any(axis=0))
        feed: dict[str, np.ndarray] = {}
        if self.array_input:
            x = matrix.T if not repeat else np.repeat(matrix.T, repeat, axis=0)
            feed["X"] = np.ascontiguousarray(x)
            return feed, rows, wide
        for (_, name), row in zip(self._float_inputs, matrix, strict=False):
            feed[name] = (row if not repeat else np.repeat(row, repeat)).reshape(-1, 1)
        for j, name in self._string_inputs:
            filled = _fill_missing(columns[j])
            if repeat:
                filled = filled * repeat
            feed[name] = np.array(filled, dtype=object).reshape(-1, 1)
        # schema order, as the feed was always built (ONNX Runtime takes inputs by name)
        return {name: feed[name] for name in self._inputs}, rows, wide

    @staticmethod
    def beyond_float32(feed: Mapping[str, np.ndarray]) -> np.ndarray:
        """Which instances of a feed hold a number that did not survive the cast to ``float32``.

        Validated numbers are finite, so an ``inf`` here is a value beyond float32's range
        (about 3.4e38) that the cast could not hold.

        Args:
            feed: From :meth:`feed_columns`: arrays of shape ``(n_instances, width)``.

        Returns:
            Shape ``(n_instances,)``, ``bool``.
        """
        rows = len(next(iter(feed.values()))) if feed else 0
        wide = np.zeros(rows, dtype=bool)
        for a in feed.values():
            if a.dtype == np.float32:
                wide |= np.isinf(a).any(axis=1)
        return wide

    def feed_from(self, features: pd.DataFrame | np.ndarray) -> dict[str, np.ndarray]:
        """Build the session's inputs from the frame or matrix the scikit-learn pipeline takes.

        Args:
            features: Shape ``(n_instances, n_features)``, columns in schema order.

        Returns:
            Input name to array.
        """
        if isinstance(features, pd.DataFrame):
            columns = [features[name].tolist() for name in self.schema.names]
            return self.feed_columns(columns)
        return {"X": np.ascontiguousarray(np.asarray(features, dtype=np.float32))}

    def run(
        self, feed: Mapping[str, np.ndarray], rows: int | None = None
    ) -> tuple[np.ndarray | None, np.ndarray]:
        """Run the model.

        Args:
            feed: From :meth:`feed_columns` or :meth:`feed_from`, or from :meth:`prepare`.
            rows: The instances of a feed :meth:`prepare` already padded (``None``: the feed's
                own length, padded here when it is below :data:`SMALLEST_CALL_ROWS`).

        Returns:
            ``(labels, values)``: for a classifier, labels ``(n_instances,)`` (object array of the
            model's classes) and probabilities ``(n_instances, n_classes)`` ``float32``; for a
            regressor, ``None`` and the predictions ``(n_instances,)``.

        Raises:
            Exception: ONNX Runtime's error (see :attr:`errors`) for inputs it cannot run.
        """
        if rows is None:
            rows = len(next(iter(feed.values()))) if feed else 0
            if 0 < rows < SMALLEST_CALL_ROWS:  # MLAS's one-row GEMV path sums in another order
                feed = {k: np.repeat(v, SMALLEST_CALL_ROWS, axis=0) for k, v in feed.items()}
        outputs = self._session.run(self._outputs, dict(feed))
        if self.classes is None:
            return None, np.asarray(outputs[0]).reshape(-1)[:rows]
        raw_labels, proba = np.asarray(outputs[0])[:rows], np.asarray(outputs[1])[:rows]
        idx = self._key_order[np.searchsorted(self._sorted_keys, raw_labels)]
        return self.classes[idx], proba


def _ort_errors() -> tuple[type[BaseException], ...]:
    import_onnxruntime()
    from onnxruntime.capi import onnxruntime_pybind11_state as state

    names = ("InvalidArgument", "Fail", "RuntimeException", "InvalidGraph")
    return tuple(getattr(state, n) for n in names if hasattr(state, n))


class OnnxPredictor(Runtime):
    """Serves a verified artifact's ``model.onnx`` with ONNX Runtime.

    It computes in ``float32`` and declines the instances holding a number beyond float32's range
    (:class:`~ml_api.core.runtimes.predictor.Declined`): the registry composes it with the
    fallback runtime (scikit-learn), which predicts those instances, row by row.

    Args:
        artifact: The loaded version; its ONNX model must have passed the gate.

    Raises:
        ArtifactError: The artifact has no usable ONNX model, or ONNX Runtime refused it (one
            line naming the file).
    """

    runtime = "onnxruntime"
    setting = "onnx"
    title = "ONNX Runtime"
    form = "onnx"
    capabilities = Capabilities(batches_across_requests=True, takes_every_batch=False)

    @classmethod
    def status(cls, artifact: Artifact) -> tuple[bool, str]:
        """Whether an artifact can be served by ONNX Runtime, and if not, why (one line).

        Args:
            artifact: The loaded version.

        Returns:
            ``(True, "")`` when the card's ``onnx`` section records a passed gate and the
            verified ONNX file was loaded; ``(False, reason)`` otherwise.
        """
        section = artifact.metadata.get("onnx")
        if not isinstance(section, Mapping):
            return False, "it was saved without an ONNX form (before ml-api converted models)"
        if not section.get("passed"):
            return False, f"its ONNX form did not pass the acceptance gate: {section.get('reason')}"
        if "onnx" not in artifact.forms:
            return False, "its card lists no ONNX file"
        return True, ""

    def __init__(self, artifact: Artifact) -> None:
        usable, why = self.status(artifact)
        if not usable:
            raise ArtifactError(f"model {artifact.path} cannot be served by ONNX Runtime: {why}")
        classes = artifact.classes
        try:
            self.session = OnnxSession(
                artifact.forms["onnx"],
                artifact.schema,
                array_input=artifact.card.input == "array",
                classes=classes,
            )
        except Exception as exc:
            path = artifact.path / artifact.metadata["onnx"]["file"]["name"]
            first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else repr(exc)
            raise ArtifactError(f"cannot load ONNX model {path}: {first}") from None
        self.classes: tuple[Any, ...] = (
            tuple(to_jsonable(list(classes))) if classes is not None else ()
        )

    @property
    def runtime_version(self) -> str:
        """The installed ONNX Runtime version."""
        return str(import_onnxruntime().__version__)

    @property
    def is_classifier(self) -> bool:
        """Whether the model has classes (every ONNX classifier here gives probabilities)."""
        return self.session.classes is not None

    @property
    def has_probabilities(self) -> bool:
        """Whether results carry class probabilities (same as :attr:`is_classifier`)."""
        return self.is_classifier

    def predict(self, columns: Sequence[Sequence[Any]]) -> PredictionResult:
        """Predict a batch (see :meth:`ml_api.core.runtimes.predictor.Predictor.predict`).

        Returns:
            Labels ``(n_instances,)`` (the model's classes in their original type, or regression
            values) and, for classifiers, probabilities ``(n_instances, n_classes)`` ``float64``
            (computed in ``float32``) in the card's class order.

        Raises:
            InvalidInput: (422) ONNX Runtime refused the values; the message quotes its reason.
            Declined: Instances hold a number beyond float32's range (about 3.4e38), which the
                ONNX model cannot take (``rows`` names them); the registry's fallback (the
                artifact's scikit-learn pipeline) predicts those instead, so their answer (or the
                422 scikit-learn gives for them) is the same as under ``ML_API_RUNTIME=sklearn``,
                and the registry calls this runtime again for the other instances.
        """
        feed, rows, wide = self.session.prepare(columns)
        if wide is not None:
            raise Declined(
                "a number beyond float32's range (ONNX Runtime computes in float32)", wide
            )
        try:
            labels, values = self.session.run(feed, rows)
        except self.session.errors as exc:
            reason = self.session.reason(exc)
            raise InvalidInput(f"the model could not use these values: {reason}") from exc
        if labels is None:
            return PredictionResult(labels=values.astype(np.float64), probabilities=None)
        return PredictionResult(
            labels=labels, probabilities=values.astype(np.float64), classes=self.classes
        )
