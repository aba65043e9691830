"""The prediction service: validation, range policy, prediction and their metrics, for one model.

Every protocol (V1, V2: ``ml_api.core.protocols``) and the batch scorer (``ml-api predict``) call
it with instances already out of their envelope, and encode the neutral
:class:`~ml_api.core.runtimes.predictor.PredictionResult` their own way. It knows nothing of HTTP,
headers, JSON or settings: :func:`ml_api.composition.build_scoring` gives it its predictor,
validator, range check, limits and batcher. For the instances of one request:

1. every value fits the feature schema, else 422 naming instance and field;
2. numeric values outside the training range are warned about, or refused with 422, as
   ``Limits.out_of_range`` says (``ml_api.core.model.ranges``);
3. the model predicts (possibly in one call with concurrent requests: ``ml_api.core.batching``);
   an output that is not finite is refused with 422; all within the request's time limit (set by
   the protocol, ``ml_api.core.deadline``), else 504.
"""

from __future__ import annotations

import ctypes
import dataclasses
import multiprocessing
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from ml_api.core import context, metrics
from ml_api.core import deadline as time_limit
from ml_api.core.context import request_id_from
from ml_api.core.errors import (
    InvalidInput,
    ModelNotReady,
    ModelOutputError,
    Problem,
    RequestTimeout,
)
from ml_api.core.limits import Limits
from ml_api.core.model.artifact import Artifact
from ml_api.core.model.integrity import ArtifactError
from ml_api.core.model.libraries import library_versions
from ml_api.core.model.profile import Profile
from ml_api.core.model.ranges import OutOfRange, OutOfRangeInput, RangeCheck
from ml_api.core.model.validation import Validator
from ml_api.core.runtimes import failures
from ml_api.core.runtimes.predictor import PredictionResult, Predictor, check_counts

__all__ = ["ModelCall", "Observer", "PredictionService", "Unbatched", "request_id_from"]

Labels = tuple[str, str, str]
"""Metric labels of a served model: ``(model_name, model_version, runtime)``."""


class Submitter(Protocol):
    """Runs the model on one request's validated columns.

    A :class:`~ml_api.core.batching.Batcher` (merging concurrent requests) or :class:`Unbatched`
    (one call per request).
    """

    def submit(
        self, columns: list[list[Any]], rows: int, timeout: float | None = None
    ) -> PredictionResult:
        """Predict ``rows`` instances; ``TimeoutError`` past ``timeout`` seconds of waiting."""
        ...


class Observer(Protocol):
    """Watches predicted requests: the drift counter, the prediction log."""

    def observe(self, columns: list[list[Any]], n_instances: int, result: PredictionResult) -> None:
        """Take note of one request's validated ``columns`` and its answers; must not block."""
        ...


class ModelCall:
    """One timed model call on (possibly merged) validated columns, split back per request.

    Args:
        predictor: The runtime predicting.
        labels: Metric labels ``(model_name, model_version, runtime)``.
    """

    def __init__(self, predictor: Predictor, labels: Labels) -> None:
        self.predictor = predictor
        self._labels = labels

    def __call__(self, columns: list[list[Any]], sizes: list[int]) -> list[PredictionResult]:
        """Predict ``columns`` and split the result.

        Args:
            columns: ``n_features`` lists of ``sum(sizes)`` values.
            sizes: Instances of each merged request, in order.

        Returns:
            One :class:`PredictionResult` per request.

        Raises:
            InvalidInput: (422) the model refused the values.
            ModelOutputError: (500) the model answered another number of predictions (or
                probability rows) than ``sum(sizes)``: no answer is split out.
        """
        started = time.perf_counter()
        # Finite but extreme inputs (1e308) can overflow the model's arithmetic: no warning (an
        # error under -W error), the non-finite outputs are refused per request instead.
        with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
            result = self.predictor.predict(columns)
        check_counts(result, sum(sizes), len(self.predictor.classes))
        metrics.child(metrics.PREDICTION_DURATION, *self._labels).observe(
            time.perf_counter() - started
        )
        return result.split(sizes)


class Unbatched:
    """A :class:`Submitter` that calls the model once per request, at once (no batching).

    Args:
        call: The model call.
    """

    def __init__(self, call: ModelCall) -> None:
        self._call = call

    def submit(
        self, columns: list[list[Any]], rows: int, timeout: float | None = None
    ) -> PredictionResult:
        """Predict one request's ``rows`` instances (``timeout`` is not needed: nothing waits)."""
        return self._call(columns, [rows])[0]


