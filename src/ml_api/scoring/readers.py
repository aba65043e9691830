"""Readers of batch scoring's input: Arrow's streaming CSV reader, and pandas for the rest.

Arrow reads a CSV with every cell the text as written, in blocks; a file it reads differently
from pandas or not at all (duplicate or empty column names, ragged rows, bad UTF-8) raises
:class:`ArrowRefused` and is read by :func:`pandas_chunks` from the start. Parquet is read in
pyarrow batches.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from ml_api.scoring.formats import is_parquet
from ml_api.scoring.structure import check_file, check_header

ARROW_BLOCK_BYTES = 1 << 20
"""Bytes of CSV Arrow parses at a time (its default); memory is bounded by a few of them."""


class UnreadableParquet(ValueError):
    """A ``.parquet``/``.pq`` input that pyarrow cannot read (corrupt, truncated, not Parquet)."""


UNREADABLE_INPUT: tuple[type[Exception], ...] = (
    pd.errors.ParserError,
    UnicodeDecodeError,
    EOFError,
    UnreadableParquet,
    pa.ArrowException,
)
"""What reading an input file raises when the file is not what its name says (a malformed CSV,
bad UTF-8, a truncated ``.gz``, a corrupt or foreign ``.parquet``): ``ml-api predict`` reports
them as ``cannot read <input>: <reason>``, exit 1 (an empty CSV is ``pd.errors.EmptyDataError``,
reported apart)."""


def parquet_chunks(path: Path, rows: int) -> Iterator[pd.DataFrame]:
    """Read a Parquet file in chunks of ``rows``.

    Raises:
        UnreadableParquet: pyarrow cannot read it (pyarrow raises ``ArrowInvalid``, or an
            ``OSError`` such as "Couldn't deserialize thrift" for a corrupt footer), or the
            pandas metadata it carries is malformed (pyarrow's ``pandas_compat`` raises
            ``KeyError`` and the like).
        FileNotFoundError: ``path`` does not exist.
    """
    try:
        batches = pq.ParquetFile(path).iter_batches(batch_size=rows)
        while (batch := next(batches, None)) is not None:
            try:
                frame = batch.to_pandas()
            except (KeyError, TypeError, ValueError, IndexError) as exc:  # pandas_compat
                raise UnreadableParquet(
                    f"its pandas metadata is malformed ({type(exc).__name__}: {exc})"
                ) from exc
            yield frame
    except (FileNotFoundError, UnreadableParquet):
        raise
    except (pa.ArrowException, OSError) as exc:
        reason = " ".join(str(exc).split())  # one line, whatever pyarrow wrote
        raise UnreadableParquet(f"not a readable Parquet file ({reason})") from exc


class ArrowRefused(Exception):
    """Arrow's CSV reader refused the file (ragged rows, bad UTF-8...): pandas reads it instead.

    ``rows_reported`` is set to the rows whose callbacks already ran when scoring stopped.
    """

    rows_reported = 0


def open_arrow_csv(path: Path, compression: str | None) -> pacsv.CSVStreamingReader:
    """Arrow's streaming CSV reader, every cell the text written (as :func:`pandas_chunks` reads).

    Raises:
        ArrowRefused: The file's header or first block is something Arrow reads differently
            from pandas (duplicate or empty column names) or cannot read.
    """
    parse = pacsv.ParseOptions(newlines_in_values=True)
    read = pacsv.ReadOptions(block_size=ARROW_BLOCK_BYTES)
    try:
        with pa.input_stream(str(path), compression=compression) as probe:
            names = pacsv.open_csv(probe, read_options=read, parse_options=parse).schema.names
        check_header(names, path)  # a repeated or blank name: refused, as pandas would rename it
        convert = pacsv.ConvertOptions(
            column_types={name: pa.string() for name in names},
            null_values=[],
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        )
        stream = pa.input_stream(str(path), compression=compression)
        return pacsv.open_csv(
            stream, read_options=read, parse_options=parse, convert_options=convert
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise ArrowRefused(str(exc)) from exc


def arrow_csv_tables(reader: pacsv.CSVStreamingReader, rows: int) -> Iterator[pa.Table]:
    """``reader``'s rows as tables of exactly ``rows`` rows (the last may be shorter).

    Raises:
        ArrowRefused: A later block is something Arrow cannot read (pandas then reads the file).
    """
    pending: list[pa.RecordBatch] = []
    held = 0
    while True:
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            break
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise ArrowRefused(str(exc)) from exc
        pending.append(batch)
        held += batch.num_rows
        if held < rows:
            continue
        table = pa.Table.from_batches(pending, schema=reader.schema)
        start = 0
        while held - start >= rows:
            yield table.slice(start, rows)
            start += rows
        rest = table.slice(start)
        pending = rest.to_batches()
        held = rest.num_rows
    if held:
        yield pa.Table.from_batches(pending, schema=reader.schema)


def pandas_chunks(path: Path, rows: int) -> Iterator[pd.DataFrame]:
    """Read the file in chunks: Parquet with its types; CSV as text cells exactly as written.

    CSV cells are not type-guessed and not NA-parsed, so the output repeats the input columns
    unchanged: an integer column with a gap stays integers, ``02134`` keeps its zero.

    Raises:
        InvalidInput: A CSV's structure is broken (:func:`~ml_api.scoring.structure.check_file`:
            rows with more or fewer fields than the header, a repeated or blank column name),
            found before any row is read.
        UnreadableParquet: See :func:`parquet_chunks`.
    """
    if is_parquet(path):
        yield from parquet_chunks(path, rows)
        return
    check_file(path)
    with pd.read_csv(
        path, chunksize=rows, dtype=str, keep_default_na=False, index_col=False
    ) as reader:
        yield from reader
