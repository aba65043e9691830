"""The ONNX Runtime predictor: the artifact's ``model.onnx``, run with one thread per worker.

A model version that passed the acceptance gate at training or import (``ml_api.onnx_export``)
carries ``model.onnx`` beside the scikit-learn pipeline; its sha256 is in the card and is checked
at load like the model file's. :class:`OnnxPredictor` serves it behind the same interface as the
scikit-learn predictor: validation, batching, the V1/V2 encodings and the CLI do not know which
runtime runs.

Inputs (the same as the gate fed): an all-numeric model fitted on a float matrix takes one
``float32`` tensor ``X`` ``(n_instances, n_features)``; a mixed-type model takes one
``(n_instances, 1)`` tensor per feature, ``float32`` for numbers (``NaN`` where missing) and
``string`` for categories (``""`` where missing). Outputs: labels mapped back to the model's own
classes (original type), and probabilities ``(n_instances, n_classes)`` in the model's class order,
or regression values ``(n_instances,)``.

ONNX Runtime computes in ``float32``: probabilities can differ from scikit-learn's in the 6th
decimal (the gate bounds the difference at 1e-5 on every training row); labels were identical on
every training row.

``onnxruntime`` is imported when a session is built, never at module import.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ml_api.core.artifact import Artifact, ArtifactError
from ml_api.core.codecs import to_jsonable
from ml_api.core.errors import InvalidInput
from ml_api.core.predictor import Prediction
from ml_api.core.schema import FeatureSchema

RUNTIMES = ("auto", "sklearn", "onnx")
"""Values of ``ML_API_RUNTIME``: ``auto`` serves ONNX where the version passed the gate."""

MISSING_CATEGORY = ""
"""What a string input holds where the category is missing (ONNX string tensors have no NaN)."""


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
        import onnxruntime as ort

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
        self._features = [(f.name, f.kind == "numeric") for f in schema.features]
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

    def feed_columns(self, columns: Sequence[Sequence[Any]]) -> dict[str, np.ndarray]:
        """Build the session's inputs from validated columns.

        Args:
            columns: ``n_features`` lists of ``n_instances`` values from
                :meth:`~ml_api.core.schema.FeatureSchema.validate_columns` (floats with ``NaN``,
                strings with ``NaN`` where missing).

        Returns:
            Input name to array (see the module docstring for shapes and types).
        """
        if self.array_input:
            return {"X": np.ascontiguousarray(np.asarray(columns, dtype=np.float32).T)}
        feed = {}
        for (name, numeric), col in zip(self._features, columns, strict=True):
            if numeric:
                feed[name] = np.asarray(col, dtype=np.float32).reshape(-1, 1)
            else:
                strings = np.empty((len(col), 1), dtype=object)
                strings[:, 0] = [v if isinstance(v, str) else MISSING_CATEGORY for v in col]
                feed[name] = strings
        return feed

    def feed_from(self, features: pd.DataFrame | np.ndarray) -> dict[str, np.ndarray]:
        """Build the session's inputs from the frame or matrix the scikit-learn pipeline takes.

        Args:
            features: Shape ``(n_instances, n_features)``, columns in schema order.

        Returns:
            Input name to array.
        """
        if isinstance(features, pd.DataFrame):
            columns = [features[name].tolist() for name, _ in self._features]
            return self.feed_columns(columns)
        return {"X": np.ascontiguousarray(np.asarray(features, dtype=np.float32))}

    def run(self, feed: Mapping[str, np.ndarray]) -> tuple[np.ndarray | None, np.ndarray]:
        """Run the model.

        Args:
            feed: From :meth:`feed_columns` or :meth:`feed_from`.

        Returns:
            ``(labels, values)``: for a classifier, labels ``(n_instances,)`` (object array of the
            model's classes) and probabilities ``(n_instances, n_classes)`` ``float32``; for a
            regressor, ``None`` and the predictions ``(n_instances,)``.

        Raises:
            Exception: ONNX Runtime's error (see :attr:`errors`) for inputs it cannot run.
        """
        outputs = self._session.run(self._outputs, dict(feed))
        if self.classes is None:
            return None, np.asarray(outputs[0]).reshape(-1)
        raw_labels, proba = outputs[0], outputs[1]
        idx = self._key_order[np.searchsorted(self._sorted_keys, np.asarray(raw_labels))]
        return self.classes[idx], np.asarray(proba)


def _ort_errors() -> tuple[type[BaseException], ...]:
    from onnxruntime.capi import onnxruntime_pybind11_state as state

    names = ("InvalidArgument", "Fail", "RuntimeException", "InvalidGraph")
    return tuple(getattr(state, n) for n in names if hasattr(state, n))


def onnx_status(artifact: Artifact) -> tuple[bool, str]:
    """Whether an artifact can be served by ONNX Runtime, and if not, why (one line).

    Args:
        artifact: The loaded version.

    Returns:
        ``(True, "")`` when the card records a passed gate and the verified ONNX file is loaded;
        ``(False, reason)`` otherwise.
    """
    section = artifact.metadata.get("onnx")
    if not isinstance(section, Mapping):
        return False, "it was saved without an ONNX model (before ml-api converted models)"
    if not section.get("passed"):
        return False, f"its ONNX model did not pass the gate: {section.get('reason')}"
    if artifact.onnx_model is None:
        return False, "its ONNX file was not loaded"
    return True, ""


def choose_runtime(artifact: Artifact, setting: str) -> str:
    """Decide which runtime serves an artifact under ``ML_API_RUNTIME``.

    Args:
        artifact: The loaded version.
        setting: ``auto`` (ONNX where the version passed the gate, else scikit-learn),
            ``sklearn`` or ``onnx``.

    Returns:
        ``"onnx"`` or ``"sklearn"``.

    Raises:
        ArtifactError: ``setting`` is ``onnx`` and the artifact has no ONNX model that passed the
            gate; one line naming the version directory and the reason.
        ValueError: Unknown setting.
    """
    if setting not in RUNTIMES:
        raise ValueError(f"unknown runtime {setting!r}; use one of {', '.join(RUNTIMES)}")
    if setting == "sklearn":
        return "sklearn"
    usable, why = onnx_status(artifact)
    if setting == "onnx" and not usable:
        raise ArtifactError(
            f"ML_API_RUNTIME=onnx but model {artifact.path} cannot be served by ONNX Runtime: "
            f"{why} (set ML_API_RUNTIME=auto or sklearn, or retrain it)"
        )
    return "onnx" if usable else "sklearn"


class OnnxPredictor:
    """Serves a verified artifact's ``model.onnx`` (the scikit-learn predictor's interface).

    Args:
        artifact: The loaded version; its ONNX model must have passed the gate.

    Raises:
        ArtifactError: The artifact has no usable ONNX model, or ONNX Runtime refused it (one
            line naming the file).
    """

    runtime = "onnx"

    def __init__(self, artifact: Artifact) -> None:
        usable, why = onnx_status(artifact)
        if not usable or artifact.onnx_model is None:
            raise ArtifactError(f"model {artifact.path} cannot be served by ONNX Runtime: {why}")
        self.artifact = artifact
        self.schema = artifact.schema
        classes = artifact.classes
        try:
            self.session = OnnxSession(
                artifact.onnx_model,
                artifact.schema,
                array_input=artifact.metadata.get("input") == "array",
                classes=classes,
            )
        except Exception as exc:
            path = artifact.path / artifact.metadata["onnx"]["file"]["name"]
            first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else repr(exc)
            raise ArtifactError(f"cannot load ONNX model {path}: {first}") from None
        self.class_keys: list[str] = (
            [str(c) for c in to_jsonable(list(classes))] if classes is not None else []
        )

    @property
    def is_classifier(self) -> bool:
        """Whether the model has classes and class probabilities."""
        return self.session.classes is not None

    def assemble(self, columns: Sequence[Sequence[Any]]) -> dict[str, np.ndarray]:
        """Turn validated columns into the session's inputs (:meth:`OnnxSession.feed_columns`)."""
        return self.session.feed_columns(columns)

    def predict(self, features: Mapping[str, np.ndarray] | pd.DataFrame | np.ndarray) -> Prediction:
        """Predict a batch.

        Args:
            features: From :meth:`assemble`, or the frame / float matrix the scikit-learn pipeline
                takes, shape ``(n_instances, n_features)``.

        Returns:
            ``n_instances`` labels (the model's classes, JSON types) and, for classifiers,
            probabilities in class order.

        Raises:
            InvalidInput: (422) ONNX Runtime refused the values; the message quotes its reason.
        """
        feed = features if isinstance(features, Mapping) else self.session.feed_from(features)
        try:
            labels, values = self.session.run(feed)
        except self.session.errors as exc:
            reason = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
            raise InvalidInput(f"the model could not use these values: {reason}") from exc
        if labels is None:
            return Prediction(labels=to_jsonable(values.astype(np.float64)), probabilities=None)
        keys = self.class_keys
        probabilities = [
            dict(zip(keys, to_jsonable(row), strict=True)) for row in values.astype(np.float64)
        ]
        return Prediction(labels=to_jsonable(labels), probabilities=probabilities)