class PredictionService:
    """Validation, the range policy, prediction and their metrics for one loaded model version.

    Args:
        artifact: The verified model version served (its name, version and card).
        predictor: The runtime predicting it (``ml_api.core.runtimes``).
        validator: Checks and converts instances against the feature schema.
        range_check: Finds values outside the training range.
        limits: The per-request limits (``out_of_range`` and ``request_timeout_seconds`` apply
            here; the protocols apply the body and instance limits).
        batcher: Runs the model: a :class:`~ml_api.core.batching.Batcher` or :class:`Unbatched`,
            both around a :class:`ModelCall` on ``predictor``.
        load_seconds: How long loading the artifact took, in seconds (published as a metric).
        profile: The version's reference profile (``None``: saved without one; no drift).
        counts_drift: Whether serving counts instances into the profile's bins
            (``ML_API_DRIFT`` and a profile); ``GET /metadata`` and ``ml-api info`` say it.
        observers: Told of every predicted request after its answer is ready (the drift counter
            and the prediction log; ``ml_api.composition`` builds them for serving).
        draining: The shutdown flag shared with the server's other models
            (:attr:`draining_flag` of another service); a new one when ``None``.
    """

    def __init__(
        self,
        artifact: Artifact,
        predictor: Predictor,
        validator: Validator,
        range_check: RangeCheck,
        limits: Limits,
        batcher: Submitter,
        load_seconds: float = 0.0,
        profile: Profile | None = None,
        observers: Sequence[Observer] = (),
        counts_drift: bool = False,
        draining: Any = None,
    ) -> None:
        self.artifact = artifact
        self.profile = profile
        self.counts_drift = counts_drift
        self.observers = tuple(observers)
        self.predictor = predictor
        self.schema = artifact.schema
        self.validator = validator
        self.range_check = range_check
        self.limits = limits
        self.batcher = batcher
        self.model_ref = {"name": artifact.name, "version": artifact.version}
        # Shared memory, created before gunicorn forks its workers: the master flips it on
        # SIGTERM and every worker's readiness sees it.
        self._draining = (
            multiprocessing.RawValue(ctypes.c_bool, False) if draining is None else draining
        )
        # model_name, model_version, runtime (metrics.PREDICTION_LABELS; MODEL_LABELS is [:2])
        self._labels: Labels = labels_of(artifact, predictor)
        # Warm-up in the master, before workers fork: the first request pays no lazy imports.
        try:
            warm = self.predictor.predict(self.validator.validate_columns([self.schema.example()]))
        except ModelOutputError as exc:  # the runtime checked the call's row count
            raise ArtifactError(f"model {artifact.path}: {exc.message}") from None
        _check_one_value_per_instance(warm, artifact)
        _check_rows_counted(self.predictor, self.validator, artifact)
        self.sklearn_version = library_versions().get("scikit-learn", "")
        """The scikit-learn version the model runs on (``ml_api_model_info``'s label)."""
        metrics.record_model(
            artifact.name,
            artifact.version,
            load_seconds,
            self.sklearn_version,
            artifact.card.class_distribution,
            self.predictor.runtime,
        )

    @property
    def batching(self) -> dict[str, Any]:
        """Whether concurrent requests share model calls here, and why not when they do not.

        Returns:
            ``{"across_requests": bool, "why_not": str | None}``: ``why_not`` is the runtime's
            note when it declares it cannot be batched (``Capabilities.note``), or says the
            setting turned batching off (``ML_API_BATCHING``); ``None`` when batched.
        """
        if not isinstance(self.batcher, Unbatched):
            return {"across_requests": True, "why_not": None}
        caps = self.predictor.capabilities
        if not caps.batches_across_requests:
            why = caps.note or f"{self.predictor.runtime} declares it cannot batch this model"
        else:
            why = "batching is turned off (ML_API_BATCHING=false)"
        return {"across_requests": False, "why_not": why}

    # ---- lifecycle -------------------------------------------------------------------------

    def start_draining(self) -> None:
        """Mark the server as shutting down: readiness answers 503 from now on, in every worker."""
        self._draining.value = True

    @property
    def draining_flag(self) -> Any:
        """The shared-memory shutdown flag (given to the services of the server's other models)."""
        return self._draining

    @property
    def draining(self) -> bool:
        """Whether :meth:`start_draining` was called (in this process or the gunicorn master)."""
        return bool(self._draining.value)

    def check_ready(self) -> None:
        """Refuse new traffic while draining (every protocol's readiness asks this).

        Raises:
            ModelNotReady: (503) the server is draining before shutdown.
        """
        if self._draining.value:
            raise ModelNotReady("shutting down: not accepting new traffic")

    # ---- inference -------------------------------------------------------------------------

    def predict_rows(
        self, rows: Sequence[Sequence[Any] | Mapping[str, Any]], first_index: int = 0
    ) -> PredictionResult:
        """Validate and predict instances already out of their envelope; neutral result out.

        Every protocol calls this (V1, V2, the CSV scorer) and encodes the result its own way.

        Args:
            rows: Positional lists or named mappings, ``n_instances`` of them.
            first_index: Index reported for ``rows[0]`` in errors (the CLI passes CSV row numbers).

        Returns:
            ``n_instances`` labels and, for classifiers, probabilities; under the ``warn`` policy
            the values outside the training range in ``out_of_range``.

        Raises:
            InvalidInput: (422) a value breaks the schema or the model refused it;
                :class:`~ml_api.core.model.ranges.OutOfRangeInput` (422) a value is outside the
                training range under the ``reject`` policy.
            RequestTimeout: (504) the request waited past its time limit for the model.
        """
        self._note_request(len(rows))
        columns = self.validator.validate_columns(rows, first_index=first_index)
        return self.predict_validated(columns, len(rows), first_index)

    def predict_columns(self, columns: Sequence[list[Any]]) -> PredictionResult:
        """Validate and predict one request's values given column by column (V2's tensors).

        As :meth:`predict_rows` on the rows these columns make (same checks, errors and answers),
        without building the rows when every value is plainly valid.

        Args:
            columns: ``n_features`` lists of ``n_instances`` JSON values, in schema order.

        Returns:
            See :meth:`predict_rows`.

        Raises:
            InvalidInput: See :meth:`predict_rows`.
            RequestTimeout: (504) the request waited past its time limit for the model.
        """
        n_instances = len(columns[0]) if columns else 0
        self._note_request(n_instances)
        validated = self.validator.validate_feature_columns(columns)
        return self.predict_validated(validated, n_instances)

    def _note_request(self, n_instances: int) -> None:
        """Put the instance count and this model version in the request's access record."""
        ctx = context.current()
        if ctx is not None:
            ctx.instances = n_instances
            ctx.model_version = self.artifact.version

    def predict_validated(
        self, columns: list[list[Any]], n_instances: int, first_index: int = 0
    ) -> PredictionResult:
        """Predict columns that passed validation (the CSV scorer's vectorised check does that).

        The out-of-range policy, batching, the overflow refusal and the metrics apply exactly as
        in :meth:`predict_rows`.

        Args:
            columns: ``n_features`` lists (or arrays) of ``n_instances`` validated values, as
                :meth:`Validator.validate_columns` returns them.
            n_instances: Instances in ``columns``.
            first_index: Index reported for the first instance in errors.

        Returns:
            See :meth:`predict_rows`.

        Raises:
            InvalidInput: (422) the model refused the values or gave a non-finite output;
                :class:`~ml_api.core.model.ranges.OutOfRangeInput` (422) under ``reject``.
            RequestTimeout: (504) the request waited past its time limit for the model.
        """
        out_of_range = self._check_ranges(columns, first_index)
        time_limit.check()
        try:
            result = self.batcher.submit(columns, n_instances, timeout=time_limit.remaining())
        except TimeoutError:
            raise RequestTimeout(
                f"the request waited longer than {self.limits.request_timeout_seconds:g} s "
                f"for the model; the server is overloaded, retry later"
            ) from None
        except InvalidInput as exc:
            if exc.details:
                raise
            reference = self.validator.validate_columns([self.schema.example()])
            names = self.schema.names
            raise failures.locate(
                self.predictor, columns, names, reference, exc, first_index
            ) from exc
        _refuse_overflow(result, first_index)
        metrics.child(metrics.REQUEST_INSTANCES, *self._labels).observe(n_instances)
        if self.predictor.is_classifier:
            labels = result.labels.tolist()
            if n_instances == 1:  # one label: no counting
                metrics.child(metrics.PREDICTIONS, *self._labels, str(labels[0])).inc(1)
            else:
                for label, count in Counter(map(str, labels)).items():
                    metrics.child(metrics.PREDICTIONS, *self._labels, label).inc(count)
        else:
            metrics.child(metrics.PREDICTIONS, *self._labels, "").inc(n_instances)
        for observer in self.observers:
            observer.observe(columns, n_instances, result)
        if out_of_range is not None:
            result = dataclasses.replace(result, out_of_range=out_of_range)
        return result

    def _check_ranges(self, columns: list[list[Any]], first_index: int) -> OutOfRange | None:
        """Apply the out-of-range policy (``Limits.out_of_range``) to validated columns.

        Args:
            columns: ``n_features`` validated columns of one request.
            first_index: Index of the request's first instance in problems.

        Returns:
            The values outside the training range under ``warn`` (counted), else ``None``.

        Raises:
            OutOfRangeInput: (422; 400 in V2) under ``reject``, when any value is outside.
        """
        policy = self.limits.out_of_range
        if policy == "accept":
            return None
        found = self.range_check.find(columns, first_index)
        if found is None:
            return None
        for feature, count in found.counts.items():
            metrics.OUT_OF_RANGE.labels(*self._labels[:2], feature).inc(count)
        if policy == "reject":
            raise OutOfRangeInput(found)
        return found


