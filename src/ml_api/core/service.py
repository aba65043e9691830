"""The prediction service: the one place both adapters (Flask, Django) and the CLI call.

A view parses the request into ``(content type, content length, body reader)``, calls
:meth:`PredictionService.predict_http`, and renders the dict it returns, or the
:class:`~ml_api.core.errors.ServingError` it raises, with :func:`~ml_api.core.errors.to_payload`.
The order of checks, and so the status a bad request gets, lives here and nowhere else:

1. ``Content-Type`` is JSON, else 415; ``Content-Encoding`` is gzip, deflate or identity, else 415;
2. ``Content-Length`` is within ``max_body_bytes``, else 413 before a byte is read;
3. the body decodes (``Content-Encoding``) to at most ``max_body_bytes`` (else 413; 400 if it is
   not what its coding says) and is strict JSON, else 400;
4. the envelope is one the contract accepts, else 400 (413 past ``max_instances``);
5. every value fits the feature schema, else 422 naming instance and field; numeric values
   outside the training range are then warned about, or refused with 422, as
   ``Settings.out_of_range`` says (``ml_api.core.model.ranges``);
6. the model predicts; all of 3 to 6 within ``request_timeout_seconds``, else 504.
"""

from __future__ import annotations

import ctypes
import dataclasses
import multiprocessing
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from ml_api.core import context, metrics
from ml_api.core import deadline as time_limit
from ml_api.core.auth import ApiKeyAuth
from ml_api.core.batching import Batcher
from ml_api.core.codecs import (
    check_content_encoding,
    check_content_type,
    check_declared_length,
    decode_content,
    encode_v1,
    extract_instances,
    parse_json,
)
from ml_api.core.context import request_id_from
from ml_api.core.errors import InvalidInput, ModelNotReady, Problem, RequestTimeout
from ml_api.core.limits import Limits
from ml_api.core.model.artifact import Artifact, library_versions, load_artifact
from ml_api.core.model.ranges import OutOfRange, OutOfRangeInput, RangeCheck
from ml_api.core.model.validation import Validator
from ml_api.core.runtimes.predictor import PredictionResult, Predictor
from ml_api.core.runtimes.registry import load_predictor
from ml_api.settings import Settings

__all__ = ["PredictionService", "request_id_from"]


