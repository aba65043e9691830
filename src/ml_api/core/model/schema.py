"""The model's feature schema: inferred in training, stored in the card, assembled into input.

The schema is learnt from the training data (:meth:`FeatureSchema.infer`), stored in the artifact's
``metadata.json`` (:meth:`FeatureSchema.to_list`) and used at inference time to assemble validated
columns into the ``(n_instances, n_features)`` input of the pipeline, in training column order.
Checking instances against it is :mod:`ml_api.core.model.validation`'s job, under this policy:

- numeric features take JSON numbers only: booleans and numeric strings (``"42"``) are refused, as
  are non-finite values (``1e400`` overflows to infinity and is refused);
- categorical features take strings seen in training; an unseen category is refused with the list
  of allowed ones; a feature that held booleans in training (categories ``"False"``/``"True"``)
  also takes JSON ``true``/``false``;
- text features (a column a text vectorizer reads: :attr:`FeatureKind.TEXT`) take any JSON string
  up to the feature's ``max_length`` characters (:data:`TEXT_MAX_LENGTH` by default): no list of
  categories, no unknown-category refusal; numbers and booleans are refused;
- a categorical feature whose model encoder was fitted on numbers (a zip code as the integer
  ``2134``, a store id, a ``cylinders`` code: :attr:`Feature.codes`) takes JSON numbers equal to
  one of its codes (``2134`` and ``2134.0`` alike), like a numeric feature: strings (``"2134"``)
  and booleans are refused, and an unseen code is refused with the list of allowed ones;
- ``null`` is accepted only for features that had missing values in training (the fitted pipeline
  imputes them); a missing key is an error, not an implicit null;
- named instances may not carry fields the model does not know;
- positional instances must carry exactly ``n_features`` values, in schema order.
- numbers outside a feature's training range (``minimum`` to ``maximum``) pass validation; what
  then happens (warn, reject, accept) is ``ML_API_OUT_OF_RANGE``'s policy, applied by
  :mod:`ml_api.core.model.ranges` on the validated columns.

Every problem found is reported (up to ``validation.MAX_PROBLEMS``), each naming its instance and
field.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np
import pandas as pd


class FeatureKind(StrEnum):
    """How a feature is sent and checked; the value is its JSON spelling in the card."""

    NUMERIC = "numeric"
    """Sent as a JSON number; assembled as ``float64``."""

    CATEGORICAL = "categorical"
    """Sent as a string seen in training; assembled as ``object``."""

    TEXT = "text"
    """Free text (a column a text vectorizer reads): any string up to :attr:`Feature.max_length`
    characters; assembled as ``object``."""


TEXT_MAX_LENGTH = 10_000
"""Longest text feature value accepted, in characters (Unicode code points), unless the card's
feature says otherwise (``max_length``): a long review or ticket fits; a longer value is refused
with 422 naming the instance and field (docs/models.md, "Text features")."""


BOOLEAN_CATEGORIES = frozenset({"False", "True"})
"""The categories of a column that held booleans in training (``str`` of each value)."""

CATEGORY_DTYPE = "category"
"""The ``dtype`` of a categorical feature the model takes as a pandas ``category`` column
(LightGBM's and XGBoost's native categorical support); its ``categories`` are in the model's
own order."""


@dataclass(frozen=True, slots=True)
class Feature:
    """One input column of the model.

    Attributes:
        name: Column name in the training data.
        kind: :attr:`FeatureKind.NUMERIC` (sent as a JSON number) or
            :attr:`FeatureKind.CATEGORICAL` (sent as a string).
        dtype: The pandas dtype the column had in training, for documentation (``"float64"``).
        nullable: Whether ``null`` is accepted: the training data had missing values here, or
            ``ml-api train --nullable`` said so.
        categories: Sorted categories seen in training (categorical features only).
        minimum: Smallest value seen in training (numeric features only); values below it are
            out of range (:mod:`ml_api.core.model.ranges`). ``None`` when unknown (not checked).
        maximum: Largest value seen in training (numeric features only); values above it are
            out of range. ``None`` when unknown.
        max_length: Longest value accepted, in characters (text features only; default
            :data:`TEXT_MAX_LENGTH`).
        codes: For a categorical feature whose model encoder was fitted on numbers (an
            ``OneHotEncoder``/``OrdinalEncoder`` over integer codes, or LightGBM's/XGBoost's
            native categories over numbers): those numbers, in the encoder's order. Sent as
            JSON numbers; ``categories`` then holds their text (``"2134"``) for messages. The
            card stores the numbers themselves as ``categories``. ``None`` otherwise.
    """

    name: str
    kind: FeatureKind
    dtype: str
    nullable: bool
    categories: tuple[str, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    codes: tuple[int | float, ...] | None = None
    max_length: int | None = None

    @property
    def is_coded(self) -> bool:
        """Whether this categorical feature takes numbers (:attr:`codes`), not strings."""
        return self.codes is not None

    @property
    def is_boolean(self) -> bool:
        """Whether the column held booleans in training (categories ``False``/``True`` only).

        Such a feature also takes JSON ``true``/``false`` (and V2 ``BOOL``), read as the strings
        ``"True"``/``"False"`` the training data became; a CSV reads it as text the same way.
        """
        return (
            self.kind is FeatureKind.CATEGORICAL
            and bool(self.categories)
            and set(self.categories or ()) <= BOOLEAN_CATEGORIES
        )

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form stored in ``metadata.json``."""
        d: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind.value,
            "dtype": self.dtype,
            "nullable": self.nullable,
        }
        if self.kind is FeatureKind.CATEGORICAL:
            d["categories"] = list(self.codes if self.codes is not None else self.categories or ())
        elif self.kind is FeatureKind.TEXT:
            d["max_length"] = self.max_length or TEXT_MAX_LENGTH
        else:
            d["minimum"] = self.minimum
            d["maximum"] = self.maximum
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Feature:
        """Build from the JSON form written by :meth:`to_dict`.

        Raises:
            KeyError: A required key is missing.
            ValueError: ``kind`` is not ``numeric``, ``categorical`` or ``text``.
        """
        try:
            kind = FeatureKind(d["kind"])
        except ValueError:
            raise ValueError(f"feature {d.get('name')!r}: unknown kind {d['kind']!r}") from None
        if kind is FeatureKind.TEXT:
            return cls.text(
                str(d["name"]),
                str(d.get("dtype", "object")),
                bool(d["nullable"]),
                int(d.get("max_length") or TEXT_MAX_LENGTH),
            )
        cats: list[Any] | None = d.get("categories")
        coded = kind is FeatureKind.CATEGORICAL and bool(cats) and all(map(is_code, cats or ()))
        return cls(
            name=str(d["name"]),
            kind=kind,
            dtype=str(d.get("dtype", "")),
            nullable=bool(d["nullable"]),
            categories=(
                tuple(code_text(c) if coded else str(c) for c in cats) if cats is not None else None
            ),
            minimum=d.get("minimum"),
            maximum=d.get("maximum"),
            codes=tuple(cats or ()) if coded else None,
        )

    @classmethod
    def text(
        cls, name: str, dtype: str, nullable: bool, max_length: int = TEXT_MAX_LENGTH
    ) -> Feature:
        """A free-text feature (see :attr:`FeatureKind.TEXT`).

        Args:
            name: Column name.
            dtype: The column's dtype in the data (``"object"``).
            nullable: Whether ``null`` is accepted.
            max_length: Longest value accepted, in characters.

        Raises:
            ValueError: ``max_length`` is not a positive integer.
        """
        if max_length < 1:
            raise ValueError(f"feature {name!r}: max_length must be positive, got {max_length}")
        return cls(
            name=name, kind=FeatureKind.TEXT, dtype=dtype, nullable=nullable, max_length=max_length
        )

    @classmethod
    def coded(cls, name: str, dtype: str, nullable: bool, codes: Sequence[int | float]) -> Feature:
        """A categorical feature over numeric codes (see :attr:`codes`).

        Args:
            name: Column name.
            dtype: The column's dtype in the data (``"int64"``), or :data:`CATEGORY_DTYPE`.
            nullable: Whether ``null`` is accepted.
            codes: The model encoder's numbers, in its order (integral floats become ints).

        Raises:
            ValueError: A code is not a finite number.
        """
        plain: list[int | float] = []
        for c in codes:
            if not is_code(c):
                raise ValueError(f"feature {name!r}: code {c!r} is not a finite number")
            plain.append(int(c) if float(c).is_integer() else float(c))
        return cls(
            name=name,
            kind=FeatureKind.CATEGORICAL,
            dtype=dtype,
            nullable=nullable,
            categories=tuple(code_text(c) for c in plain),
            codes=tuple(plain),
        )


