"""Inputs outside what the model has seen: numeric values beyond the training range.

A model extrapolates silently: ``sqft: 90000`` for a house-price model trained on 600 to 4,500
square feet comes back as a confident price. The model card stores each numeric feature's
training range (``minimum``, ``maximum``; :class:`ml_api.core.model.schema.Feature`), and
:class:`RangeCheck` finds every validated value outside it, vectorised over a request's columns.
What then happens is the operator's policy, ``ML_API_OUT_OF_RANGE``
(:attr:`ml_api.settings.Settings.out_of_range`):

- ``accept``: nothing (no check, no warning, no counting);
- ``warn`` (the default): the prediction is answered, with the values named (V1: a ``warnings``
  key; V2: the response's ``parameters``; the CSV scorer: one summary line on stderr), and
  ``ml_api_out_of_range_total{feature}`` counts them;
- ``reject``: the request is refused with :class:`OutOfRangeInput` (422 in V1, 400 in V2, as its
  schema violations), naming instance, feature, value and range; counted too.

The range is inclusive: the training minimum and maximum themselves are inside. ``null`` (a
missing value the pipeline imputes) is never out of range.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ml_api.core.errors import InvalidInput, Problem
from ml_api.core.model.schema import FeatureKind, FeatureSchema
from ml_api.settings import OutOfRangePolicy

__all__ = ["MAX_WARNINGS", "OutOfRange", "OutOfRangeInput", "OutOfRangePolicy", "RangeCheck"]

MAX_WARNINGS = 50
"""Most values listed in one response or error body (as ``validation.MAX_PROBLEMS``); a last
entry then says how many more there were."""


class OutOfRangeInput(InvalidInput):
    """Values outside the training range under the ``reject`` policy (422; 400 in V2).

    Args:
        report: What was found (at least one value).
    """

    def __init__(self, report: OutOfRange) -> None:
        first = report.problems(1)[0]
        n = report.total
        head = f"instance {first.instance}, field {first.field!r}: {first.problem}"
        message = (
            f"invalid instance: {head}"
            if n == 1
            else f"{n} values outside the training range (listed in details); first: {head}"
        )
        super().__init__(f"{message} (ML_API_OUT_OF_RANGE=reject)", report.problems())
        self.report = report


@dataclass(frozen=True, slots=True, eq=False)
class OutOfRange:
    """The values of one batch outside the training range, in instance order.

    Attributes:
        instances: Shape ``(n_found,)``, the instance index of each value (``first_index``
            added: 0-based for HTTP, 1-based data rows for the CSV scorer).
        fields: Shape ``(n_found,)``, the feature name of each value.
        values: Shape ``(n_found,)``, ``float64``, the values as validated.
        minimums: Shape ``(n_found,)``, the feature's training minimum for each value.
        maximums: Shape ``(n_found,)``, the feature's training maximum for each value.
        counts: Feature name to how many of its values were out of range (only features with
            at least one), in schema order.
    """

    instances: np.ndarray
    fields: np.ndarray
    values: np.ndarray
    minimums: np.ndarray
    maximums: np.ndarray
    counts: dict[str, int]

    @property
    def total(self) -> int:
        """How many values were out of range."""
        return len(self.instances)

    def problems(self, limit: int = MAX_WARNINGS) -> list[Problem]:
        """Name the first ``limit`` values, each with instance, feature, value and range.

        Args:
            limit: Most values named.

        Returns:
            At most ``limit`` problems such as ``90000 is outside the training range 600 to
            4500``.
        """
        n = min(limit, self.total)
        return [
            Problem(
                f"{_number(self.values[k])} is outside the training range "
                f"{_number(self.minimums[k])} to {_number(self.maximums[k])}",
                instance=int(self.instances[k]),
                field=str(self.fields[k]),
            )
            for k in range(n)
        ]

    def warnings(self, limit: int = MAX_WARNINGS) -> list[dict[str, Any]]:
        """The JSON list of V1's ``warnings`` key (and V2's ``out_of_range`` parameter).

        Args:
            limit: Most values named; past it, one more entry (``instance`` and ``field`` null)
                says how many were left out.

        Returns:
            ``[{"instance": int, "field": str, "problem": str}, ...]``, the shape of an error's
            ``details``.
        """
        out = [p.as_dict() for p in self.problems(limit)]
        if self.total > limit:
            out.append(
                Problem(
                    f"{self.total - limit} more values outside the training range not listed "
                    f"({self.total} in all)"
                ).as_dict()
            )
        return out


SMALL_REQUEST_ROWS = 8
"""Requests of at most this many instances are first checked value by value (no arrays)."""


class RangeCheck:
    """The training ranges of a schema's numeric features, as arrays built once.

    Args:
        schema: The model's features; numeric ones without a recorded range are not checked.
    """

    def __init__(self, schema: FeatureSchema) -> None:
        checked = [
            (j, f)
            for j, f in enumerate(schema.features)
            if f.kind is FeatureKind.NUMERIC and f.minimum is not None and f.maximum is not None
        ]
        self.positions = [j for j, _ in checked]
        self.names = np.array([f.name for _, f in checked], dtype=object)
        self.minimums = np.array([f.minimum for _, f in checked], dtype="float64")
        self.maximums = np.array([f.maximum for _, f in checked], dtype="float64")
        self._bounds = [
            (j, float(f.minimum), float(f.maximum))  # type: ignore[arg-type]  # checked above
            for j, f in checked
        ]

    def find(self, columns: Sequence[Sequence[Any]], first_index: int = 0) -> OutOfRange | None:
        """Find the values outside the training range, in one vectorised pass.

        Args:
            columns: ``n_features`` validated columns of ``n_instances`` values
                (``Validator.validate_columns``): numeric columns hold floats, ``NaN`` for null.
            first_index: Added to each instance index (1 for CSV data rows).

        Returns:
            The values found, or ``None`` when every value is inside its range.
        """
        if not self.positions or not columns or not len(columns[0]):
            return None
        if len(columns[0]) <= SMALL_REQUEST_ROWS and self._all_inside(columns):
            return None
        matrix = np.asarray([columns[j] for j in self.positions], dtype="float64")
        lo, hi = self.minimums[:, None], self.maximums[:, None]
        outside = (matrix < lo) | (matrix > hi)  # NaN (null) compares False: never outside
        if not outside.any():
            return None
        rows, feats = np.nonzero(outside.T)  # instance-major: instance 0's features first
        per_feature = outside.sum(axis=1)
        return OutOfRange(
            instances=rows + first_index,
            fields=self.names[feats],
            values=matrix[feats, rows],
            minimums=self.minimums[feats],
            maximums=self.maximums[feats],
            counts={
                str(name): int(c) for name, c in zip(self.names, per_feature, strict=True) if c
            },
        )

    def _all_inside(self, columns: Sequence[Sequence[Any]]) -> bool:
        """Whether every checked value is inside its range (or null), compared one by one.

        For a few rows this is faster than building arrays; it decides only "all inside", and
        anything else takes the vectorised path, which alone reports. ``NaN`` compares false
        both ways, so a null is never outside, as there.
        """
        try:
            for j, lo, hi in self._bounds:
                for value in columns[j]:
                    if value < lo or value > hi:
                        return False
        except TypeError:  # not a number (None, say): the vectorised path decides
            return False
        return True


def _number(value: float) -> str:
    """A value as a client wrote it: ``90000`` rather than ``90000.0``; ``%g`` past 1e16."""
    value = float(value)
    if value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    return repr(value) if abs(value) < 1e16 else f"{value:g}"
