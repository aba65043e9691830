"""The predictor interface: validated columns in, one neutral :class:`PredictionResult` out.

A *runtime* is one implementation of :class:`Predictor`: scikit-learn
(``ml_api.core.runtimes.scikit_learn``) and ONNX Runtime (``ml_api.core.runtimes.onnx_runtime``).
Nothing above this module knows which runtime runs: the service, the batcher and every protocol
encoder (V1 JSON in ``ml_api.core.codecs``, V2 tensors in ``ml_api.core.open_inference``, CSV
columns in ``ml_api.predict``) see only the interface and the result. :func:`load_predictor` picks
the runtime from the model card (:attr:`ml_api.core.card.ModelCard.runtime`) and the
``ML_API_RUNTIME`` setting (:func:`choose_runtime`).

Adding a runtime: write a class with the attributes and method of :class:`Predictor` in
``ml_api/core/runtimes/<name>.py``, teach ``ModelCard.runtime`` its card, and add its branch to
:func:`load_predictor`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from ml_api.core.artifact import Artifact, ArtifactError

if TYPE_CHECKING:
    from ml_api.core.ranges import OutOfRange

SCIKIT_LEARN = "scikit-learn"
"""Runtime name of :class:`ml_api.core.runtimes.scikit_learn.SklearnPredictor` (also the V2
metadata's ``platform``)."""

ONNX_RUNTIME = "onnxruntime"
"""Runtime name of :class:`ml_api.core.runtimes.onnx_runtime.OnnxPredictor`."""

RUNTIME_SETTINGS = {"sklearn": SCIKIT_LEARN, "onnx": ONNX_RUNTIME}
"""``ML_API_RUNTIME`` values that force a runtime (``auto``: what the card says)."""


@dataclass(frozen=True, slots=True, eq=False)
class PredictionResult:
    """The predictions for a batch, in no protocol's wire form.

    Attributes:
        labels: Shape ``(n_instances,)``: class labels (classifiers) or values (regressors), as
            the runtime returned them (numpy scalars).
        probabilities: Shape ``(n_instances, n_classes)``, ``float64``, columns in the order of
            ``classes``; ``None`` for regressors and for classifiers without ``predict_proba``
            (``LinearSVC``, ``RidgeClassifier``...).
        classes: The class labels as plain JSON values (``str``, ``int``, ``bool``...), in column
            order of ``probabilities``; empty for regressors.
        out_of_range: The request's values outside the training range, attached by the service
            under the ``warn`` policy for the encoders to name (``ml_api.core.ranges``); ``None``
            when there are none or they were not checked.
    """

    labels: np.ndarray
    probabilities: np.ndarray | None
    classes: tuple[Any, ...] = ()
    out_of_range: OutOfRange | None = None

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def class_keys(self) -> tuple[str, ...]:
        """The classes as strings: the keys of V1's probabilities and V2's ``classes``."""
        return class_keys(self.classes)

    def split(self, sizes: Sequence[int]) -> list[PredictionResult]:
        """Cut a merged batch's result back into one result per request (views, no copies).

        Args:
            sizes: Instances of each merged request, in order; they sum to ``len(self)``.

        Returns:
            ``len(sizes)`` results.
        """
        if len(sizes) == 1:
            return [self]
        out, start = [], 0
        for n in sizes:
            probs = self.probabilities
            out.append(
                PredictionResult(
                    labels=self.labels[start : start + n],
                    probabilities=probs[start : start + n] if probs is not None else None,
                    classes=self.classes,
                )
            )
            start += n
        return out


def class_keys(classes: tuple[Any, ...]) -> tuple[str, ...]:
    """Return ``classes`` as strings (JSON object keys), computed once per tuple of classes.

    The cache is keyed by each class's type as well: ``(False, True) == (0, 1)`` in Python, and
    their keys differ (``"False"`` and ``"0"``).
    """
    return _class_keys(tuple((type(c), c) for c in classes))


@lru_cache(maxsize=64)
def _class_keys(typed: tuple[tuple[type, Any], ...]) -> tuple[str, ...]:
    return tuple(str(c) for _, c in typed)


class Predictor(Protocol):
    """What a runtime provides: one model call on validated columns.

    Attributes:
        runtime: The runtime's name (``"scikit-learn"``); the V2 metadata's ``platform``.
        runtime_version: The version of the library that runs the model.
        classes: Class labels as JSON values in probability column order; ``()`` for regressors.
        is_classifier: Whether the model is a classifier (it has ``classes_``), whatever it
            offers for probabilities.
        has_probabilities: Whether results carry class probabilities (a classifier with
            ``predict_proba``).
    """

    @property
    def runtime(self) -> str:
        """The runtime's name."""
        ...

    @property
    def runtime_version(self) -> str:
        """The version of the library that runs the model."""
        ...

    @property
    def classes(self) -> tuple[Any, ...]:
        """Class labels (JSON values) in probability column order; ``()`` for regressors."""
        ...

    @property
    def is_classifier(self) -> bool:
        """Whether the model is a classifier (labels are its classes)."""
        ...

    @property
    def has_probabilities(self) -> bool:
        """Whether results carry class probabilities."""
        ...

    def predict(self, columns: Sequence[Sequence[Any]]) -> PredictionResult:
        """Predict a batch.

        Args:
            columns: ``n_features`` equally long sequences of validated values in schema order
                (``ml_api.core.validation.validate_columns``): floats (``NaN`` for null) for
                numeric features, strings (``NaN`` for null) for categorical ones.

        Returns:
            ``n_instances`` labels and, for classifiers with ``predict_proba``, probabilities.

        Raises:
            InvalidInput: (422) the model refused the values.
        """
        ...


def onnx_status(artifact: Artifact) -> tuple[bool, str]:
    """Whether an artifact can be served by ONNX Runtime, and if not, why (one line).

    Args:
        artifact: The loaded version.

    Returns:
        ``(True, "")`` when the card's ``onnx`` section records a passed gate and the verified
        ONNX file was loaded; ``(False, reason)`` otherwise.
    """
    section = artifact.metadata.get("onnx")
    if not isinstance(section, Mapping):
        return False, "it was saved without an ONNX form (before ml-api converted models)"
    if not section.get("passed"):
        return False, f"its ONNX form did not pass the acceptance gate: {section.get('reason')}"
    if artifact.onnx_model is None:
        return False, "its card lists no ONNX file"
    return True, ""


def choose_runtime(artifact: Artifact, setting: str = "auto") -> str:
    """Decide which runtime serves an artifact under ``ML_API_RUNTIME``.

    Args:
        artifact: The loaded version.
        setting: ``auto`` (the card's runtime: ONNX Runtime where the version passed the gate,
            scikit-learn elsewhere), ``sklearn`` or ``onnx``.

    Returns:
        A runtime name (:data:`SCIKIT_LEARN` or :data:`ONNX_RUNTIME`, or what an unknown card
        names, which :func:`load_predictor` refuses).

    Raises:
        ArtifactError: ``setting`` is ``onnx`` and the artifact has no ONNX form that passed the
            gate; one line naming the version directory and the reason.
        ValueError: Unknown setting.
    """
    if setting not in ("auto", *RUNTIME_SETTINGS):
        raise ValueError(f"unknown runtime setting {setting!r}; use auto, sklearn or onnx")
    if setting == "sklearn":
        return SCIKIT_LEARN
    usable, why = onnx_status(artifact)
    if setting == "onnx":
        if not usable:
            raise ArtifactError(
                f"ML_API_RUNTIME=onnx but model {artifact.path} cannot be served by ONNX "
                f"Runtime: {why} (set ML_API_RUNTIME=auto or sklearn, or retrain it)"
            )
        return ONNX_RUNTIME
    runtime = artifact.card.runtime
    if runtime == ONNX_RUNTIME and not usable:
        return SCIKIT_LEARN
    return runtime


def load_predictor(artifact: Artifact, setting: str = "auto") -> Predictor:
    """Build the runtime that serves a loaded artifact.

    Args:
        artifact: The verified model version.
        setting: ``ML_API_RUNTIME`` (``auto``, ``sklearn`` or ``onnx``; see
            :func:`choose_runtime`).

    Returns:
        The predictor.

    Raises:
        ArtifactError: The card names a runtime this installation does not have; or ``onnx``
            was asked for a version without a passing ONNX form; or ONNX Runtime refused the
            file (one line naming it).
    """
    runtime = choose_runtime(artifact, setting)
    if runtime == SCIKIT_LEARN:
        from ml_api.core.runtimes.scikit_learn import SklearnPredictor

        return SklearnPredictor(artifact)
    if runtime == ONNX_RUNTIME:
        from ml_api.core.runtimes.onnx_runtime import OnnxPredictor

        return OnnxPredictor(artifact)
    raise ArtifactError(f"model {artifact.path} needs the runtime {runtime!r}, which is unknown")
