"""A chunk's feature columns checked at once, through the one columnar check of the core.

Every batch reader calls :func:`check_table` (Arrow's CSV blocks, the pandas fallback's chunks,
Parquet batches): :func:`ml_api.core.model.columns.check_column` per feature, the doubts of the row
merged. A chunk with no doubtful row goes to the model as the checked arrays; any other goes
through the per-value validator, which accepts its rows or names each problem.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from ml_api.core.model.columns import TextCells, check_column
from ml_api.core.model.schema import FeatureSchema
from ml_api.scoring.cells import NA_CELLS
from ml_api.scoring.types import MissingIn

CSV_TEXT = TextCells(NA_CELLS)
"""How a CSV's cells are read when the card does not say (pandas' default missing tokens)."""


def text_cells(card: Mapping[str, Any]) -> TextCells:
    """How a model's scoring files are read: with the missing tokens its training used.

    Args:
        card: The model card (``metadata.json``); ``missing_values.tokens`` is the list training
            read as missing (``ml-api train --na-values``).

    Returns:
        Those tokens; pandas' defaults (:data:`CSV_TEXT`) for a card from before the field.
    """
    tokens = (card.get("missing_values") or {}).get("tokens")
    return CSV_TEXT if tokens is None else TextCells(frozenset(map(str, tokens)))


def missing_in(cells: TextCells, schema: FeatureSchema) -> MissingIn:
    """The cells read as missing, per column name, for typing a CSV's columns (Parquet output).

    A feature's column by the one rule (:func:`~ml_api.core.model.columns.missing_cells`),
    any other column's the tokens.
    """
    features = {f.name: f for f in schema.features}
    return lambda name: cells.arrow_missing(features.get(name))


Checked = tuple[list[np.ndarray], np.ndarray]
"""``(columns, doubt)``: ``n_features`` arrays of ``n_rows`` checked values, and a boolean per
row, true where some value of the row may break the schema."""


def check_table(
    table: pa.Table, schema: FeatureSchema, text: TextCells | None = CSV_TEXT
) -> Checked:
    """Check every feature column of a block of rows at once.

    Args:
        table: Shape ``(n_rows, >= n_features)``, every feature column present, any Arrow types.
        schema: The model's feature schema.
        text: How string cells are read (a CSV's text: missing tokens, numbers); ``None`` for
            typed input (Parquet), where strings are strings and nulls are missing.

    Returns:
        The checked columns, exactly as ``Validator.validate_columns`` returns the rows it
        accepts, and the per-row doubt; a slice of rows with no doubt is valid as the columns
        sliced to it.
    """
    columns = []
    doubt = np.zeros(table.num_rows, dtype=bool)
    for f in schema.features:
        checked = check_column(table.column(f.name), f, text)
        columns.append(np.asarray(checked.values))
        doubt |= checked.doubtful()
    return columns, doubt


def arrow_block_check(
    table: pa.Table, schema: FeatureSchema, cells: TextCells = CSV_TEXT
) -> Checked:
    """:func:`check_table` of a block of CSV text cells read by Arrow."""
    return check_table(table, schema, cells)


def fast_arrow_columns(
    table: pa.Table, schema: FeatureSchema, cells: TextCells = CSV_TEXT
) -> list[np.ndarray] | None:
    """The checked columns of a chunk of CSV text read by Arrow, ``None`` if a row is doubtful."""
    columns, doubt = check_table(table, schema, cells)
    return None if doubt.any() else columns


def fast_columns(
    chunk: pd.DataFrame, schema: FeatureSchema, text: bool = True, cells: TextCells = CSV_TEXT
) -> list[np.ndarray] | None:
    """The checked columns of a pandas chunk, ``None`` if a row is doubtful.

    Args:
        chunk: Shape ``(n_rows, >= n_features)``, every feature column present.
        schema: The model's feature schema.
        text: The cells are CSV text as written (else typed values, from Parquet).
        cells: How CSV text is read (the card's missing tokens).

    Returns:
        ``n_features`` arrays of ``n_rows`` values, as ``Validator.validate_columns`` would
        return them, or ``None`` when some cell may break the schema (then the caller runs the
        row-by-row validation, which names each problem).
    """
    try:
        table = pa.Table.from_pandas(chunk[list(schema.names)], preserve_index=False, nthreads=1)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return None  # values of mixed types in one column: judged one by one
    columns, doubt = check_table(table, schema, cells if text else None)
    return None if doubt.any() else columns