class PredictionService:
    """Validation, prediction, encoding and their metrics for one loaded model version.

    Args:
        artifact: The verified model version to serve.
        settings: Limits (``max_body_bytes``, ``max_instances``, ``request_timeout_seconds``) and
            API keys.
        load_seconds: How long loading the artifact took, in seconds (published as a metric).

    Raises:
        OSError: ``settings.api_keys_file`` is set but unreadable.
    """

    def __init__(self, artifact: Artifact, settings: Settings, load_seconds: float = 0.0) -> None:
        self.artifact = artifact
        self.settings = settings
        self.predictor: Predictor = load_predictor(artifact, settings.runtime)
        self.schema = artifact.schema
        self.validator = Validator(self.schema)
        self.range_check = RangeCheck(self.schema)
        self.model_ref = {"name": artifact.name, "version": artifact.version}
        self.limits = Limits.from_settings(settings)
        self.auth = ApiKeyAuth.from_settings(settings)  # re-reads api_keys_file on change
        # Shared memory, created before gunicorn forks its workers: the master flips it on
        # SIGTERM and every worker's /ready sees it.
        self._draining = multiprocessing.RawValue(ctypes.c_bool, False)
        # model_name, model_version, runtime (metrics.PREDICTION_LABELS; MODEL_LABELS is [:2])
        self._labels = (artifact.name, artifact.version, self.predictor.runtime)
        # Warm-up in the master, before workers fork: the first request pays no lazy imports.
        self.predictor.predict(self.validator.validate_columns([self.schema.example()]))
        self.batcher = (
            Batcher(
                self._predict_columns,
                settings.batch_max_rows,
                settings.batch_max_wait_ms / 1000,
                self._labels,
            )
            if settings.batching
            else None
        )
        metrics.record_model(
            artifact.name,
            artifact.version,
            load_seconds,
            library_versions().get("scikit-learn", ""),
            artifact.card.class_distribution,
            self.predictor.runtime,
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> PredictionService:
        """Load the configured model version and build the service.

        Raises:
            ArtifactError: The artifact is missing, tampered with or incompatible.
        """
        started = time.perf_counter()
        artifact = load_artifact(
            settings.resolved_model_root(),
            settings.model_name,
            settings.model_version,
            allow_version_mismatch=settings.allow_version_mismatch,
        )
        return cls(artifact, settings, load_seconds=time.perf_counter() - started)

    # ---- lifecycle -------------------------------------------------------------------------

    def start_draining(self) -> None:
        """Mark the server as shutting down: readiness answers 503 from now on, in every worker."""
        self._draining.value = True

    @property
    def draining(self) -> bool:
        """Whether :meth:`start_draining` was called (in this process or the gunicorn master)."""
        return bool(self._draining.value)

    def readiness(self) -> dict[str, Any]:
        """Body for ``GET /ready``.

        Raises:
            ModelNotReady: (503) the server is draining before shutdown.
        """
        if self.draining:
            raise ModelNotReady("shutting down: not accepting new traffic")
        return {"status": "ready", "model": self.model_ref}

    @staticmethod
    def liveness() -> dict[str, Any]:
        """Body for ``GET /health``: the process answers; the model is not touched."""
        return {"status": "ok"}

    def metadata(self) -> dict[str, Any]:
        """Body for ``GET /metadata``: the model card (schema, classes, metrics, versions).

        ``runtime`` is the runtime serving this process (``scikit-learn`` or ``onnxruntime``, from
        ``ML_API_RUNTIME`` and the card); ``onnx`` is the card's ONNX section (the gate's result,
        the file's hash), ``null`` for versions saved before models were converted.
        """
        card = self.artifact.card
        raw = card.raw  # the blocks exactly as stored, unknown keys inside them included
        return {
            "model": self.model_ref,
            "task": card.task,
            "estimator": card.estimator_class,
            "target": card.target,
            "features": raw.get("features"),
            "classes": raw.get("classes"),
            "metrics": card.metrics,
            "training": card.training,
            "created_at": card.created_at,
            "model_file": raw.get("model_file"),
            "runtime": self.predictor.runtime,
            "onnx": raw.get("onnx"),
            "versions": raw.get("versions"),
            # imported models (ml-api import): where the model and its schema came from
            **{
                k: raw[k] for k in ("metrics_on", "source", "provenance", "import_data") if k in raw
            },
            "limits": self.limits.as_dict(),
        }

    def authenticate(self, path: str, authorization: str | None, api_key: str | None) -> None:
        """Check API keys for a request (no-op when none are configured).

        Raises:
            Unauthorized: (401) see :meth:`ml_api.core.auth.ApiKeyAuth.check`.
        """
        self.auth.check(path, authorization, api_key)

    # ---- inference -------------------------------------------------------------------------

    def predict_http(
        self,
        content_type: str | None,
        content_length: int | None,
        read_body: Callable[[], bytes],
        content_encoding: str | None = None,
    ) -> dict[str, Any]:
        """Answer ``POST /predict`` (see the module docstring for the order of checks).

        Args:
            content_type: The ``Content-Type`` header, or ``None``.
            content_length: The declared ``Content-Length`` in bytes, or ``None`` (chunked).
            read_body: Reads the whole body; the framework enforces ``max_body_bytes`` on it for
                bodies without a length (and raises its own 413, which the adapter maps).
            content_encoding: The ``Content-Encoding`` header, or ``None``: ``gzip`` and
                ``deflate`` bodies are decoded, ``max_body_bytes`` applying to the decoded size.

        Returns:
            ``{"prediction": [...], "probabilities": [...], "model": {...}}``
            (``probabilities`` for classifiers only).

        Raises:
            ServingError: 400, 413, 415, 422 as listed above; 504 past the time limit.
        """
        check_content_type(content_type)
        codings = check_content_encoding(content_encoding)
        limit = self.limits.max_body_bytes
        check_declared_length(content_length, limit)
        with time_limit.deadline(self.limits.request_timeout_seconds):
            payload = parse_json(decode_content(read_body(), codings, limit))
            time_limit.check()
            rows = extract_instances(payload, self.limits.max_instances)
            return self.predict_instances(rows)

    def predict_instances(
        self, rows: Sequence[Sequence[Any] | Mapping[str, Any]], first_index: int = 0
    ) -> dict[str, Any]:
        """Validate and predict instances already out of their envelope; V1 body out.

        Args:
            rows: See :meth:`predict_rows`.
            first_index: See :meth:`predict_rows`.

        Returns:
            The ``POST /predict`` response body (see :meth:`predict_http`).

        Raises:
            InvalidInput: (422) a value breaks the schema or the model refused it.
            RequestTimeout: (504) the request waited past its time limit for the model.
        """
        return encode_v1(self.predict_rows(rows, first_index), self.model_ref)

    def predict_rows(
        self, rows: Sequence[Sequence[Any] | Mapping[str, Any]], first_index: int = 0
    ) -> PredictionResult:
        """Validate and predict instances already out of their envelope; neutral result out.

        Every protocol calls this (V1 through :meth:`predict_instances`, V2, the CSV scorer) and
        encodes the result its own way.

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
        ctx = context.current()
        if ctx is not None:
            ctx.instances = len(rows)
            ctx.model_version = self.artifact.version
        columns = self.validator.validate_columns(rows, first_index=first_index)
        return self.predict_validated(columns, len(rows), first_index)

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
        if self.batcher is None:
            result = self._predict_columns(columns, [n_instances])[0]
        else:
            left = time_limit.remaining()
            try:
                result = self.batcher.submit(columns, n_instances, timeout=left)
            except TimeoutError:
                raise RequestTimeout(
                    f"the request waited longer than {self.limits.request_timeout_seconds:g} s "
                    f"for the model; the server is overloaded, retry later"
                ) from None
        _refuse_overflow(result, first_index)
        metrics.child(metrics.REQUEST_INSTANCES, *self._labels).observe(n_instances)
        if self.predictor.is_classifier:
            for label, count in Counter(map(str, result.labels.tolist())).items():
                metrics.child(metrics.PREDICTIONS, *self._labels, label).inc(count)
        else:
            metrics.child(metrics.PREDICTIONS, *self._labels, "").inc(n_instances)
        if out_of_range is not None:
            result = dataclasses.replace(result, out_of_range=out_of_range)
        return result

    def _check_ranges(self, columns: list[list[Any]], first_index: int) -> OutOfRange | None:
        """Apply the out-of-range policy (``Settings.out_of_range``) to validated columns.

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

    def _predict_columns(
        self, columns: list[list[Any]], sizes: list[int]
    ) -> list[PredictionResult]:
        """One model call on (possibly merged) validated columns, split back per request.

        Args:
            columns: ``n_features`` lists of ``sum(sizes)`` values.
            sizes: Instances of each merged request, in order.

        Returns:
            One :class:`PredictionResult` per request.

        Raises:
            InvalidInput: (422) the model refused the values.
        """
        started = time.perf_counter()
        # Finite but extreme inputs (1e308) can overflow the model's arithmetic: no warning (an
        # error under -W error), the non-finite outputs are refused per request instead.
        with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
            result = self.predictor.predict(columns)
        metrics.child(metrics.PREDICTION_DURATION, *self._labels).observe(
            time.perf_counter() - started
        )
        return result.split(sizes)


def _refuse_overflow(result: PredictionResult, first_index: int) -> None:
    """Refuse instances whose prediction is not finite (their values overflowed the model).

    Raises:
        InvalidInput: (422) naming each such instance (up to ``MAX_DETAILS``).
    """
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
