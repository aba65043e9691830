"""The reference profile: what the training (or import) data looked like, feature by feature.

Drift is a change in the inputs' distribution against what the model learnt from. To see it, a
model version stores a small *profile* of its training data beside the model (``profile.json``,
hashed in the card's ``files`` and verified on load like the charts): per feature a fixed set of
bins and the share of the training rows in each bin, and the same for the model's predictions.

- **Numeric** features: :data:`NUMERIC_BINS` quantile bins (deciles) of the non-missing training
  values, so each bin held about a tenth of the rows; the bin of a value is found with
  :func:`numpy.searchsorted` against the stored interior edges (``edges[i-1] <= x < edges[i]``),
  the first and last bins are open-ended. Repeated quantiles (a feature with few distinct
  values) collapse into fewer bins.
- **Categorical** features: one bin per category, for the :data:`MAX_CATEGORIES` most frequent;
  the rest, and any value the reference data did not hold (a category of the model's encoder
  absent from the import data), share :data:`OTHER`.
- Every feature has a :data:`MISSING` bin (``null``, which the pipeline imputes).

The bins are the label values of ``ml_api_feature_values_total{feature, bin}`` (a closed set:
features x bins, fixed when the version is written), so serving counts each instance into them
(:mod:`ml_api.core.drift`) and Prometheus computes the drift score against the stored shares;
``ml-api drift`` computes the same score from files. The score is the population stability index
(:func:`psi`); why PSI: ``docs/monitoring.md``.

Bounded: at most :data:`MAX_FEATURES` features are profiled (the first, in schema order), each
with at most ``max(NUMERIC_BINS + 1, MAX_CATEGORIES + 2)`` bins: a few kilobytes of JSON.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ml_api.core.model.integrity import ArtifactError
from ml_api.core.model.schema import FeatureKind, FeatureSchema

__all__ = [
    "EPSILON",
    "MAX_CATEGORIES",
    "MAX_FEATURES",
    "MISSING",
    "NUMERIC_BINS",
    "OTHER",
    "PREDICTION",
    "PROFILE_FILE",
    "FeatureProfile",
    "Profile",
    "ProfileError",
    "build_profile",
    "load_profile",
    "psi",
]

PROFILE_FILE = "profile.json"
"""The profile's file name in the version directory (listed, with its sha256, in ``files``)."""

FORMAT = 1
"""The profile's format version; a reader refuses a format it does not know."""

NUMERIC_BINS = 10
"""Quantile bins per numeric feature (deciles): ten equally likely bins make PSI's usual
thresholds (0.1 moderate, 0.25 large) meaningful, and stay few enough for bounded series."""

MAX_CATEGORIES = 20
"""Categories with a bin of their own, the most frequent in training; the rest share ``OTHER``."""

MAX_FEATURES = 100
"""Most features profiled (the first ones in schema order): features x bins bounds the series."""

MISSING = "(missing)"
"""The bin of a missing value (``null``; ``NaN`` in validated columns)."""

OTHER = "(other)"
"""The bin of a categorical value without a bin of its own (past :data:`MAX_CATEGORIES`)."""

PREDICTION = "(prediction)"
"""The name of the predictions' profile (its bins are classes, or quantiles for regressors)."""

EPSILON = 1e-4
"""Smallest share used in :func:`psi` (an empty bin would make the logarithm infinite); the
recording rules clamp with the same value."""


class ProfileError(ValueError):
    """A profile file that cannot be read: not JSON, or a format this version does not know."""


