"""The predictor interface: validated columns in, one neutral :class:`PredictionResult` out.

A *runtime* is a subclass of :class:`Runtime` (one module each in :mod:`ml_api.core.runtimes`)
and an implementation of :class:`Predictor`. Nothing above the runtimes knows which one runs:
the service, the batcher and every protocol encoder (V1 JSON in ``ml_api.core.codecs``, V2
tensors in ``ml_api.core.protocols.v2``, CSV columns in ``ml_api.predict``) see only the interface
and the result. :func:`ml_api.core.runtimes.registry.load_predictor` picks the runtime from the
model card (:attr:`ml_api.core.model.card.ModelCard.runtime`) and the ``ML_API_RUNTIME`` setting.

This module imports no runtime: the runtimes import it (the interface, what a runtime declares,
the result and :func:`to_jsonable`, the plain JSON values of their classes), and so do the
protocol encoders.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import numpy as np

from ml_api.core.errors import ModelOutputError
from ml_api.core.wording import count

if TYPE_CHECKING:
    from ml_api.core.model.artifact import Artifact
    from ml_api.core.model.ranges import OutOfRange


SMALLEST_CALL_ROWS = 2
"""Fewest rows a runtime puts into one model call; a lone instance is evaluated as two copies.

This is what makes answers batch-invariant (docs/production.md, "Batch-invariant answers"). A
linear model's scores are a matrix product. numpy's ``matmul`` hands one row to BLAS's
matrix-vector routine (GEMV) and two or more to the matrix-matrix one (GEMM); ONNX Runtime's
MLAS does the same (its GEMM routine has a GEMV special case for one row). The two routines sum
the products in a different order, so a lone instance got other last bits than the same instance
in a batch (a probability 0.0005596332484856248 alone, 0.0005596329574473202 beside another
row). In the GEMM path each output row is computed with the same arithmetic whatever the other
rows hold and wherever the row sits (the property test checks it for random batches); tree
models, encoders, imputers and scalers work row by row anyway. Evaluating at least two rows keeps
every call in that one path, for the cost of a second copy of a lone row."""


def at_least_two_rows(
    columns: Sequence[Sequence[Any]],
) -> tuple[Sequence[Sequence[Any]], bool]:
    """Repeat a lone instance so a model call has :data:`SMALLEST_CALL_ROWS` rows.

    Args:
        columns: ``n_features`` sequences of ``n_instances`` values.

    Returns:
        ``(columns, padded)``: the columns with one row repeated when ``n_instances`` was 1 (and
        ``padded`` true; keep only the first row of the result), else the columns as given.
    """
    if columns and len(columns[0]) == 1:
        return [[col[0], col[0]] for col in columns], True
    return columns, False


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
            under the ``warn`` policy for the encoders to name (``ml_api.core.model.ranges``);
            ``None`` when there are none or they were not checked.
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

    def head(self, n: int) -> PredictionResult:
        """The first ``n`` instances' result (views, no copies)."""
        probs = self.probabilities
        return PredictionResult(
            labels=self.labels[:n],
            probabilities=probs[:n] if probs is not None else None,
            classes=self.classes,
            out_of_range=self.out_of_range,
        )

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


def concatenate(results: Sequence[PredictionResult]) -> PredictionResult:
    """One result for consecutive instances predicted in separate calls (at least one).

    Args:
        results: Results of one model for consecutive runs of instances, in order.

    Returns:
        Their labels and probabilities (when every result carries them) end to end.
    """
    first = results[0]
    probs = [r.probabilities for r in results]
    return PredictionResult(
        labels=np.concatenate([r.labels for r in results]),
        probabilities=None if any(p is None for p in probs) else np.concatenate(probs),  # type: ignore[arg-type]
        classes=first.classes,
    )


def interleave(
    mask: np.ndarray, chosen: PredictionResult, rest: PredictionResult
) -> PredictionResult:
    """Put two results for complementary instances of one batch back in batch order.

    Args:
        mask: Shape ``(n_instances,)``, ``bool``: where ``chosen``'s instances go.
        chosen: The result for the instances where ``mask`` is true (in order).
        rest: The result for the others (in order); same model, so the same classes.

    Returns:
        ``n_instances`` labels (``rest``'s converted to ``chosen``'s dtype, e.g. numpy strings
        to the Python strings of an ``object`` array) and, when both carry them, probabilities
        (``float64``); the values of each instance are its own result's, unchanged.
    """
    labels = np.empty(len(mask), dtype=np.result_type(chosen.labels.dtype, rest.labels.dtype))
    labels[mask], labels[~mask] = chosen.labels, rest.labels
    probabilities = None
    if chosen.probabilities is not None and rest.probabilities is not None:
        width = chosen.probabilities.shape[1]
        probabilities = np.empty((len(mask), width), dtype=np.float64)
        probabilities[mask], probabilities[~mask] = chosen.probabilities, rest.probabilities
    return PredictionResult(labels=labels, probabilities=probabilities, classes=chosen.classes)


