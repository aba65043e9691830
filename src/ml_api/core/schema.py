"""The model's feature schema and the validation of instances against it.

The schema is learnt from the training data (:meth:`FeatureSchema.infer`), stored in the artifact's
``metadata.json`` and used at inference time to turn JSON instances into a
``(n_instances, n_features)`` :class:`pandas.DataFrame` in training column order.

Validation policy (the same for HTTP and the batch CLI):

- numeric features take JSON numbers only: booleans and numeric strings (``"42"``) are refused, as
  are non-finite values (``1e400`` overflows to infinity and is refused);
- categorical features take strings seen in training; an unseen category is refused with the list
  of allowed ones; a feature that held booleans in training (categories ``"False"``/``"True"``)
  also takes JSON ``true``/``false``;
- ``null`` is accepted only for features that had missing values in training (the fitted pipeline
  imputes them); a missing key is an error, not an implicit null;
- named instances may not carry fields the model does not know;
- positional instances must carry exactly ``n_features`` values, in schema order.

Every problem found is reported (up to :data:`MAX_PROBLEMS`), each naming its instance and field.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from ml_api.core.errors import InvalidInput, Problem, quote

MAX_PROBLEMS = 50
"""Most problems listed in one error response, so a bad 1,000-row batch gets a bounded body."""

MAX_CATEGORIES_SHOWN = 20
"""Most allowed categories quoted in one problem message."""

BOOLEAN_CATEGORIES = frozenset({"False", "True"})
"""The categories of a column that held booleans in training (``str`` of each value)."""

Kind = Literal["numeric", "categorical"]
_MISSING = object()


@dataclass(frozen=True, slots=True)
class Feature:
    """One input column of the model.

    Attributes:
        name: Column name in the training data.
        kind: ``"numeric"`` (sent as a JSON number) or ``"categorical"`` (sent as a string).
        dtype: The pandas dtype the column had in training, for documentation (``"float64"``).
        nullable: Whether the training data had missing values here (then ``null`` is accepted).
        categories: Sorted categories seen in training (categorical features only).
        minimum: Smallest value seen in training (numeric features only), informative.
        maximum: Largest value seen in training (numeric features only), informative.
    """

    name: str
    kind: Kind
    dtype: str
    nullable: bool
    categories: tuple[str, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None

    @property
    def is_boolean(self) -> bool:
        """Whether the column held booleans in training (categories ``False``/``True`` only).

        Such a feature also takes JSON ``true``/``false`` (and V2 ``BOOL``), read as the strings
        ``"True"``/``"False"`` the training data became; a CSV reads it as text the same way.
        """
        return (
            self.kind == "categorical"
            and bool(self.categories)
            and set(self.categories or ()) <= BOOLEAN_CATEGORIES
        )

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form stored in ``metadata.json``."""
        d: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind,
            "dtype": self.dtype,
            "nullable": self.nullable,
        }
        if self.kind == "categorical":
            d["categories"] = list(self.categories or ())
        else:
            d["minimum"] = self.minimum
            d["maximum"] = self.maximum
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Feature:
        """Build from the JSON form written by :meth:`to_dict`.

        Raises:
            KeyError: A required key is missing.
            ValueError: ``kind`` is not ``numeric`` or ``categorical``.
        """
        kind = d["kind"]
        if kind not in ("numeric", "categorical"):
            raise ValueError(f"feature {d.get('name')!r}: unknown kind {kind!r}")
        cats = d.get("categories")
        return cls(
            name=str(d["name"]),
            kind=kind,
            dtype=str(d.get("dtype", "")),
            nullable=bool(d["nullable"]),
            categories=tuple(str(c) for c in cats) if cats is not None else None,
            minimum=d.get("minimum"),
            maximum=d.get("maximum"),
        )


