"""The types a CSV's columns get when it is written as Parquet (as ``pandas.read_csv`` reads them).

A column is ``int64`` if every present cell is an integer, else ``double`` if every one is a
number, else ``bool`` if every one is ``true``/``false`` (any case), else ``string``; a column
with no present cell is ``double`` (pandas' all-NaN column). Missing cells are nulls.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pyarrow as pa
import pyarrow.compute as pc

from ml_api.scoring.cells import NA_CELLS_ARROW

MissingIn = Callable[[str], pa.Array]
"""The cells read as missing in a column, by the column's name (a value set for ``pc.is_in``):
the card's tokens less the column's categories (:func:`~ml_api.scoring.checks.missing_in`)."""


def pandas_defaults(name: str) -> pa.Array:
    """:data:`~ml_api.scoring.cells.NA_CELLS` in every column (a card without tokens)."""
    return NA_CELLS_ARROW


_CANDIDATE_TYPES: dict[str, pa.DataType] = {"int64": pa.int64(), "double": pa.float64()}
_BOOL_CELLS = pa.array(["true", "false"], type=pa.string())


def as_text(col: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """A column as strings (an empty pandas chunk's columns have Arrow's null type)."""
    return col if pa.types.is_string(col.type) else col.cast(pa.string())


def _types_taken(
    col: pa.ChunkedArray | pa.Array, candidates: set[str], missing: pa.Array
) -> tuple[set[str], bool]:
    """Which of ``candidates`` every present cell of a text column converts to, losslessly.

    Returns:
        ``(kept, any_present)``: the candidate type names (``int64``, ``double``, ``bool``) all
        present cells (not :data:`NA_CELLS`) convert to, and whether any cell was present.
    """
    text = as_text(col)
    present = text.filter(pc.invert(pc.is_in(text, value_set=missing)))
    if len(present) == 0:
        return candidates, False
    kept = set()
    for name in candidates:
        if name == "bool":
            if pc.all(pc.is_in(pc.utf8_lower(present), value_set=_BOOL_CELLS)).as_py():
                kept.add(name)
            continue
        try:
            pc.cast(present, _CANDIDATE_TYPES[name])
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
        kept.add(name)
    return kept, True


def infer_csv_types(
    tables: Iterator[pa.Table], missing: MissingIn = pandas_defaults
) -> dict[str, pa.DataType]:
    """Each column's type over a whole CSV, as ``pandas.read_csv`` would read it (for Parquet).

    Args:
        tables: The file's rows in blocks, every cell the text as written (string columns).
        missing: The cells that are missing in each column (the card's tokens less the
            column's categories; pandas' defaults).

    Returns:
        ``{column: type}``: ``int64`` if every present cell of the column (in every block) is
        an integer, else ``float64`` if every one is a number, else ``bool`` if every one is
        ``true``/``false`` in any case, else ``string``; ``float64`` for a column with no
        present cell (pandas' all-NaN column). Missing cells are :data:`NA_CELLS`.
    """
    candidates: dict[str, set[str]] = {}
    seen: dict[str, bool] = {}
    for table in tables:
        for name, col in zip(table.column_names, table.columns, strict=True):
            left = candidates.setdefault(name, {"int64", "double", "bool"})
            if left:
                candidates[name], present = _types_taken(col, left, missing(name))
                seen[name] = seen.get(name, False) or present
    types: dict[str, pa.DataType] = {}
    for name, left in candidates.items():
        if not seen.get(name):
            types[name] = pa.float64()
        elif "int64" in left:
            types[name] = pa.int64()
        elif "double" in left:
            types[name] = pa.float64()
        elif "bool" in left:
            types[name] = pa.bool_()
        else:
            types[name] = pa.string()
    return types


def typed_column(
    col: pa.ChunkedArray | pa.Array, type_: pa.DataType, missing: pa.Array = NA_CELLS_ARROW
) -> pa.ChunkedArray | pa.Array:
    """A text column as ``type_`` (from :func:`infer_csv_types`), missing cells as nulls."""
    text = as_text(col)
    is_missing = pc.is_in(text, value_set=missing)
    text = pc.if_else(is_missing, pa.scalar(None, pa.string()), text)
    if pa.types.is_boolean(type_):
        return pc.equal(pc.utf8_lower(text), "true")
    return pc.cast(text, type_)