def labels_of(artifact: Artifact, predictor: Predictor) -> Labels:
    """The metric labels of a served model: ``(model_name, model_version, runtime)``."""
    return (artifact.name, artifact.version, predictor.runtime)


def _check_one_value_per_instance(result: PredictionResult, artifact: Artifact) -> None:
    """Refuse to serve a model that does not answer one value per instance (several targets).

    The import refuses such models; a version imported before it did would answer every request
    with an error, so it is refused when loaded instead.

    Raises:
        ArtifactError: The warm-up instance got labels of another shape than ``(1,)``.
    """
    shape = np.shape(result.labels)
    if shape != (1,):
        raise ArtifactError(
            f"model {artifact.path} answers shape {shape} for one instance: ml-api serves one "
            f"value per instance (one target per model); fit one model per target and import each"
        )


WARM_ROWS = 3
"""Instances of the second warm-up call, which checks the model answers one row per instance."""


def _check_rows_counted(predictor: Predictor, validator: Validator, artifact: Artifact) -> None:
    """Refuse to serve a model whose output on :data:`WARM_ROWS` instances is not that many rows.

    A one-instance warm-up cannot tell: a text vectorizer given a DataFrame answers one row for
    any number of rows.

    Raises:
        ArtifactError: The model answers another number of rows (one line naming the version).
    """
    rows = validator.validate_columns([validator.schema.example()] * WARM_ROWS)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        result = predictor.predict(rows)
    try:
        check_counts(result, WARM_ROWS, len(predictor.classes))
    except ModelOutputError as exc:
        raise ArtifactError(f"model {artifact.path}: {exc.message}") from None


def _refuse_overflow(result: PredictionResult, first_index: int) -> None:
    """Refuse instances whose prediction is not finite (their values overflowed the model).

    Raises:
        InvalidInput: (422) naming each such instance (up to ``MAX_DETAILS``).
    """
    probabilities, labels = result.probabilities, result.labels
    if (probabilities is None or np.isfinite(probabilities).all()) and (
        labels.dtype.kind != "f" or np.isfinite(labels).all()
    ):
        return  # every answer finite: the common case, two checks
    bad = np.zeros(len(result), dtype=bool)
    if result.probabilities is not None:
        bad |= ~np.isfinite(result.probabilities).all(axis=1)
    labels = result.labels
    if labels.dtype.kind == "f":
        bad |= ~np.isfinite(labels)
    if bad.any():
        where = [int(i) + first_index for i in np.flatnonzero(bad)]
        problem = (
            "the model's arithmetic overflows for these values (they are far outside the "
            "range seen in training; see GET /metadata)"
        )
        raise InvalidInput(
            f"instance {where[0]}: {problem}",
            [Problem(problem, instance=i) for i in where],
        )