@dataclass(frozen=True)
class FeatureProfile:
    """The reference distribution of one feature over its bins.

    Attributes:
        name: The feature (or :data:`PREDICTION`).
        kind: ``"numeric"`` or ``"categorical"``.
        bins: The bin labels, ``n_bins`` of them: ``"00"``, ``"01"``... for numeric value bins,
            the category text for categorical ones, then :data:`OTHER` (categorical) and
            :data:`MISSING` (always last).
        shares: Shape ``(n_bins,)``, the share of the reference rows in each bin (sums to 1).
        edges: Numeric only: the ``n_value_bins - 1`` interior edges, increasing.
        categories: Categorical only: the values with a bin of their own (text), in bin order.
        codes: Categorical over numeric codes only: the code of each of ``categories``.
    """

    name: str
    kind: str
    bins: tuple[str, ...]
    shares: tuple[float, ...]
    edges: tuple[float, ...] = ()
    categories: tuple[str, ...] = ()
    codes: tuple[float, ...] = ()
    _lookup: dict[Any, int] = field(default_factory=dict, init=False, repr=False, compare=False)
    _edges: np.ndarray = field(init=False, repr=False, compare=False)
    _edge_list: list[float] = field(default_factory=list, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        lookup: dict[Any, int] = {c: i for i, c in enumerate(self.categories)}
        lookup.update({c: i for i, c in enumerate(self.codes)})
        object.__setattr__(self, "_lookup", lookup)
        object.__setattr__(self, "_edges", np.asarray(self.edges, dtype="float64"))
        object.__setattr__(self, "_edge_list", list(self.edges))

    @property
    def edge_array(self) -> np.ndarray:
        """:attr:`edges` as a float64 array, shape ``(n_value_bins - 1,)`` (made once)."""
        return self._edges

    @property
    def missing_bin(self) -> int:
        """Index of :data:`MISSING` (the last bin)."""
        return len(self.bins) - 1

    def assign(self, values: Sequence[Any] | np.ndarray) -> np.ndarray:
        """Return the bin index of each value.

        Args:
            values: Shape ``(n,)``: floats (``NaN`` for null) for a numeric feature; category
                text, numeric codes or ``NaN``/``None`` for a categorical one (validated
                columns, or a training frame's column).

        Returns:
            Shape ``(n,)``, ``intp``, each in ``0 .. n_bins - 1``.
        """
        if self.kind == FeatureKind.NUMERIC:
            x = np.asarray(values, dtype="float64")
            found = np.searchsorted(self._edges, x, side="right")
            found[np.isnan(x)] = self.missing_bin
            return found
        other = self.missing_bin - 1
        get = self._lookup.get
        out = []
        for v in values.tolist() if isinstance(values, np.ndarray) else values:
            i = get(v)
            out.append(i if i is not None else self.missing_bin if _is_missing(v) else other)
        return np.asarray(out, dtype=np.intp)

    def bin_of(self, value: Any) -> int:
        """The bin index of one value, as :meth:`assign` finds it, without numpy.

        For the few values of a small request: a ``bisect`` on the edges (``bisect_right`` is
        ``searchsorted(side="right")``) or a dict lookup costs a fraction of a microsecond, where
        building arrays costs several.
        """
        if self.kind == FeatureKind.NUMERIC:
            if value != value:  # NaN: null
                return self.missing_bin
            return bisect.bisect_right(self._edge_list, value)
        i = self._lookup.get(value)
        if i is not None:
            return i
        return self.missing_bin if _is_missing(value) else self.missing_bin - 1

    def knows(self, value: Any) -> bool:
        """Whether a categorical value has a bin of its own (else it counts as :data:`OTHER`)."""
        try:
            return value in self._lookup
        except TypeError:  # unhashable
            return False

    def counts(self, values: Sequence[Any] | np.ndarray) -> np.ndarray:
        """Return how many values fall in each bin: shape ``(n_bins,)``, ``int64``."""
        return np.bincount(self.assign(values), minlength=len(self.bins)).astype("int64")

    def bin_text(self, index: int) -> str:
        """Say what a bin holds, for people: ``"< 34.6"``, ``"34.6 to 39.2"``, ``"Biscoe"``."""
        if self.kind != FeatureKind.NUMERIC or index == self.missing_bin:
            return self.bins[index]
        if not self.edges:
            return "any value"
        if index == 0:
            return f"< {self.edges[0]:.6g}"
        if index == len(self.edges):
            return f">= {self.edges[-1]:.6g}"
        return f"{self.edges[index - 1]:.6g} to {self.edges[index]:.6g}"

    def to_dict(self) -> dict[str, Any]:
        """The JSON form stored in ``profile.json``."""
        out: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind,
            "bins": list(self.bins),
            "shares": list(self.shares),
        }
        if self.kind == FeatureKind.NUMERIC:
            out["edges"] = list(self.edges)
        else:
            out["categories"] = list(self.categories)
            if self.codes:
                out["codes"] = list(self.codes)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureProfile:
        """Read the JSON form; ``KeyError``/``TypeError``/``ValueError`` when malformed."""
        bins = tuple(str(b) for b in data["bins"])
        shares = tuple(float(s) for s in data["shares"])
        kind = str(data["kind"])
        if len(bins) != len(shares) or not bins or bins[-1] != MISSING:
            raise ValueError(f"feature {data['name']!r}: bins and shares do not match")
        if kind not in (FeatureKind.NUMERIC, FeatureKind.CATEGORICAL):
            raise ValueError(f"feature {data['name']!r}: unknown kind {kind!r}")
        edges = tuple(float(e) for e in data.get("edges", ()))
        if kind == FeatureKind.NUMERIC and len(edges) != len(bins) - 2:
            raise ValueError(f"feature {data['name']!r}: {len(edges)} edges for {len(bins)} bins")
        if kind == FeatureKind.CATEGORICAL and bins[-2:-1] != (OTHER,):
            raise ValueError(f"feature {data['name']!r}: no {OTHER} bin")
        return cls(
            name=str(data["name"]),
            kind=kind,
            bins=bins,
            shares=shares,
            edges=edges,
            categories=tuple(str(c) for c in data.get("categories", ())),
            codes=tuple(float(c) for c in data.get("codes", ())),
        )


