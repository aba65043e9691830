"""Input drift as metrics: every served instance counted into its reference bin, per feature.

The model version's reference profile (:mod:`ml_api.core.model.profile`) fixes, per feature, a
closed set of bins and the share of the training rows in each. :class:`DriftCounter` puts every
instance a request predicted into its bin of every profiled feature and publishes the counts as
``ml_api_feature_values_total{model_name, model_version, feature, bin}`` beside the reference
shares ``ml_api_feature_reference_ratio``; Prometheus' recording rules then compute each
feature's population stability index over a window (``deploy/monitoring/prometheusrule.yaml``)
and ``MlApiFeatureDrift`` fires above 0.25.

Cheap on the request path: a request's columns are binned against the edges fixed at load time
(``bisect`` or a dict lookup for a few instances; for more, the numeric columns converted to one
float matrix at once and a ``numpy.searchsorted`` pass per feature, the categorical columns
counted by distinct value before any look-up) and counted per request, so each bin a request
reached takes one counter write (a one-instance request: one per feature), never one per
instance. The counters are ordinary multiprocess counters, written before the response leaves:
exact across gunicorn workers and pods, and in ``/metrics`` as soon as the answer is.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from ml_api.core import metrics
from ml_api.core.model.profile import FeatureProfile, Profile
from ml_api.core.model.schema import FeatureKind, FeatureSchema
from ml_api.core.runtimes.predictor import PredictionResult

__all__ = ["SMALL_REQUEST", "DriftCounter"]

SMALL_REQUEST = 16
"""Requests of at most this many instances are binned in plain Python (``bisect``, a dict), larger
ones with numpy: building arrays costs more than it saves for a few values."""


class DriftCounter:
    """Counts served instances into the reference profile's bins, per feature.

    Created once per served model version (before gunicorn forks); it publishes the reference
    shares and creates every ``(feature, bin)`` series at 0, so a bin no instance reached is a
    0 in Prometheus, not a missing series.

    Args:
        profile: The model version's reference profile.
        schema: The model's feature schema (the columns' order).
        model: ``(model_name, model_version)`` metric labels.
    """

    def __init__(
        self,
        profile: Profile,
        schema: FeatureSchema,
        model: tuple[str, str],
    ) -> None:
        names = list(schema.names)
        self._profiled: list[tuple[int, FeatureProfile]] = [
            (names.index(f.name), f) for f in profile.features if f.name in names
        ]
        sizes = [len(f.bins) for _, f in self._profiled]
        offsets = np.cumsum([0, *sizes[:-1]]).tolist()
        self._plan = list(zip(self._profiled, offsets, strict=True))
        self._numeric = [p for p in self._plan if p[0][1].kind == FeatureKind.NUMERIC]
        self._categorical = [p for p in self._plan if p[0][1].kind != FeatureKind.NUMERIC]
        # each numeric feature's (MISSING) series, a column to broadcast over its row of values
        self._numeric_missing = np.array(
            [[off + f.missing_bin] for (_, f), off in self._numeric], dtype=np.intp
        ).reshape(-1, 1)
        self._children = [
            metrics.child(metrics.FEATURE_VALUES, *model, f.name, b)
            for _, f in self._profiled
            for b in f.bins
        ]
        for _, f in self._profiled:
            for b, share in zip(f.bins, f.shares, strict=True):
                metrics.FEATURE_REFERENCE_RATIO.labels(*model, f.name, b).set(share)

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
        """Count one request's instances into their bins: one counter write per bin reached.

        Args:
            columns: ``n_features`` validated columns of ``n_instances`` values, in schema order.
            n_instances: Instances in ``columns``.
            result: The answers (not used: the inputs drift, the predictions have their own
                ``ml_api_predictions_total``).
        """
        if not n_instances or not self._profiled:
            return
        children = self._children
        if n_instances == 1:  # one value per feature: one bin each, no counting needed
            for (j, f), off in self._plan:
                children[off + f.bin_of(columns[j][0])].inc()
            return
        if n_instances <= SMALL_REQUEST:
            hits = Counter(
                off + f.bin_of(value) for (j, f), off in self._plan for value in columns[j]
            )
            for i, count in hits.items():
                children[i].inc(count)
            return
        counts = self._count(columns)
        for i in np.flatnonzero(counts).tolist():
            children[i].inc(int(counts[i]))

    def _count(self, columns: Sequence[Sequence[Any]]) -> np.ndarray:
        """Instances per bin of a request of more than :data:`SMALL_REQUEST` instances.

        The numeric columns become one float matrix in one conversion and are binned with one
        ``searchsorted`` per feature; a categorical column is counted by distinct value first
        (``collections.Counter``, in C), then each distinct value is looked up once. The same
        bins as :meth:`FeatureProfile.assign` per value (equal values share a dict entry there
        too, and a missing value is never equal to a category).

        Returns:
            Shape ``(n_bins_total,)``: instances per ``(feature, bin)`` series, in series order.
        """
        counts = np.zeros(len(self._children), dtype=np.int64)
        if self._numeric:
            x = np.asarray([columns[j] for (j, _), _ in self._numeric], dtype="float64")
            found = np.empty(x.shape, dtype=np.intp)
            for row, ((_, f), off) in enumerate(self._numeric):
                found[row] = f.edge_array.searchsorted(x[row], side="right") + off
            np.copyto(found, self._numeric_missing, where=np.isnan(x))
            counts += np.bincount(found.ravel(), minlength=len(counts))
        for (j, f), off in self._categorical:
            for value, count in Counter(columns[j]).items():
                counts[off + f.bin_of(value)] += count
        return counts
