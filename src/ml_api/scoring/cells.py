"""Cell rules of a CSV: how the text of one cell becomes the value the validator judges.

A cell in :data:`NA_CELLS` (or the card's tokens) is missing (``None``), except where it is a
value (:func:`~ml_api.core.model.columns.missing_cells`: a category of the column, any cell of
a text column); a numeric feature's cell is a number where it parses; a boolean feature's
``true``/``false`` in any case is ``"True"``/``"False"`` (as training saw them); any other
categorical cell is its text as written (``02134`` keeps its zero).
"""

from __future__ import annotations

import datetime
from collections.abc import Collection, Iterable
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from ml_api.core.model.columns import missing_cells, parse_number, reads_as_text
from ml_api.core.model.schema import Feature, FeatureKind, FeatureSchema

NA_CELLS = frozenset(
    ["", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
     "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"]
)  # fmt: skip
"""Cells read as missing: pandas' default ``na_values``, as training reads its CSV."""


def csv_number(value: str) -> Any:
    """A numeric feature's cell as a float (:func:`~ml_api.core.model.columns.parse_number`).

    Text that is no number (``5_500``, non-ASCII digits, ``abc``) is left as text: the
    validator refuses it naming row and column.
    """
    number = parse_number(value)
    return value if number is None else number


def csv_boolean(value: Any) -> Any:
    """Read ``true``/``false`` in any case (as pandas did in training) as ``"True"``/``"False"``."""
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().capitalize()
    return value


def cell_value(cell: str, feature: Feature, missing: Collection[str] = NA_CELLS) -> Any:
    """One CSV cell as the JSON-like value the validator judges.

    Args:
        cell: The cell's text as written.
        feature: The feature it feeds.
        missing: The missing-value tokens (the card's); the feature's column reads
            :func:`~ml_api.core.model.columns.missing_cells` of them as missing.

    Returns:
        ``None`` for a missing cell; a float for a numeric (or numeric-coded) feature's number;
        ``"True"``/``"False"`` for a boolean feature's ``true``/``false``; else the text.
    """
    if cell in missing and cell in missing_cells(feature, frozenset(missing)):
        return None
    return _present(cell, feature)


def _present(cell: str, feature: Feature) -> Any:
    if feature.kind is FeatureKind.NUMERIC or feature.is_coded:
        return csv_number(cell)
    if feature.is_boolean:
        return csv_boolean(cell)
    return cell


def typed_value(value: Any) -> Any:
    """One typed (Parquet) value as the JSON-like value the validator judges, as its CSV cell.

    A decimal is its number (``decimal(10,2)``, as Spark writes amounts); a date is its ISO text
    (as a CSV writes it); numpy scalars are Python numbers; anything else as it is.
    """
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime.date) and not isinstance(value, datetime.datetime):
        return value.isoformat()
    if isinstance(value, np.generic):
        return value.item()
    return value


def typed_records(chunk: pd.DataFrame, schema: FeatureSchema) -> list[dict[str, Any]]:
    """A typed (Parquet) chunk's feature values as JSON-like instances; nulls become ``None``."""
    features = chunk[list(schema.names)].astype(object)
    records = features.where(features.notna(), None).to_dict("records")
    return [{str(k): typed_value(v) for k, v in record.items()} for record in records]


def text_records(
    chunk: pd.DataFrame, schema: FeatureSchema, missing: Collection[str] = NA_CELLS
) -> list[dict[str, Any]]:
    """The chunk's feature cells (strings as written) as JSON-like instances for validation.

    Each cell as :func:`cell_value` reads it: missing cells become ``None``; numeric features'
    cells become floats where they parse; categorical features keep the text as written
    (``02134`` stays a zip code).
    """
    records: list[dict[str, Any]] = [{} for _ in range(len(chunk))]
    tokens = frozenset(missing)
    for f in schema.features:
        absent = missing_cells(f, tokens)
        for record, cell in zip(records, chunk[f.name].tolist(), strict=True):
            record[f.name] = None if cell in absent else _present(cell, f)
    return records


NA_CELLS_ARROW = pa.array(sorted(NA_CELLS), type=pa.string())


def pandas_text_dtypes(columns: Iterable[str], features: Iterable[Feature]) -> dict[str, type]:
    """``pandas.read_csv``'s ``dtype``: ``str`` for each column the model reads as text.

    Args:
        columns: The CSV's column names (its header).
        features: The model's features (:func:`~ml_api.core.model.columns.reads_as_text`:
            text features and string-category features).

    Returns:
        ``{column: str}`` for those of ``columns``, so ``02134`` stays ``"02134"``.
    """
    names = {f.name for f in features if reads_as_text(f)}
    return {name: str for name in map(str, columns) if name in names}


def pandas_na_values(
    columns: Iterable[str], features: Iterable[Feature], tokens: Collection[str] = NA_CELLS
) -> dict[str, list[str]]:
    """``pandas.read_csv``'s ``na_values`` (with ``keep_default_na=False``) by the one rule.

    Args:
        columns: The CSV's column names (its header).
        features: The model's features: a feature's column reads
            :func:`~ml_api.core.model.columns.missing_cells` of ``tokens`` as missing (not its
            categories; nothing in a text column).
        tokens: The missing-value tokens (the card's, ``--na-values``, else pandas' defaults).

    Returns:
        ``{column: sorted cells read as missing}`` for every column.
    """
    by_name = {f.name: f for f in features}
    every = frozenset(map(str, tokens))
    return {
        name: sorted(missing_cells(by_name[name], every) if name in by_name else every)
        for name in map(str, columns)
    }