@dataclass(frozen=True)
class Profile:
    """The reference profile of a model version.

    Attributes:
        rows: Reference rows the shares were computed on.
        source: ``"training"`` (``ml-api train``: the whole training file) or ``"import"`` (the
            data given to ``ml-api import``).
        features: One :class:`FeatureProfile` per profiled feature, in schema order.
        prediction: The predictions' profile (classes, or quantile bins of a regressor's
            values), or ``None``.
        left_out: Features not profiled (past :data:`MAX_FEATURES`).
    """

    rows: int
    source: str
    features: tuple[FeatureProfile, ...]
    prediction: FeatureProfile | None = None
    left_out: tuple[str, ...] = ()

    def feature(self, name: str) -> FeatureProfile:
        """The profile of a feature by name; ``KeyError`` when not profiled."""
        for f in self.features:
            if f.name == name:
                return f
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form of ``profile.json``."""
        return {
            "format": FORMAT,
            "rows": self.rows,
            "source": self.source,
            "numeric_bins": NUMERIC_BINS,
            "features": [f.to_dict() for f in self.features],
            "prediction": self.prediction.to_dict() if self.prediction else None,
            "left_out": list(self.left_out),
        }

    def to_bytes(self) -> bytes:
        """``profile.json``'s bytes (strict JSON, one trailing newline)."""
        return (json.dumps(self.to_dict(), indent=1, allow_nan=False) + "\n").encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Profile:
        """Read ``profile.json``.

        Raises:
            ProfileError: Not JSON, another format version, or a malformed feature entry.
        """
        try:
            raw = json.loads(data)
            if raw.get("format") != FORMAT:
                raise ProfileError(f"profile format {raw.get('format')!r} (this reads {FORMAT})")
            prediction = raw.get("prediction")
            return cls(
                rows=int(raw["rows"]),
                source=str(raw["source"]),
                features=tuple(FeatureProfile.from_dict(f) for f in raw["features"]),
                prediction=FeatureProfile.from_dict(prediction) if prediction else None,
                left_out=tuple(str(n) for n in raw.get("left_out", ())),
            )
        except ProfileError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ProfileError(f"unreadable profile: {exc!r}") from None


def build_profile(
    schema: FeatureSchema,
    columns: Mapping[str, Any] | pd.DataFrame,
    predictions: Sequence[Any] | np.ndarray | None,
    *,
    classifier: bool,
    source: str,
) -> Profile:
    """Profile reference data: bins and shares per feature and for the predictions.

    Args:
        schema: The model's features.
        columns: Feature name to its ``n_rows`` reference values (a DataFrame works): numbers
            (``NaN`` for missing) for numeric features; text or codes for categorical ones.
        predictions: The model's ``n_rows`` predictions on the same rows, or ``None``.
        classifier: Whether predictions are class labels (else numbers, binned by quantiles).
        source: ``"training"`` or ``"import"``.

    Returns:
        The profile (at most :data:`MAX_FEATURES` features).

    Raises:
        ValueError: No reference row.
    """
    kept = schema.features[:MAX_FEATURES]
    n_rows = len(columns[kept[0].name]) if kept else 0
    if n_rows == 0:
        raise ValueError("a profile needs at least one reference row")
    features = tuple(
        _numeric(f.name, columns[f.name])
        if f.kind == FeatureKind.NUMERIC
        else _categorical(f.name, columns[f.name], f.codes)
        for f in kept
    )
    prediction = None
    if predictions is not None:
        if classifier:
            prediction = _categorical(PREDICTION, [str(p) for p in np.asarray(predictions)], None)
        else:
            prediction = _numeric(PREDICTION, predictions)
    return Profile(
        rows=n_rows,
        source=source,
        features=features,
        prediction=prediction,
        left_out=tuple(f.name for f in schema.features[MAX_FEATURES:]),
    )


