"""Input drift as metrics: every served instance counted into its reference bin, per feature.

The model version's reference profile (:mod:`ml_api.core.model.profile`) fixes, per feature, a
closed set of bins and the share of the training rows in each. :class:`DriftCounter` puts every
instance a request predicted into its bin of every profiled feature and publishes the counts as
``ml_api_feature_values_total{model_name, model_version, feature, bin}`` beside the reference
shares ``ml_api_feature_reference_ratio``; Prometheus' recording rules then compute each
feature's population stability index over a window (``deploy/monitoring/prometheusrule.yaml``)
and ``MlApiFeatureDrift`` fires above 0.25.

Cheap on the request path: a request's columns are binned in one vectorised pass per feature
(``numpy.searchsorted`` against the edges fixed at load time) and added into one in-process
array; a background thread per process writes the accumulated counts into the Prometheus
counters once a second (:data:`FLUSH_SECONDS`), so a request makes no metric write of its own.
The counters are ordinary multiprocess counters: exact across gunicorn workers and pods, at most
one flush interval late (a worker's last interval is written when it exits).
"""

from __future__ import annotations

import atexit
import os
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from ml_api.core import metrics
from ml_api.core.model.profile import FeatureProfile, Profile
from ml_api.core.model.schema import FeatureSchema
from ml_api.core.runtimes.predictor import PredictionResult

__all__ = ["FLUSH_SECONDS", "DriftCounter"]

FLUSH_SECONDS = 1.0
"""How often a process writes its accumulated bin counts into the counters, in seconds (a
Prometheus scrape interval is 15-30 s, so the counters are never visibly late)."""


class DriftCounter:
    """Counts served instances into the reference profile's bins, per feature.

    Created once per served model version (before gunicorn forks); it publishes the reference
    shares and creates every ``(feature, bin)`` series at 0, so a bin no instance reached is a
    0 in Prometheus, not a missing series.

    Args:
        profile: The model version's reference profile.
        schema: The model's feature schema (the columns' order).
        model: ``(model_name, model_version)`` metric labels.
        flush_seconds: How often the counts are written to the counters (:data:`FLUSH_SECONDS`).
    """

    def __init__(
        self,
        profile: Profile,
        schema: FeatureSchema,
        model: tuple[str, str],
        flush_seconds: float = FLUSH_SECONDS,
    ) -> None:
        names = list(schema.names)
        self._profiled: list[tuple[int, FeatureProfile]] = [
            (names.index(f.name), f) for f in profile.features if f.name in names
        ]
        sizes = [len(f.bins) for _, f in self._profiled]
        self._offsets = np.cumsum([0, *sizes[:-1]]).astype(np.intp)
        self._children = [
            metrics.FEATURE_VALUES.labels(*model, f.name, b)
            for _, f in self._profiled
            for b in f.bins
        ]
        for _, f in self._profiled:
            for b, share in zip(f.bins, f.shares, strict=True):
                metrics.FEATURE_REFERENCE_RATIO.labels(*model, f.name, b).set(share)
        self._pending = np.zeros(sum(sizes), dtype=np.int64)
        self._lock = threading.Lock()
        self._flush_seconds = flush_seconds
        self._pid: int | None = None

    @property
    def features(self) -> list[str]:
        """The features counted, in schema order."""
        return [f.name for _, f in self._profiled]

    def observe(
        self,
        columns: Sequence[Sequence[Any]],
        n_instances: int,
        result: PredictionResult | None = None,
    ) -> None:
        """Count one request's instances into their bins (no metric write here).

        Args:
            columns: ``n_features`` validated columns of ``n_instances`` values, in schema order.
            n_instances: Instances in ``columns``.
            result: The answers (not used: the inputs drift, the predictions have their own
                ``ml_api_predictions_total``).
        """
        if not n_instances or not self._profiled:
            return
        indices = np.concatenate(
            [
                f.assign(columns[j]) + off
                for (j, f), off in zip(self._profiled, self._offsets, strict=True)
            ]
        )
        counts = np.bincount(indices, minlength=len(self._pending))
        with self._lock:
            self._pending += counts
        if self._pid != os.getpid():
            self._start_flushing()

    def flush(self) -> None:
        """Write the counts accumulated since the last flush into the counters."""
        with self._lock:
            pending = self._pending
            if not pending.any():
                return
            self._pending = np.zeros_like(pending)
        for i in np.flatnonzero(pending).tolist():
            self._children[i].inc(int(pending[i]))

    def _start_flushing(self) -> None:
        """Start this process's flushing thread (once per process: gunicorn forks workers)."""
        with self._lock:
            if self._pid == os.getpid():
                return
            self._pid = os.getpid()
        thread = threading.Thread(target=self._flush_forever, name="ml-api-drift", daemon=True)
        thread.start()
        atexit.register(self.flush)

    def _flush_forever(self) -> None:
        stop = threading.Event()
        while not stop.wait(self._flush_seconds):
            self.flush()
