"""What training reads from the data before it fits: the task, hints, nullable marks, refusals.

:func:`infer_task` decides classification or regression from the target column,
:func:`integer_code_hints` names numeric features that look like codes, :func:`mark_nullable`
applies ``--nullable``, and :func:`check_trainable` and :func:`check_classes` refuse data no model
can be fitted on, in one line, before anything is written (``ml_api.train``).
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Literal

import numpy as np
import pandas as pd

from ml_api.core.errors import quote
from ml_api.core.model.schema import FeatureSchema
from ml_api.core.wording import count

Task = Literal["classification", "regression"]

MAX_CLASSES_FOR_NUMERIC_TARGET = 20
"""A numeric target with at most this many distinct integer values is taken as classes."""


CODE_HINT_MAX_DISTINCT = MAX_CLASSES_FOR_NUMERIC_TARGET
CODE_HINT_MAX_SHARE = 0.05
"""An integer feature with at most :data:`CODE_HINT_MAX_DISTINCT` distinct values, and at most this
share of the rows, gets a hint in ``train``'s output that it may be a code (see
:func:`integer_code_hints`). 20 is the bound under which an integer target is taken as classes,
so a column is hinted at exactly where the same values as a target would be classes; the 5 %
share means each value recurs on at least 20 rows on average, as codes (store ids, region
numbers) do, while a measured quantity in a small file (ages in 50 rows) does not qualify. It is
a hint only: inference is unchanged, and a count with few values (rooms, children) may trigger
it, which the wording ("if these are codes") allows for."""


def integer_code_hints(
    X: pd.DataFrame, schema: FeatureSchema, forced_numeric: tuple[str, ...] = ()
) -> dict[str, int]:
    """Numeric features that look like integer codes: few distinct integers, many rows each.

    Args:
        X: The typed training features, shape ``(n_rows, n_features)``.
        schema: Their schema (only ``numeric`` features are looked at).
        forced_numeric: Columns the user typed numeric (``--numeric``): no hint for those.

    Returns:
        Feature name to its number of distinct values, for the features within
        :data:`CODE_HINT_MAX_DISTINCT` and :data:`CODE_HINT_MAX_SHARE` of the rows.
    """
    hints: dict[str, int] = {}
    for f in schema.features:
        if f.kind != "numeric" or f.name in forced_numeric:
            continue
        column = X[f.name]
        if pd.api.types.is_bool_dtype(column) or not pd.api.types.is_numeric_dtype(column):
            continue
        values = column.dropna().to_numpy(dtype=float)
        if values.size == 0 or not np.all(np.mod(values, 1) == 0):
            continue
        distinct = len(np.unique(values))
        if 1 < distinct <= CODE_HINT_MAX_DISTINCT and distinct <= CODE_HINT_MAX_SHARE * len(X):
            hints[f.name] = distinct
    return hints


def infer_task(y: pd.Series) -> Task:
    """Guess the task from the target column.

    Non-numeric or boolean targets are classification; numeric targets are regression, except
    integer-valued targets with at most :data:`MAX_CLASSES_FOR_NUMERIC_TARGET` distinct values.
    ``ml-api train --task`` (``TrainingOptions.task``) overrides it.
    """
    if not pd.api.types.is_numeric_dtype(y) or pd.api.types.is_bool_dtype(y):
        return "classification"
    values = y.dropna().to_numpy(dtype=float)
    if np.all(np.mod(values, 1) == 0) and len(np.unique(values)) <= MAX_CLASSES_FOR_NUMERIC_TARGET:
        return "classification"
    return "regression"


def mark_nullable(schema: FeatureSchema, names: tuple[str, ...]) -> FeatureSchema:
    """Mark features as accepting ``null`` (``ml-api train --nullable COL``).

    Args:
        schema: The inferred schema.
        names: Feature names to mark; already nullable ones stay so.

    Returns:
        The schema with those features' ``nullable`` set.

    Raises:
        ValueError: A name is not one of the features (a column left out, or no column at all).
    """
    unknown = [n for n in names if n not in schema.names]
    if unknown:
        raise ValueError(
            f"--nullable {unknown[0]!r} is not a feature; features: {', '.join(schema.names)}"
        )
    wanted = set(names)
    return FeatureSchema(
        [replace(f, nullable=True) if f.name in wanted else f for f in schema.features]
    )


def check_trainable(X: pd.DataFrame, y: pd.Series, target: str, test_size: float) -> None:
    """Refuse data no model can be fitted on, before anything is written.

    Args:
        X: Features, shape ``(n_rows, n_features)`` (rows with a target only).
        y: Target, shape ``(n_rows,)``.
        target: Target column name (for messages).
        test_size: Held-out fraction.

    Raises:
        ValueError: (one line) the target column is entirely missing, or no feature column has
            a value.
    """
    if len(y) == 0:
        raise ValueError(f"target column {target!r} has no values: every row's target is missing")
    usable = [str(c) for c in X.columns if X[c].notna().any()]
    if not usable:
        raise ValueError(
            "no usable feature columns: every column other than the target is dropped or empty"
        )
    n_test = math.ceil(test_size * len(y))
    if len(y) - n_test < 1 or n_test < 1:
        raise ValueError(f"{count(len(y), 'row')} with a target: too few to hold out {test_size:g}")


def check_classes(y: pd.Series, target: str, test_size: float) -> None:
    """Refuse a classification target the seeded stratified split cannot handle.

    Raises:
        ValueError: (one line) a single class; a class with fewer than 2 rows (the stratified
            split needs one on each side); or fewer held-out rows than classes.
    """
    counts = y.value_counts()
    if len(counts) < 2:
        raise ValueError(
            f"target column {target!r} has a single class ({quote(str(counts.index[0]))}): "
            "a classifier needs at least two"
        )
    if counts.min() < 2:
        raise ValueError(
            f"class {quote(str(counts.idxmin()))} of {target!r} has {counts.min()} row; "
            "every class needs at least 2 for the stratified train/test split"
        )
    n_test = math.ceil(test_size * len(y))
    if n_test < len(counts) or len(y) - n_test < len(counts):
        raise ValueError(
            f"{count(len(y), 'row')}: too few for a stratified split of {len(counts)} classes with "
            f"test size {test_size:g}: each side needs a row of every class"
        )