def load_profile(card: Mapping[str, Any], version_dir: Path) -> Profile | None:
    """Read a version's reference profile, if its card lists one.

    Args:
        card: The ``metadata.json`` content (its ``files`` lists ``profile.json`` with its
            sha256 when the version was saved with a profile).
        version_dir: The version directory.

    Returns:
        The profile, or ``None`` when the card lists none (a version saved before profiles).

    Raises:
        ArtifactError: The file is missing or does not match its sha256 in the card.
        ProfileError: The file is not a profile this version of ml-api reads.
    """
    entry = (card.get("files") or {}).get(PROFILE_FILE)
    if entry is None:
        return None
    path = version_dir / PROFILE_FILE
    try:
        data = path.read_bytes()
    except OSError:
        raise ArtifactError(f"artifact file missing: {path}") from None
    if hashlib.sha256(data).hexdigest() != entry.get("sha256"):
        raise ArtifactError(
            f"artifact file {path} does not match its card: refusing to load a modified version"
        )
    return Profile.from_bytes(data)


def psi(reference: Sequence[float] | np.ndarray, counts: Sequence[float] | np.ndarray) -> float:
    """The population stability index of observed bin counts against reference shares.

    ``PSI = sum_i (p_i - q_i) * ln(p_i / q_i)`` with ``p`` the observed shares and ``q`` the
    reference shares, each floored at :data:`EPSILON` (an empty bin would be infinite). Symmetric
    in ``p`` and ``q``; 0 when they are equal; usual reading: below 0.1 stable, 0.1 to 0.25
    moderate, above 0.25 a large shift (the alert's threshold).

    Args:
        reference: Shape ``(n_bins,)``, reference shares (sum to 1).
        counts: Shape ``(n_bins,)``, observed counts (or shares).

    Returns:
        The index (>= 0); ``nan`` when nothing was observed.
    """
    c = np.asarray(counts, dtype="float64")
    total = c.sum()
    if total <= 0:
        return math.nan
    p = np.maximum(c / total, EPSILON)
    q = np.maximum(np.asarray(reference, dtype="float64"), EPSILON)
    return float(np.sum((p - q) * np.log(p / q)))


def _is_missing(value: Any) -> bool:
    """``None``, ``NaN`` and pandas' ``NA``/``NaT`` (whose comparison is not a bool)."""
    if value is None:
        return True
    if isinstance(value, str):
        return False
    try:
        return bool(value != value)
    except (TypeError, ValueError):
        return True


def _numeric(name: str, values: Iterable[Any]) -> FeatureProfile:
    x = np.asarray(list(values) if not hasattr(values, "__array__") else values, dtype="float64")
    present = x[~np.isnan(x)]
    if len(present):
        quantiles = np.quantile(present, np.arange(1, NUMERIC_BINS) / NUMERIC_BINS)
        # Repeated quantiles collapse; an edge at the minimum would leave the first bin empty.
        edges = tuple(float(e) for e in np.unique(quantiles) if e > present.min())
    else:
        edges = ()
    bins = (*(f"{i:02d}" for i in range(len(edges) + 1)), MISSING)
    profile = FeatureProfile(name, FeatureKind.NUMERIC, bins, (0.0,) * len(bins), edges=edges)
    return _with_shares(profile, x)


def _categorical(
    name: str, values: Iterable[Any], codes: Sequence[int | float] | None
) -> FeatureProfile:
    seen = list(values.tolist() if isinstance(values, np.ndarray) else values)
    frequency = Counter(v for v in seen if not _is_missing(v))
    ranked = sorted(frequency.items(), key=lambda kv: (-kv[1], str(kv[0])))
    top = [v for v, _ in ranked[:MAX_CATEGORIES]]
    categories = tuple(_text(v) for v in top)
    coded = tuple(float(v) for v in top) if codes else ()
    bins = (*categories, OTHER, MISSING)
    profile = FeatureProfile(
        name,
        FeatureKind.CATEGORICAL,
        bins,
        (0.0,) * len(bins),
        categories=categories,
        codes=coded,
    )
    return _with_shares(profile, seen)


def _with_shares(profile: FeatureProfile, values: Sequence[Any] | np.ndarray) -> FeatureProfile:
    counts = profile.counts(values)
    shares = tuple(float(s) for s in counts / max(int(counts.sum()), 1))
    return FeatureProfile(
        profile.name,
        profile.kind,
        profile.bins,
        shares,
        edges=profile.edges,
        categories=profile.categories,
        codes=profile.codes,
    )


def _text(value: Any) -> str:
    """A category's text: integral floats as integers (a code ``2134.0`` is ``"2134"``)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