def is_code(value: Any) -> bool:
    """Whether ``value`` can be a numeric category code: a finite number, not a boolean."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | float | np.number):
        return False
    return bool(np.isfinite(float(value)))


def code_text(code: int | float) -> str:
    """A numeric code as text, for messages and pages: ``2134`` for ``2134`` and ``2134.0``."""
    number = float(code)
    return str(int(number)) if number.is_integer() else repr(number)


class FeatureSchema:
    """The ordered input features of a model.

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

    def __len__(self) -> int:
        return len(self.features)

    @property
    def all_numeric(self) -> bool:
        """Whether every feature is numeric (then the input can be one float matrix)."""
        return all(f.kind is FeatureKind.NUMERIC for f in self.features)

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
                        kind=FeatureKind.NUMERIC,
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
                        kind=FeatureKind.CATEGORICAL,
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
            if f.codes:
                out[f.name] = f.codes[0]
            elif f.kind is FeatureKind.TEXT:
                out[f.name] = "an example text"
            elif f.kind is FeatureKind.CATEGORICAL:
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
            if f.kind is FeatureKind.NUMERIC:
                out[f.name] = col.astype("float64")
            elif f.codes is not None and f.dtype != CATEGORY_DTYPE:
                out[f.name] = pd.Series(coded_column(col.tolist(), f), index=frame.index)
            elif f.dtype == CATEGORY_DTYPE:
                out[f.name] = pd.Series(native_categorical(col, f), index=frame.index)
            else:
                out[f.name] = pd.Series(
                    [np.nan if pd.isna(v) else str(v) for v in col], index=frame.index, dtype=object
                )
        return pd.DataFrame(out, index=frame.index, columns=list(self.names))

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
            columns: ``n_features`` equally long sequences from
                :func:`ml_api.core.model.validation.validate_columns`.

        Returns:
            Shape ``(n_instances, n_features)``: ``float64`` numeric columns, ``object``
            categorical columns and numeric-coded ones as :func:`coded_column` gives, in schema
            order.
        """
        data: dict[str, Any] = {}
        for f, col in zip(self.features, columns, strict=True):
            if f.kind is FeatureKind.NUMERIC:
                data[f.name] = np.asarray(col, dtype="float64")
            elif f.codes is not None and f.dtype != CATEGORY_DTYPE:
                data[f.name] = coded_column(col, f)
            elif f.dtype == CATEGORY_DTYPE:
                data[f.name] = native_categorical(col, f)
            else:
                data[f.name] = np.asarray(col, dtype=object)
        return pd.DataFrame(data, columns=list(self.names))


def native_categorical(values: Sequence[Any] | pd.Series, feature: Feature) -> pd.Categorical:
    """Assemble one validated column as a pandas ``category`` column with the model's categories.

    Models with native categorical support (LightGBM, XGBoost) were fitted on ``category`` columns
    and refuse ``object`` ones; the categories are fixed to the feature's own (in the card's
    order), so a batch that happens to hold only some of them still maps each to the same code.

    Args:
        values: ``n_instances`` strings (numbers for a numeric-coded feature; ``NaN`` for
            null), already validated.
        feature: A categorical feature whose ``dtype`` is :data:`CATEGORY_DTYPE`.

    Returns:
        A categorical of ``n_instances`` values (missing values have code -1).
    """
    if feature.codes is not None:
        return pd.Categorical(
            [np.nan if pd.isna(v) else v for v in values], categories=list(feature.codes)
        )
    strings = [v if isinstance(v, str) or pd.isna(v) else str(v) for v in values]
    return pd.Categorical(strings, categories=list(feature.categories or ()))


def coded_column(values: Sequence[Any] | np.ndarray, feature: Feature) -> np.ndarray:
    """Assemble one validated numeric-coded column with the dtype the model's encoder saw.

    Args:
        values: ``n_instances`` codes (``NaN`` for null), already validated.
        feature: A feature with :attr:`Feature.codes`.

    Returns:
        ``n_instances`` values: the data's integer dtype (``int64``) when the feature had one
        and no value is missing, else ``float64`` with ``NaN`` (as pandas reads an integer
        column with gaps).
    """
    numbers = np.asarray(values, dtype="float64")
    if feature.dtype.startswith(("int", "uint")) and not np.isnan(numbers).any():
        return numbers.astype(feature.dtype)
    return numbers