class FeatureSchema:
    """The ordered input features of a model, and the validator built from them.

    Args:
        features: The features in training column order.

    Raises:
        ValueError: No features, or two features share a name.
    """

    def __init__(self, features: Sequence[Feature]) -> None:
        if not features:
            raise ValueError("a feature schema needs at least one feature")
        self.features: tuple[Feature, ...] = tuple(features)
        self.names: tuple[str, ...] = tuple(f.name for f in self.features)
        if len(set(self.names)) != len(self.names):
            raise ValueError(f"duplicate feature names in {self.names}")
        self._by_name = {f.name: f for f in self.features}
        self._allowed = {
            f.name: frozenset(f.categories or ()) for f in self.features if f.kind == "categorical"
        }

    def __len__(self) -> int:
        return len(self.features)

    @classmethod
    def infer(cls, frame: pd.DataFrame) -> FeatureSchema:
        """Learn the schema from training features.

        Numeric pandas dtypes (booleans excluded) become numeric features; everything else
        (strings, booleans, categoricals) becomes categorical, with its values as strings.

        Args:
            frame: Training features, shape ``(n_samples, n_features)``.

        Returns:
            The schema, columns in ``frame``'s order.
        """
        features = []
        for name in frame.columns:
            col = frame[name]
            nullable = bool(col.isna().any())
            numeric = pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col)
            if numeric:
                values = col.dropna()
                features.append(
                    Feature(
                        name=str(name),
                        kind="numeric",
                        dtype=str(col.dtype),
                        nullable=nullable,
                        minimum=float(values.min()) if len(values) else None,
                        maximum=float(values.max()) if len(values) else None,
                    )
                )
            else:
                cats = sorted({str(v) for v in col.dropna()})
                features.append(
                    Feature(
                        name=str(name),
                        kind="categorical",
                        dtype=str(col.dtype),
                        nullable=nullable,
                        categories=tuple(cats),
                    )
                )
        return cls(features)

    def example(self) -> dict[str, Any]:
        """Return one valid named instance (midpoint of each numeric range, first category).

        Used to warm the model up before the first request, and as the example in API docs.
        """
        out: dict[str, Any] = {}
        for f in self.features:
            if f.kind == "categorical":
                out[f.name] = f.categories[0] if f.categories else None
            elif f.minimum is not None and f.maximum is not None:
                out[f.name] = round((f.minimum + f.maximum) / 2, 6)
            else:
                out[f.name] = 0.0
        return out

    def to_list(self) -> list[dict[str, Any]]:
        """Return the JSON form (a list of feature dicts in column order)."""
        return [f.to_dict() for f in self.features]

    @classmethod
    def from_list(cls, items: Sequence[Mapping[str, Any]]) -> FeatureSchema:
        """Build from the JSON form written by :meth:`to_list`."""
        return cls([Feature.from_dict(d) for d in items])

    def coerce_training_frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Cast training or scoring columns to the dtypes the pipeline sees at inference.

        Numeric columns become ``float64``; categorical columns become ``object`` holding ``str``
        or ``NaN``. Training and serving both go through this, so the fitted pipeline never sees a
        dtype at inference that it did not see in training.

        Args:
            frame: Shape ``(n, >= n_features)``; extra columns are dropped.

        Returns:
            A new frame, shape ``(n, n_features)``, columns in schema order.
        """
        out = {}
        for f in self.features:
            col = frame[f.name]
            if f.kind == "numeric":
                out[f.name] = col.astype("float64")
            else:
                out[f.name] = pd.Series(
                    [np.nan if pd.isna(v) else str(v) for v in col], index=frame.index, dtype=object
                )
        return pd.DataFrame(out, index=frame.index, columns=list(self.names))

    def validate(
        self, rows: Sequence[Sequence[Any] | Mapping[str, Any]], first_index: int = 0
    ) -> pd.DataFrame:
        """Check instances against the schema and assemble them into a frame.

        Same as ``frame(validate_columns(rows, first_index))``.

        Args:
            rows: See :meth:`validate_columns`.
            first_index: See :meth:`validate_columns`.

        Returns:
            Shape ``(len(rows), n_features)``; see :meth:`frame`.

        Raises:
            InvalidInput: (422) see :meth:`validate_columns`.
        """
        return self.frame(self.validate_columns(rows, first_index))

    def validate_columns(
        self, rows: Sequence[Sequence[Any] | Mapping[str, Any]], first_index: int = 0
    ) -> list[list[Any]]:
        """Check instances against the schema and return their values column by column.

        Args:
            rows: Instances, each a list of ``n_features`` values in schema order (positional) or
                a mapping from feature name to value (named; key order does not matter).
            first_index: Index reported for ``rows[0]`` in problems (0 for HTTP, 1 for CSV rows).

        Returns:
            ``n_features`` lists of ``len(rows)`` values, in schema order: floats (``NaN`` for
            null) for numeric features, strings (``NaN`` for null) for categorical ones. Columns
            of several requests can be concatenated before :meth:`frame` (batching).

        Raises:
            InvalidInput: (422) listing every problem found, up to :data:`MAX_PROBLEMS`.
        """
        problems: list[Problem] = []
        columns: list[list[Any]] = [[] for _ in self.features]
        for i, row in enumerate(rows):
            idx = i + first_index
            if isinstance(row, Mapping):
                values = self._from_named(row, idx, problems)
            elif isinstance(row, list | tuple):
                values = self._from_positional(row, idx, problems)
            else:
                problems.append(
                    Problem(
                        f"an instance must be a list of {len(self)} values or an object keyed by "
                        f"feature name, got {_json_type(row)}",
                        instance=idx,
                    )
                )
                values = None
            if values is not None:
                for j, (feature, value) in enumerate(zip(self.features, values, strict=True)):
                    columns[j].append(self._check_value(feature, value, idx, problems))
            if len(problems) >= MAX_PROBLEMS:
                break
        if problems:
            raise InvalidInput(_summary(problems), problems[:MAX_PROBLEMS])
        return columns

    def matrix(self, columns: Sequence[Sequence[Any]]) -> np.ndarray:
        """Assemble validated all-numeric columns into a float matrix.

        Args:
            columns: ``n_features`` equally long sequences of floats (``NaN`` for null).

        Returns:
            Shape ``(n_instances, n_features)``, ``float64``, C-contiguous, in schema order.
        """
        return np.ascontiguousarray(np.asarray(columns, dtype="float64").T)

    def frame(self, columns: Sequence[Sequence[Any]]) -> pd.DataFrame:
        """Assemble validated columns into the frame the pipeline takes.

        Args:
            columns: ``n_features`` equally long sequences from :meth:`validate_columns`.

        Returns:
            Shape ``(n_instances, n_features)``: ``float64`` numeric columns and ``object``
            categorical columns, in schema order.
        """
        data = {}
        for f, col in zip(self.features, columns, strict=True):
            data[f.name] = (
                np.asarray(col, dtype="float64")
                if f.kind == "numeric"
                else np.asarray(col, dtype=object)
            )
        return pd.DataFrame(data, columns=list(self.names))

    def _from_named(self, row: Mapping[str, Any], idx: int, problems: list[Problem]) -> list[Any]:
        for key in row:
            if key not in self._by_name:
                problems.append(
                    Problem(
                        f"unknown feature; expected only: {', '.join(self.names)}",
                        instance=idx,
                        field=str(key),
                    )
                )
        values = []
        for name in self.names:
            if name in row:
                values.append(row[name])
            else:
                problems.append(Problem("missing feature", instance=idx, field=name))
                values.append(_MISSING)
        return values

    def _from_positional(
        self, row: Sequence[Any], idx: int, problems: list[Problem]
    ) -> list[Any] | None:
        if len(row) != len(self.features):
            problems.append(
                Problem(
                    f"expected {len(self)} values in this order: {', '.join(self.names)}; "
                    f"got {len(row)}",
                    instance=idx,
                )
            )
            return None
        return list(row)

    def _check_value(self, f: Feature, value: Any, idx: int, problems: list[Problem]) -> Any:
        if value is _MISSING:
            return np.nan
        if value is None:
            if f.nullable:
                return np.nan
            problems.append(
                Problem(
                    "null is not accepted: this feature had no missing values in training",
                    instance=idx,
                    field=f.name,
                )
            )
            return np.nan
        if f.kind == "numeric":
            if isinstance(value, bool) or not isinstance(value, int | float):
                hint = " (send the number without quotes)" if _is_numeric_string(value) else ""
                problems.append(
                    Problem(
                        f"expected a number, got {_json_type(value)}{hint}",
                        instance=idx,
                        field=f.name,
                    )
                )
                return np.nan
            try:
                number = float(value)
            except OverflowError:  # a JSON integer beyond float range
                number = math.inf
            if not math.isfinite(number):
                problems.append(Problem("expected a finite number", instance=idx, field=f.name))
                return np.nan
            return number
        if isinstance(value, bool) and f.is_boolean:
            value = str(value)  # JSON true/false for a column of booleans, as in training
        if not isinstance(value, str):
            problems.append(
                Problem(
                    f"expected a string (one of {_quote(f.categories)}), got {_json_type(value)}",
                    instance=idx,
                    field=f.name,
                )
            )
            return np.nan
        if value not in self._allowed[f.name]:
            problems.append(
                Problem(
                    f"unknown category {quote(value)}; allowed: {_quote(f.categories)}",
                    instance=idx,
                    field=f.name,
                )
            )
            return np.nan
        return value


def _summary(problems: Sequence[Problem]) -> str:
    """Return one line for the ``error`` field that stands on its own.

    Clients that read only ``error`` (as Open Inference Protocol clients do) still learn what to
    fix: the first problem is given in full.
    """
    first = problems[0]
    where = ", ".join(
        part
        for part in (
            f"instance {first.instance}" if first.instance is not None else None,
            f"field {quote(first.field)}" if first.field is not None else None,
        )
        if part
    )
    head = f"{where}: {first.problem}" if where else first.problem
    n = len(problems)
    if n == 1:
        return f"invalid instance: {head}"
    counted = f"{n}+" if n >= MAX_PROBLEMS else str(n)
    return f"{counted} problems in the instances (all in details); first: {head}"


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return f"a string {value[:40]!r}" if len(value) <= 40 else "a string"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list | tuple):
        return "an array"
    return type(value).__name__


def _is_numeric_string(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        float(value)
    except ValueError:
        return False
    return True


def _quote(categories: Sequence[str] | None) -> str:
    cats = list(categories or ())
    shown = ", ".join(repr(c) for c in cats[:MAX_CATEGORIES_SHOWN])
    if len(cats) > MAX_CATEGORIES_SHOWN:
        shown += f", ... ({len(cats)} in all; see GET /metadata)"
    return shown
