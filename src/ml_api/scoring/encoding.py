"""The columns scoring adds to each row: ``prediction`` and ``probability_<class>``."""

from __future__ import annotations

from typing import Any

import numpy as np

from ml_api.core.runtimes.predictor import PredictionResult, to_jsonable


def _plain_column(values: np.ndarray) -> np.ndarray | list[Any]:
    """One output column, vectorised, with the values :func:`to_jsonable` would give.

    Floats keep ``float64`` with ``NaN`` for non-finite values (an empty cell, ``None`` in JSON);
    integers, booleans and strings pass through; anything else goes value by value.
    """
    kind = values.dtype.kind
    if kind == "f":
        return np.where(np.isfinite(values), values, np.nan)
    if kind in "iub":
        return values
    if kind == "U":
        return values.astype(object)
    if kind == "O" and set(map(type, values)) <= {str}:
        return values
    return to_jsonable(values)


def encode_csv_columns(result: PredictionResult) -> dict[str, np.ndarray | list[Any]]:
    """Encode a prediction as the scored file's added columns.

    Args:
        result: The neutral result for ``n_instances`` rows.

    Returns:
        ``{"prediction": ...}`` and, for classifiers, one ``probability_<class>`` column per
        class in the model's class order; each ``n_instances`` plain values (non-finite numbers
        as ``NaN``, an empty cell), as an array or list.
    """
    columns: dict[str, np.ndarray | list[Any]] = {"prediction": _plain_column(result.labels)}
    if result.probabilities is not None:
        for j, key in enumerate(result.class_keys):
            columns[f"probability_{key}"] = _plain_column(result.probabilities[:, j])
    return columns