def class_keys(classes: tuple[Any, ...]) -> tuple[str, ...]:
    """Return ``classes`` as strings (JSON object keys), computed once per tuple of classes.

    The cache is keyed by each class's type as well: ``(False, True) == (0, 1)`` in Python, and
    their keys differ (``"False"`` and ``"0"``).
    """
    return _class_keys(tuple((type(c), c) for c in classes))


@lru_cache(maxsize=64)
def _class_keys(typed: tuple[tuple[type, Any], ...]) -> tuple[str, ...]:
    return tuple(str(c) for _, c in typed)


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a runtime declares about the calls it takes (:attr:`Runtime.capabilities`).

    Attributes:
        batches_across_requests: Whether concurrent requests may be merged into one call (the
            batcher, ``ml_api.core.batching``): each request's answer must then not depend on
            the other rows of the call.
        takes_every_batch: Whether the runtime computes every batch of validated values.
            ``False``: it raises :class:`Declined` for some, and the registry composes it with
            the fallback runtime, which predicts those
            (:class:`ml_api.core.runtimes.registry.WithFallback`).
        note: Why requests are not batched, when ``batches_across_requests`` is false (one
            line, shown by ``GET /metadata``, the V2 model metadata and the card page).
    """

    batches_across_requests: bool = True
    takes_every_batch: bool = True
    note: str = ""


class Declined(Exception):
    """A runtime cannot compute some instances of a batch faithfully; the values are not at fault.

    Raised by a runtime declaring ``takes_every_batch=False``; the registry's fallback runtime
    predicts the declined instances instead (their answer, or the 422, is then the fallback's),
    and the runtime predicts the others, so no instance's answer depends on what it is batched
    with (:class:`ml_api.core.runtimes.registry.WithFallback`).

    Args:
        reason: Why (one line).
        rows: Shape ``(n_instances,)``, ``bool``: the declined instances; ``None``: all of them.
    """

    def __init__(self, reason: str, rows: np.ndarray | None = None) -> None:
        super().__init__(reason)
        self.rows = rows


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
        capabilities: What the runtime declares about the calls it takes.
    """

    @property
    def runtime(self) -> str:
        """The runtime's name."""
        ...

    @property
    def capabilities(self) -> Capabilities:
        """What the runtime declares about the calls it takes."""
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
                (``ml_api.core.model.validation.validate_columns``): floats (``NaN`` for null) for
                numeric features, strings (``NaN`` for null) for categorical ones.

        Returns:
            ``n_instances`` labels and, for classifiers with ``predict_proba``, probabilities.

        Raises:
            InvalidInput: (422) the model refused the values.
            Declined: The runtime cannot compute this batch (only runtimes whose capabilities
                say ``takes_every_batch=False``; the registry's wrapper catches it).
        """
        ...


class Runtime(ABC):
    """Base class of every runtime: what it declares, read by the registry before building it.

    A runtime is a subclass that sets the class attributes below, takes the artifact in its
    constructor (raising ``ArtifactError``, one line, when it cannot serve it) and implements
    :class:`Predictor`; :data:`ml_api.core.runtimes.registry.RUNTIMES` lists it.

    Attributes:
        runtime: Its name: the card's ``runtime``, the V2 metadata's ``platform``, the metrics'
            ``runtime`` label (``"scikit-learn"``).
        setting: The ``ML_API_RUNTIME`` value that forces it (``"sklearn"``).
        title: Its name in messages (``"scikit-learn"``).
        form: The served form it runs (a key of :attr:`Artifact.forms`), or ``None``: it runs
            the artifact's own model (:attr:`Artifact.model`), which every version has.
        capabilities: What it declares about the calls it takes.
    """

    runtime: ClassVar[str]
    setting: ClassVar[str]
    title: ClassVar[str]
    form: ClassVar[str | None] = None
    capabilities: ClassVar[Capabilities] = Capabilities()
    classes: tuple[Any, ...]

    @abstractmethod
    def __init__(self, artifact: Artifact) -> None:
        """Build the runtime for a loaded artifact (load its model or form)."""

    @property
    @abstractmethod
    def runtime_version(self) -> str:
        """The version of the library that runs the model."""

    @property
    @abstractmethod
    def is_classifier(self) -> bool:
        """Whether the model is a classifier."""

    @property
    @abstractmethod
    def has_probabilities(self) -> bool:
        """Whether results carry class probabilities."""

    @abstractmethod
    def predict(self, columns: Sequence[Sequence[Any]]) -> PredictionResult:
        """Predict a batch (see :meth:`Predictor.predict`)."""

    @classmethod
    def status(cls, artifact: Artifact) -> tuple[bool, str]:
        """Whether this runtime can serve an artifact, and if not, why (one line).

        Args:
            artifact: The loaded version.

        Returns:
            ``(True, "")`` for a runtime without a form (it runs the artifact's own model) and
            for one whose form the artifact holds; ``(False, reason)`` otherwise.
        """
        if cls.form is None or cls.form in artifact.forms:
            return True, ""
        return False, f"its card lists no {cls.form} file"


def to_jsonable(values: np.ndarray | list[Any]) -> list[Any]:
    """Convert a 1-D array of predictions into plain JSON values.

    numpy integers, floats and booleans become ``int``, ``float`` and ``bool``; non-finite floats
    become ``None`` (JSON ``null``), never bare ``NaN``.

    Args:
        values: Shape ``(n_instances,)``.

    Returns:
        A list of length ``n_instances``.
    """
    if isinstance(values, np.ndarray) and plain_finite(values):
        plain: list[Any] = values.tolist()  # bool, int, float or str, all finite: as they are
        return plain
    items = values.tolist() if isinstance(values, np.ndarray) else values
    if _PLAIN_TYPES.issuperset(map(type, items)):  # an object array of the model's classes
        return list(items)  # json_scalar gives each of these back unchanged
    return [json_scalar(v) for v in items]


_PLAIN_TYPES = frozenset({str, int, bool})
"""Python types :func:`json_scalar` returns unchanged whatever the value (floats may be NaN)."""


def plain_finite(values: np.ndarray) -> bool:
    """Whether ``values.tolist()`` is already what :func:`json_scalar` would make of each value.

    True for boolean, integer and string arrays and for float arrays with no ``NaN``/infinity;
    object arrays (any Python value inside) take the general path.
    """
    kind = values.dtype.kind
    if kind in "biuU":
        return True
    return kind == "f" and bool(np.isfinite(values).all())


def json_scalar(v: Any) -> Any:
    """Return one prediction value as a plain JSON value (non-finite floats as ``None``)."""
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, bool | int | float | str) or v is None:
        return v
    return str(v)


def check_counts(result: PredictionResult, instances: int, n_classes: int) -> None:
    """Refuse a model call whose output does not have one row per instance.

    Every answer (V1, V2, batch scoring; both frameworks) comes through
    ``ml_api.core.service.ModelCall``, which checks the whole call, and the scikit-learn runtime
    checks each model call before it drops a padding row or joins instances evaluated one at a
    time (either would hide a model answering one row for any number), so a count that differs
    never reaches a client as a 200.

    Args:
        result: What the runtime returned for the call.
        instances: Instances the call was given (all merged requests).
        n_classes: Classes of the model (probability columns expected), 0 for regressors.

    Raises:
        ModelOutputError: (500) labels of a shape other than ``(instances,)``, or probabilities
            of a shape other than ``(instances, n_classes)``.
    """
    shape = np.shape(result.labels)
    proba = result.probabilities
    if shape == (instances,) and (proba is None or np.shape(proba) == (instances, n_classes)):
        return
    if shape != (instances,) or proba is None:
        got = f"labels of shape {shape}"
    else:
        got = f"probabilities of shape {np.shape(proba)}"
    raise ModelOutputError(
        f"the model answered {got} for {count(instances, 'instance')}: no answer is given, "
        f"since it does not keep one prediction per instance (a text vectorizer given a table "
        f"instead of a column does this); re-import the model (ml-api import checks the row count)"
    )


def check_rows(result: PredictionResult, instances: int, n_classes: int) -> None:
    """Refuse a model call whose output does not have ``instances`` rows (first dimension only).

    What a runtime checks on each model call; the shape of each row (one target, one column per
    class) is the service's check, with its own message (``check_counts``, the warm-up).

    Raises:
        ModelOutputError: (500) labels or probabilities with another number of rows.
    """
    proba = result.probabilities
    labels_rows = np.shape(result.labels)[:1]
    if labels_rows == (instances,) and (proba is None or np.shape(proba)[:1] == (instances,)):
        return
    check_counts(result, instances, n_classes)
