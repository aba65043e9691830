"""Batch scoring: a CSV or Parquet file in, the same rows with predictions out, through the core.

Rows go through the same validation as HTTP requests (``ml_api.core.model.validation``), so a
file that scores here would be accepted by the API and vice versa; problems are reported by
1-based data row number (the header is not counted). The input's columns, used by the model or
not (ids, the target), are carried through to the output: into a CSV as written (cells are read
as text, never re-typed); into Parquet typed (see below); Parquet columns keep their types.

Speed: each chunk is first checked column-wise, vectorised (missing cells, numbers that parse and
are finite, known categories). A chunk that passes goes to the model as arrays; a chunk with any
doubt goes through the row-by-row validation, which either names every problem (rows, columns,
allowed values, exactly as the API words them) or, for a doubt that was no problem, scores it.

The parts are in :mod:`ml_api.scoring`: file formats and compression by name
(:mod:`~ml_api.scoring.formats`), the readers (Arrow's streaming CSV reader; pandas for what
Arrow reads differently or not at all; Parquet in pyarrow batches:
:mod:`~ml_api.scoring.readers`), the cell rules (:mod:`~ml_api.scoring.cells`), the
vectorised check through the core's one columnar check (:mod:`~ml_api.scoring.checks`), the
Parquet types of a CSV's columns (:mod:`~ml_api.scoring.types`) and the writer thread
(:mod:`~ml_api.scoring.writer`). This module puts them together: read a block, check it, score
it chunk by chunk, write it; the output is renamed into place only when every row scored, so a
failed run leaves no partial output; it gets the mode a plain ``open()`` would give a new file
(``0o666`` less the umask). Memory is bounded by a block, a few chunks queued for the writer
and Arrow's read-ahead, whatever the file's size.

CSV in, Parquet out: the input's columns get the types ``pandas.read_csv`` would give them,
decided over the whole file before scoring (:func:`~ml_api.scoring.types.infer_csv_types`).
CSV output repeats the cells as written.

The model's schema, not pandas' guess, decides how each feature cell is taken: a categorical
feature's cell is its text (``01067`` keeps its leading zero, digit-only codes stay codes), a
feature that held booleans in training reads ``true``/``false`` in any case as
``"True"``/``"False"`` (as training saw them), and numeric features' cells are numbers, as are
the cells of a categorical feature over numeric codes (an imported model whose encoder was fitted
on integers: ``02134`` is the code ``2134``, an unseen code is refused). So any
file that trained a model scores with it. A file with a header and no rows writes a header-only
output and reports 0 rows.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd
import pyarrow as pa

from ml_api.core.errors import InvalidInput, Problem
from ml_api.core.model.columns import TextCells, reads_as_text
from ml_api.core.model.ranges import OutOfRange
from ml_api.core.runtimes.predictor import PredictionResult
from ml_api.core.service import PredictionService
from ml_api.scoring.cells import text_records, typed_records
from ml_api.scoring.checks import (
    arrow_block_check,
    fast_arrow_columns,
    fast_columns,
    missing_in,
    text_cells,
)
from ml_api.scoring.encoding import encode_csv_columns
from ml_api.scoring.formats import (
    arrow_csv_compression,
    count_rows,
    is_parquet,
    new_file_mode,
    output_compression,
)
from ml_api.scoring.readers import (
    UNREADABLE_INPUT as UNREADABLE_INPUT,  # for ml-api predict's one-line refusals
)
from ml_api.scoring.readers import ArrowRefused, arrow_csv_tables, open_arrow_csv, pandas_chunks
from ml_api.scoring.types import infer_csv_types
from ml_api.scoring.writer import Writer

__all__ = [
    "count_rows",
    "encode_csv_columns",
    "is_parquet",
    "output_compression",
    "score_chunk",
    "score_file",
]

DEFAULT_CHUNK_ROWS = 5_000
"""Rows read, validated and predicted at a time: bounds memory for files of any size."""

CHECK_BLOCK_ROWS = 100_000
"""Rows of a CSV read and checked (vectorised) at a time, then scored chunk by chunk: one check
per block costs less than one per chunk, and memory stays bounded by the block."""


def cells_of(service: PredictionService, na_values: Sequence[str] | None = None) -> TextCells:
    """How a model's CSV scoring files are read: ``na_values`` if given, else the card's tokens.

    Args:
        service: The loaded service (its card's ``missing_values.tokens``; pandas' defaults for
            a card without them).
        na_values: ``--na-values``; ``None``: the card's.

    Returns:
        The tokens; each feature's column reads
        :func:`~ml_api.core.model.columns.missing_cells` of them as missing.
    """
    if na_values is not None:
        return TextCells(frozenset(na_values))
    return text_cells(service.artifact.metadata)


def score_chunk(
    service: PredictionService,
    chunk: pd.DataFrame,
    first_row: int,
    text: bool = True,
    cells: TextCells | None = None,
) -> tuple[pd.DataFrame, OutOfRange | None]:
    """Score one chunk: the vectorised check, else the row-by-row validation; then the model.

    Args:
        service: The loaded prediction service.
        chunk: Shape ``(n_rows, n_columns)``, every feature column present.
        first_row: The 1-based data row number of ``chunk``'s first row (for messages).
        text: The cells are CSV text as written (else typed values, from Parquet).
        cells: How CSV text is read (:func:`cells_of`; ``None``: the card's tokens).

    Returns:
        ``(scored, out_of_range)``: ``chunk``'s columns unchanged, then ``prediction`` and, for
        classifiers, one ``probability_<class>`` column per class; and the values outside the
        training range under the ``warn`` policy (else ``None``).

    Raises:
        InvalidInput: A row breaks the schema (every problem of the chunk, up to 50, by row and
            column), or the model refused the values;
            :class:`~ml_api.core.model.ranges.OutOfRangeInput` under the ``reject`` policy.
    """
    cells = cells or text_cells(service.artifact.metadata)
    columns = fast_columns(chunk, service.schema, text, cells)
    if columns is None:
        if text:
            records = text_records(chunk, service.schema, cells.missing)
        else:
            records = typed_records(chunk, service.schema)
        result = service.predict_rows(records, first_index=first_row)
    else:
        result = service.predict_validated(
            cast("list[list[Any]]", columns), len(chunk), first_index=first_row
        )
    out = chunk.copy()
    for column, values in encode_csv_columns(result).items():
        out[column] = values
    return out, result.out_of_range


def score_arrow_chunk(
    service: PredictionService,
    chunk: pa.Table,
    first_row: int,
    columns: list[np.ndarray] | None = None,
    cells: TextCells | None = None,
) -> tuple[pa.Table, OutOfRange | None]:
    """:func:`score_chunk` for a CSV chunk read by Arrow: the input columns stay Arrow strings.

    Args:
        service: The loaded prediction service.
        chunk: Shape ``(n_rows, n_columns)``, string columns, every feature column present.
        first_row: The 1-based data row number of ``chunk``'s first row (for messages).
        columns: The chunk's feature columns already checked (:func:`arrow_block_check` with no
            doubt on these rows); ``None`` checks them here.
        cells: How CSV text is read (:func:`cells_of`; ``None``: the card's tokens).

    Returns:
        ``(scored, out_of_range)`` as :func:`score_chunk` returns them, ``scored`` as a table.

    Raises:
        InvalidInput: As :func:`score_chunk` (the same row path names the problems).
    """
    cells = cells or text_cells(service.artifact.metadata)
    if columns is None:
        columns = fast_arrow_columns(chunk, service.schema, cells)
    if columns is None:
        features = chunk.select(list(service.schema.names)).to_pandas()
        records = text_records(features, service.schema, cells.missing)
        result = service.predict_rows(records, first_index=first_row)
    else:
        result = service.predict_validated(
            cast("list[list[Any]]", columns), chunk.num_rows, first_index=first_row
        )
    out = chunk
    for column, values in encode_csv_columns(result).items():
        array = pa.array(values, from_pandas=True)  # NaN as null: an empty cell, as before
        if column in out.column_names:  # the input has it: replaced, as pandas did
            out = out.set_column(out.column_names.index(column), column, array)
        else:
            out = out.append_column(column, array)
    return out, result.out_of_range


def _csv_types(
    service: PredictionService, input_path: Path, arrow: bool, cells: TextCells
) -> dict[str, pa.DataType] | None:
    """The input columns' Parquet types for a CSV input (``None`` for Parquet input): a pass.

    Reads the file as the scoring pass will (``arrow``: Arrow's streaming reader, else
    pandas), so a file either reader refuses fails here the same way, before any row is scored.

    Raises:
        ArrowRefused: As :func:`_arrow_scored_chunks` (``arrow`` only).
        InvalidInput: A feature column is missing.
    """
    if is_parquet(input_path):
        return None
    tables: Iterator[pa.Table]
    if arrow:
        compression = arrow_csv_compression(input_path)
        if compression is False:
            raise ArrowRefused("read by pandas")
        reader = open_arrow_csv(input_path, cast("str | None", compression))
        _check_columns(input_path, reader.schema.names, service.schema.names)
        tables = arrow_csv_tables(reader, CHECK_BLOCK_ROWS)
    else:

        def from_pandas() -> Iterator[pa.Table]:
            for chunk in pandas_chunks(input_path, CHECK_BLOCK_ROWS):
                _check_columns(input_path, list(chunk.columns), service.schema.names)
                yield pa.Table.from_pandas(chunk, preserve_index=False, nthreads=1)

        tables = from_pandas()
    added = set(_output_columns(service))  # replaced by the model's output: typed by it
    missing = missing_in(cells, service.schema)
    text = {f.name for f in service.schema.features if reads_as_text(f)}  # 02134 stays text
    return {
        k: pa.string() if k in text else v
        for k, v in infer_csv_types(tables, missing).items()
        if k not in added
    }


def score_file(
    service: PredictionService,
    input_path: Path,
    output_path: Path,
    *,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    on_chunk: Callable[[int], None] | None = None,
    on_out_of_range: Callable[[OutOfRange], None] | None = None,
    na_values: Sequence[str] | None = None,
) -> int:
    """Score every row of a CSV or Parquet file and write the result atomically.

    The output has the input's columns, then ``prediction`` and, for classifiers, one
    ``probability_<class>`` column per class. Its format follows its name (see the module
    docstring); it is written to a temporary file beside it and renamed into place only when
    every row scored, with mode ``0o666`` less the umask (as ``open()`` makes a new file). A CSV
    input written as Parquet gets typed columns (:func:`infer_csv_types`, one pass before
    scoring).

    Args:
        service: The loaded prediction service.
        input_path: CSV (header row; optionally compressed) or Parquet, holding at least every
            feature column.
        output_path: Where to write the scored file.
        chunk_rows: Rows read, validated and predicted at a time (memory is bounded by it).
        on_chunk: Called with the number of rows after each chunk (progress bars).
        on_out_of_range: Called with each chunk's values outside the training range, under
            ``ML_API_OUT_OF_RANGE=warn`` (rows numbered from 1); ``ml-api predict`` sums them
            into one line.
        na_values: A CSV's missing-value tokens (``--na-values``); ``None``: the card's
            (:func:`cells_of`). A category of the column, or a text column's cell, is never
            missing.

    Returns:
        The number of rows scored.

    Raises:
        InvalidInput: The output's name asks for a compression that is not written
            (:func:`output_compression`; nothing is read or written), a feature column is
            missing, or a row breaks the schema (rows numbered from 1; every problem in the
            failing chunk is listed);
            :class:`~ml_api.core.model.ranges.OutOfRangeInput` a value is outside the training range
            under ``ML_API_OUT_OF_RANGE=reject``.
        FileNotFoundError: ``input_path`` does not exist.
    """
    output_path = Path(output_path)
    compression = output_compression(output_path)  # refused before anything is read or written
    parquet_out = is_parquet(output_path)
    fd, tmp_name = tempfile.mkstemp(
        prefix=".scoring-", suffix=output_path.suffix or ".csv", dir=output_path.parent
    )
    os.close(fd)
    tmp = Path(tmp_name)
    cells = cells_of(service, na_values)
    writer = Writer(tmp, parquet_out, compression)
    writer.missing = missing_in(cells, service.schema)
    reported = 0  # rows whose callbacks ran (a restart with pandas does not repeat them)
    try:
        try:
            if parquet_out:
                writer.types = _csv_types(service, input_path, True, cells)
            chunks = _arrow_scored_chunks(service, input_path, chunk_rows, cells)
            total, reported = _write_all(chunks, writer, reported, on_chunk, on_out_of_range)
        except ArrowRefused as refused:
            reported = refused.rows_reported
            # An odd file Arrow reads differently from pandas, or not at all: pandas reads it
            # from the start, as it always did (its result or its error message, unchanged).
            writer.close(discard=True)
            writer = Writer(tmp, parquet_out, compression)
            writer.missing = missing_in(cells, service.schema)
            if parquet_out:
                writer.types = _csv_types(service, input_path, False, cells)
            chunks = _pandas_scored_chunks(service, input_path, chunk_rows, cells)
            total, reported = _write_all(chunks, writer, reported, on_chunk, on_out_of_range)
        writer.close()
        os.chmod(tmp, new_file_mode())  # mkstemp made it 0600; a new file is 0666 & ~umask
        os.replace(tmp, output_path)
    finally:
        writer.close(discard=True)  # after a failure: the failure is what is reported
        tmp.unlink(missing_ok=True)
    return total


_Scored = tuple[pd.DataFrame | pa.Table, OutOfRange | None, int]
"""One scored chunk: its output rows, its out-of-range values (``warn``), its row count."""


def _write_all(
    chunks: Iterator[_Scored],
    writer: Writer,
    reported: int,
    on_chunk: Callable[[int], None] | None,
    on_out_of_range: Callable[[OutOfRange], None] | None,
) -> tuple[int, int]:
    """Write every scored chunk; run the callbacks for rows past ``reported``.

    Returns:
        ``(rows written, rows reported)``.

    Raises:
        ArrowRefused: Arrow could not read on (the rows reported so far are in its ``rows``).
    """
    total = 0
    try:
        for scored, out_of_range, n in chunks:
            writer.write(scored)
            total += n
            if total > reported:  # chunks line up on both readers: reported ones are skipped
                if on_out_of_range is not None and out_of_range is not None:
                    on_out_of_range(out_of_range)
                if on_chunk:
                    on_chunk(n)
                reported = total
    except ArrowRefused as exc:
        exc.rows_reported = reported
        raise
    return total, reported


def _check_columns(input_path: Path, columns: Sequence[str], names: Sequence[str]) -> None:
    """Raise :class:`InvalidInput` naming the feature columns ``columns`` lacks."""
    missing = [n for n in names if n not in columns]
    if missing:
        raise InvalidInput(
            f"{input_path} lacks feature columns: {', '.join(missing)}",
            [Problem("missing column", field=n) for n in missing],
        )


def _arrow_scored_chunks(
    service: PredictionService, input_path: Path, chunk_rows: int, cells: TextCells
) -> Iterator[_Scored]:
    """Score a CSV read by Arrow, chunk by chunk (cells stay Arrow strings end to end).

    Raises:
        ArrowRefused: A Parquet file, a compression Arrow does not stream, or a CSV Arrow
            reads differently from pandas or not at all (the caller then reads it with pandas).
    """
    compression = arrow_csv_compression(input_path)
    if is_parquet(input_path) or compression is False:
        raise ArrowRefused("read by pandas")
    reader = open_arrow_csv(input_path, cast("str | None", compression))
    _check_columns(input_path, reader.schema.names, service.schema.names)
    total = 0
    block_rows = chunk_rows * max(1, CHECK_BLOCK_ROWS // chunk_rows)
    for block in arrow_csv_tables(reader, block_rows):
        checked = arrow_block_check(block, service.schema, cells)
        for start in range(0, block.num_rows, chunk_rows):
            chunk = block.slice(start, chunk_rows)
            stop = start + chunk.num_rows
            columns = None
            if checked is not None and not checked[1][start:stop].any():
                columns = [values[start:stop] for values in checked[0]]
            scored, out_of_range = score_arrow_chunk(service, chunk, total + 1, columns, cells)
            total += chunk.num_rows
            yield scored, out_of_range, chunk.num_rows
    if total == 0:  # a header and no rows: a header-only output, 0 rows scored
        header = [*reader.schema.names, *_output_columns(service)]
        yield pd.DataFrame(columns=header, dtype=object), None, 0


def _pandas_scored_chunks(
    service: PredictionService, input_path: Path, chunk_rows: int, cells: TextCells
) -> Iterator[_Scored]:
    """Score a Parquet file, or a CSV read by pandas, chunk by chunk."""
    total = 0
    for chunk in pandas_chunks(input_path, chunk_rows):
        _check_columns(input_path, list(chunk.columns), service.schema.names)
        if chunk.empty:  # a header and no rows: a header-only output, 0 rows scored
            if total == 0:
                columns = [*chunk.columns, *_output_columns(service)]
                yield pd.DataFrame(columns=columns, dtype=object), None, 0
            continue
        scored, out_of_range = score_chunk(
            service, chunk, total + 1, text=not is_parquet(input_path), cells=cells
        )
        total += len(chunk)
        yield scored, out_of_range, len(chunk)


def _output_columns(service: PredictionService) -> list[str]:
    """Names of the columns scoring adds (``prediction``, ``probability_<class>``...)."""
    predictor = service.predictor
    classes = tuple(predictor.classes) if predictor.is_classifier else ()
    empty = PredictionResult(
        labels=np.empty(0, dtype=object),
        probabilities=np.empty((0, len(classes))) if predictor.has_probabilities else None,
        classes=classes,
    )
    return list(encode_csv_columns(empty))


score_csv = score_file
"""The earlier name of :func:`score_file` (CSV was its only format)."""
