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

A CSV is read by Arrow's streaming reader (``pyarrow.csv.open_csv``, every cell a string as
written) and stays in Arrow end to end: blocks of :data:`CHECK_BLOCK_ROWS` rows are checked with
``pyarrow.compute`` at once (a per-row doubt mask), scored chunk by chunk, and the input columns
are written back without a pandas round trip, by a writer thread. A file Arrow reads differently
from pandas or not at all (duplicate or empty column names, ragged rows, bad UTF-8, ``.zip``,
``.xz``, ``.tar.*``) is read by pandas from the start, as before, with the same results and
messages. Parquet is read in pyarrow batches and checked through pandas. Memory is bounded by a
block, a few chunks queued for the writer and Arrow's read-ahead, whatever the file's size.

Formats, by file name: ``.parquet``/``.pq`` is Parquet (read and written with pyarrow); anything
else is CSV, compressed if its name says so (``.gz``, ``.bz2``, ``.zip``, ``.xz``, ``.zst``, as
pandas infers it). The output's name picks its format the same way: ``.parquet``/``.pq`` is
Parquet, ``.gz``/``.bz2``/``.zst`` is CSV compressed with gzip (level :data:`GZIP_LEVEL`), bzip2
or zstd (Arrow's streams), any other compression suffix (``.zip``, ``.xz``, ``.tar``...) is
refused before anything is read or written, and every other name is plain CSV. The output is
written to a temporary file and renamed into place only when every row scored, so a failed run
leaves no partial output; it gets the mode a plain ``open()`` would give a new file
(``0o666`` less the umask).

CSV in, Parquet out: the input's columns (features included) get the types ``pandas.read_csv``
would give them, decided over the whole file before scoring by a first, light pass over the
cells as text (:func:`infer_csv_types`): a column is ``int64`` if every present cell is an
integer, else ``double`` if every one is a number, else ``bool`` if every one is
``true``/``false`` (any case), else ``string``; a column with no present cell is ``double``
(pandas' all-NaN column). Missing cells (:data:`NA_CELLS`) are nulls. One type per column for
the whole file, so a decimal in the last rows makes the column ``double`` from its first row.
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

import gzip
import os
import queue
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from ml_api.core.errors import InvalidInput, Problem
from ml_api.core.model.ranges import OutOfRange
from ml_api.core.model.schema import Feature, FeatureKind, FeatureSchema
from ml_api.core.runtimes.predictor import PredictionResult, to_jsonable
from ml_api.core.service import PredictionService

DEFAULT_CHUNK_ROWS = 5_000
"""Rows read, validated and predicted at a time: bounds memory for files of any size."""

ARROW_BLOCK_BYTES = 1 << 20
"""Bytes of CSV Arrow parses at a time (its default); memory is bounded by a few of them."""

CHECK_BLOCK_ROWS = 100_000
"""Rows of a CSV read and checked (vectorised) at a time, then scored chunk by chunk: one check
per block costs less than one per chunk, and memory stays bounded by the block."""


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

PARQUET_SUFFIXES = (".parquet", ".pq")
"""File name endings read and written as Parquet; any other name is CSV."""


def is_parquet(path: Path) -> bool:
    """Whether ``path`` is read or written as Parquet (by name: :data:`PARQUET_SUFFIXES`)."""
    return Path(path).suffix.lower() in PARQUET_SUFFIXES


OUTPUT_COMPRESSIONS = {".gz": "gzip", ".bz2": "bz2", ".zst": "zstd"}
"""CSV output compressions by the output name's last suffix (pyarrow's compressed streams)."""

GZIP_LEVEL = 6
"""zlib level of a ``.gz`` output: the ``gzip`` command's default (measured on a 37 MB CSV:
2.1 s and 9.60 MB at 6, 5.2 s and 9.55 MB at 9, 0.5 s and 12.4 MB at 1)."""

REFUSED_OUTPUT_SUFFIXES = frozenset(
    [".zip", ".xz", ".tar", ".tgz", ".tbz", ".tbz2", ".txz", ".lz4", ".lzma", ".7z", ".br",
     ".z", ".snappy"]
)  # fmt: skip
"""Output name suffixes saying a compression that is not written: refused, not ignored."""


def output_compression(path: Path) -> str | None:
    """The compression the output's name asks for (``gzip``, ``bz2``, ``zstd``) or ``None``.

    Args:
        path: The output file's name.

    Returns:
        pyarrow's codec name for a CSV output named ``*.gz``/``*.bz2``/``*.zst``, else ``None``
        (plain CSV, or Parquet, which compresses its own pages).

    Raises:
        InvalidInput: The name asks for something that would not be honoured: a compression
            not written (``.zip``, ``.xz``, ``.tar``...), a compressed Parquet name
            (``.parquet.gz``), or a codec this pyarrow lacks. Raised before anything is read
            or written; ``ml-api predict`` prints it as one line and exits 1.
    """
    path = Path(path)
    suffixes = [s.lower() for s in path.suffixes]
    last = suffixes[-1] if suffixes else ""
    supported = ".csv, .csv.gz, .csv.bz2, .csv.zst, .parquet or .pq"
    # The last suffix says the compression (``run.z.csv`` is plain CSV); ``.tar.gz``: a tar.
    refused = last if last in REFUSED_OUTPUT_SUFFIXES else None
    if last in OUTPUT_COMPRESSIONS and len(suffixes) > 1 and suffixes[-2] == ".tar":
        refused = ".tar"
    if refused is not None:
        raise InvalidInput(
            f"cannot write {path}: {refused} output is not supported; name it {supported}"
        )
    codec = OUTPUT_COMPRESSIONS.get(last)
    if codec is None:
        return None
    if len(suffixes) > 1 and suffixes[-2] in PARQUET_SUFFIXES:
        raise InvalidInput(
            f"cannot write {path}: Parquet compresses itself, {last} is not added; "
            f"name it {supported}"
        )
    if not pa.Codec.is_available(codec):
        raise InvalidInput(f"cannot write {path}: this pyarrow has no {codec}; name it {supported}")
    return codec


def _new_file_mode() -> int:
    """``0o666`` less the process's umask: the mode ``open()`` gives a new file."""
    umask = os.umask(0o022)  # reading the umask means setting it: set it straight back
    os.umask(umask)
    return 0o666 & ~umask


NA_CELLS = frozenset(
    ["", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
     "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"]
)  # fmt: skip
"""Cells read as missing: pandas' default ``na_values``, as training reads its CSV."""


def _csv_number(value: str) -> Any:
    """A numeric feature's cell as a float; text that is no number is left for validation."""
    try:
        return float(value)
    except ValueError:
        return value


def _typed_records(chunk: pd.DataFrame, schema: FeatureSchema) -> list[dict[str, Any]]:
    """A typed (Parquet) chunk's feature values as JSON-like instances; nulls become ``None``."""
    features = chunk[list(schema.names)].astype(object)
    return cast("list[dict[str, Any]]", features.where(features.notna(), None).to_dict("records"))


def _records(chunk: pd.DataFrame, schema: FeatureSchema) -> list[dict[str, Any]]:
    """The chunk's feature cells (strings as written) as JSON-like instances for validation.

    Missing cells become ``None``; numeric features' cells become floats where they parse;
    categorical features keep the text as written (``02134`` stays a zip code).
    """
    numeric = {f.name for f in schema.features if f.kind is FeatureKind.NUMERIC or f.is_coded}
    boolean = {f.name for f in schema.features if f.is_boolean}
    columns = {name: chunk[name].tolist() for name in schema.names}
    records: list[dict[str, Any]] = [{} for _ in range(len(chunk))]
    for name, cells in columns.items():
        for record, cell in zip(records, cells, strict=True):
            if cell in NA_CELLS:
                record[name] = None
            elif name in numeric:
                record[name] = _csv_number(cell)
            elif name in boolean:
                record[name] = _csv_boolean(cell)
            else:
                record[name] = cell
    return records


def _csv_boolean(value: Any) -> Any:
    """Read ``true``/``false`` in any case (as pandas did in training) as ``"True"``/``"False"``."""
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().capitalize()
    return value


def _fast_text_column(col: pd.Series, f: Feature, allowed: frozenset[str]) -> np.ndarray | None:
    """A CSV column of text cells checked vectorised, as :func:`_records` plus the validator would.

    Missing cells are :data:`NA_CELLS`; numeric cells are parsed by Arrow's string-to-float cast
    (stricter than ``float()``: what it refuses goes to the row path, which decides; what it
    accepts, ``float()`` reads as the same number) and must be finite; categorical cells must be
    known.
    """
    missing = col.isin(NA_CELLS).to_numpy()
    if missing.any() and not f.nullable:
        return None
    present = ~missing
    if f.kind is FeatureKind.NUMERIC or f.is_coded:
        text = pa.array(col, type=pa.string())  # pandas' Arrow-backed strings: no copy
        if missing.any():
            text = text.filter(pa.array(present))
        try:
            parsed = pc.cast(text, pa.float64()).to_numpy(zero_copy_only=False)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return None  # text that is no number: the row path names it
        if not np.isfinite(parsed).all():
            return None
        if f.codes is not None and not np.isin(parsed, np.asarray(f.codes, dtype=float)).all():
            return None  # an unseen code: the row path names it
        values = np.full(len(col), np.nan)
        values[present] = parsed
        return values
    cells = col.to_numpy(dtype=object)
    if not col[present].isin(allowed).all():
        return None
    cells[missing] = np.nan
    return cells


def _fast_column(col: pd.Series, f: Feature, allowed: frozenset[str]) -> np.ndarray | None:
    """One typed (Parquet) column checked vectorised; ``None`` when a cell needs the row path.

    Returns exactly what ``Validator.validate_columns`` returns for a column it accepts:
    ``float64`` with ``NaN`` for null (numeric), or ``object`` strings with ``NaN`` (categorical).
    """
    dtype = col.dtype
    if f.kind is FeatureKind.NUMERIC or f.is_coded:
        # Only real number columns: booleans are refused by the policy, and text (one odd cell
        # made pandas read the column as strings) is converted and judged cell by cell.
        if pd.api.types.is_bool_dtype(dtype) or not pd.api.types.is_numeric_dtype(dtype):
            return None
        values = col.to_numpy(dtype="float64", na_value=np.nan)
        nan = np.isnan(values)
        if (not f.nullable and nan.any()) or np.isinf(values).any():
            return None
        if f.codes is not None and not np.isin(values[~nan], np.asarray(f.codes, float)).all():
            return None  # an unseen code: the row path names it
        return values
    if not (
        pd.api.types.is_object_dtype(dtype)
        or pd.api.types.is_string_dtype(dtype)
        or isinstance(dtype, pd.CategoricalDtype)
    ):
        return None  # numbers or booleans where strings are expected: refused, row by row
    values = col.to_numpy(dtype=object)
    missing = col.isna().to_numpy()
    if missing.any():
        if not f.nullable:
            return None
        values[missing] = np.nan
        known = col[~missing].isin(allowed).all()
    else:
        known = col.isin(allowed).all()
    return values if known else None


def fast_columns(
    chunk: pd.DataFrame, schema: FeatureSchema, text: bool = True
) -> list[np.ndarray] | None:
    """Validate a chunk column-wise, vectorised over its rows.

    Args:
        chunk: Shape ``(n_rows, >= n_features)``, every feature column present.
        schema: The model's feature schema.
        text: The cells are CSV text as written (else typed values, from Parquet).

    Returns:
        ``n_features`` arrays of ``n_rows`` values, as ``Validator.validate_columns`` would
        return them, or ``None`` when some cell may break the schema (then the caller runs the
        row-by-row validation, which names each problem).
    """
    out = []
    for f in schema.features:
        allowed = frozenset(f.categories or ())
        check = _fast_text_column if text else _fast_column
        values = check(chunk[f.name], f, allowed)
        if values is None:
            return None
        out.append(values)
    return out


ARROW_COMPRESSED = {".gz": "gzip", ".bz2": "bz2", ".zst": "zstd"}
"""CSV compressions read by Arrow's own streams (``.zip``, ``.xz``, ``.tar.*``: by pandas)."""

PANDAS_ONLY_SUFFIXES = (".zip", ".xz", ".tar")
"""Compressed CSV that Arrow cannot stream: read by pandas."""


class _ArrowRefused(Exception):
    """Arrow's CSV reader refused the file (ragged rows, bad UTF-8...): pandas reads it instead.

    ``rows_reported`` is set to the rows whose callbacks already ran when scoring stopped.
    """

    rows_reported = 0


def _arrow_csv_compression(path: Path) -> str | bool | None:
    """Arrow's compression name for ``path``, ``None`` (plain), or ``False`` (pandas reads it)."""
    suffixes = [s.lower() for s in Path(path).suffixes]
    if any(s in PANDAS_ONLY_SUFFIXES for s in suffixes):
        return False
    last = suffixes[-1] if suffixes else ""
    return ARROW_COMPRESSED.get(last)


def _open_arrow_csv(path: Path, compression: str | None) -> pacsv.CSVStreamingReader:
    """Arrow's streaming CSV reader with every cell as the text written (as ``_chunks`` reads).

    Raises:
        _ArrowRefused: The file's header or first block is something Arrow reads differently
            from pandas (duplicate or empty column names) or cannot read.
    """
    parse = pacsv.ParseOptions(newlines_in_values=True)
    read = pacsv.ReadOptions(block_size=ARROW_BLOCK_BYTES)
    try:
        with pa.input_stream(str(path), compression=compression) as probe:
            names = pacsv.open_csv(probe, read_options=read, parse_options=parse).schema.names
        if len(set(names)) != len(names) or "" in names:
            raise _ArrowRefused("pandas renames duplicate or empty column names")
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
        raise _ArrowRefused(str(exc)) from exc


def _arrow_csv_tables(reader: pacsv.CSVStreamingReader, rows: int) -> Iterator[pa.Table]:
    """``reader``'s rows as tables of exactly ``rows`` rows (the last may be shorter).

    Raises:
        _ArrowRefused: A later block is something Arrow cannot read (pandas then reads the file).
    """
    pending: list[pa.RecordBatch] = []
    held = 0
    while True:
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            break
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise _ArrowRefused(str(exc)) from exc
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


_NA_CELLS_ARROW = pa.array(sorted(NA_CELLS), type=pa.string())


def _arrow_column_check(
    col: pa.ChunkedArray | pa.Array, f: Feature
) -> tuple[np.ndarray, np.ndarray] | None:
    """One column of CSV text cells (Arrow strings) checked as :func:`_fast_text_column` does.

    Returns:
        ``(values, doubt)``: ``values`` as :func:`_fast_text_column` returns them (``float64``
        with ``NaN`` where missing, or ``object`` strings with ``NaN`` where missing) and
        ``doubt``, a boolean per row: the cell may break the schema (missing where not
        nullable, no finite number, an unknown category), so its rows need the row path.
        ``None`` when the column cannot be judged this way at all (a cell Arrow cannot parse
        as a number, categories that are not text): then every row needs a closer look.
    """
    missing = pc.is_in(col, value_set=_NA_CELLS_ARROW)
    any_missing = pc.any(missing).as_py()
    missing_np = missing.to_numpy(zero_copy_only=False) if any_missing else None
    if f.kind is FeatureKind.NUMERIC:
        text = pc.if_else(missing, pa.scalar(None, pa.string()), col) if any_missing else col
        try:
            parsed = pc.cast(text, pa.float64())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return None  # text that is no number: the row path names it
        values = parsed.to_numpy(zero_copy_only=False)  # nulls (missing cells) become NaN
        doubt = ~np.isfinite(values)
        if missing_np is not None and f.nullable:
            doubt &= ~missing_np
        return values, doubt
    categories = tuple(f.categories or ())
    if not all(isinstance(c, str) for c in categories):
        return None
    index = pc.index_in(col, value_set=pa.array(categories, type=pa.string()))
    known = index.fill_null(len(categories)).to_numpy(zero_copy_only=False)
    if missing_np is not None:
        known = np.where(missing_np, len(categories), known)  # missing, whatever the categories
    doubt = known == len(categories)  # unknown or missing
    if missing_np is not None and f.nullable:
        doubt &= ~missing_np
    lookup = np.empty(len(categories) + 1, dtype=object)
    lookup[: len(categories)] = categories
    lookup[-1] = np.nan
    return lookup[known], doubt


def arrow_block_check(
    table: pa.Table, schema: FeatureSchema
) -> tuple[list[np.ndarray], np.ndarray] | None:
    """Check a block of CSV rows read by Arrow column-wise, vectorised, once for all its chunks.

    Args:
        table: Shape ``(n_rows, >= n_features)``, string columns, every feature present.
        schema: The model's feature schema.

    Returns:
        ``(columns, doubt)``: ``n_features`` arrays of ``n_rows`` values, exactly as
        :func:`fast_columns` returns them for the same cells, and a boolean per row, true where
        a cell may break the schema; a chunk of the block with no doubtful row is valid as
        ``columns`` sliced to it. ``None`` when some column cannot be judged this way (then
        :func:`fast_arrow_columns` judges each chunk).
    """
    out = []
    doubt = np.zeros(table.num_rows, dtype=bool)
    for f in schema.features:
        checked = _arrow_column_check(table.column(f.name), f)
        if checked is None:
            return None
        out.append(checked[0])
        doubt |= checked[1]
    return out, doubt


def fast_arrow_columns(table: pa.Table, schema: FeatureSchema) -> list[np.ndarray] | None:
    """:func:`fast_columns` for a chunk read by Arrow (every cell the text as written).

    Args:
        table: Shape ``(n_rows, >= n_features)``, string columns, every feature present.
        schema: The model's feature schema.

    Returns:
        ``n_features`` arrays of ``n_rows`` values, exactly as :func:`fast_columns` returns for
        the same cells, or ``None`` when some cell may break the schema.
    """
    checked = arrow_block_check(table, schema)
    if checked is None or checked[1].any():
        return None
    return checked[0]


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


def score_chunk(
    service: PredictionService, chunk: pd.DataFrame, first_row: int, text: bool = True
) -> tuple[pd.DataFrame, OutOfRange | None]:
    """Score one chunk: the vectorised check, else the row-by-row validation; then the model.

    Args:
        service: The loaded prediction service.
        chunk: Shape ``(n_rows, n_columns)``, every feature column present.
        first_row: The 1-based data row number of ``chunk``'s first row (for messages).
        text: The cells are CSV text as written (else typed values, from Parquet).

    Returns:
        ``(scored, out_of_range)``: ``chunk``'s columns unchanged, then ``prediction`` and, for
        classifiers, one ``probability_<class>`` column per class; and the values outside the
        training range under the ``warn`` policy (else ``None``).

    Raises:
        InvalidInput: A row breaks the schema (every problem of the chunk, up to 50, by row and
            column), or the model refused the values;
            :class:`~ml_api.core.model.ranges.OutOfRangeInput` under the ``reject`` policy.
    """
    columns = fast_columns(chunk, service.schema, text)
    if columns is None:
        records = (_records if text else _typed_records)(chunk, service.schema)
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
) -> tuple[pa.Table, OutOfRange | None]:
    """:func:`score_chunk` for a CSV chunk read by Arrow: the input columns stay Arrow strings.

    Args:
        service: The loaded prediction service.
        chunk: Shape ``(n_rows, n_columns)``, string columns, every feature column present.
        first_row: The 1-based data row number of ``chunk``'s first row (for messages).
        columns: The chunk's feature columns already checked (:func:`arrow_block_check` with no
            doubt on these rows); ``None`` checks them here.

    Returns:
        ``(scored, out_of_range)`` as :func:`score_chunk` returns them, ``scored`` as a table.

    Raises:
        InvalidInput: As :func:`score_chunk` (the same row path names the problems).
    """
    if columns is None:
        columns = fast_arrow_columns(chunk, service.schema)
    if columns is None:
        features = chunk.select(list(service.schema.names)).to_pandas()
        result = service.predict_rows(_records(features, service.schema), first_index=first_row)
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


def count_rows(path: Path) -> int | None:
    """Return the number of data rows, when it is cheap to know (progress bars).

    Parquet: from the file's metadata. Uncompressed CSV: newlines minus the header (a quoted
    field with a line break counts twice, so treat it as an estimate). Compressed CSV: ``None``.
    """
    path = Path(path)
    if is_parquet(path):
        try:
            return int(pq.ParquetFile(path).metadata.num_rows)
        except (pa.ArrowException, OSError):
            return None  # scoring reports the file as unreadable
    if path.suffix.lower() != ".csv":
        return None
    lines = 0
    last = b"\n"
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            lines += block.count(b"\n")
            last = block[-1:]
    lines += last != b"\n"  # no newline after the last row
    return max(0, lines - 1)


def _parquet_chunks(path: Path, rows: int) -> Iterator[pd.DataFrame]:
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


def _chunks(path: Path, rows: int) -> Iterator[pd.DataFrame]:
    """Read the file in chunks: Parquet with its types; CSV as text cells exactly as written.

    CSV cells are not type-guessed and not NA-parsed, so the output repeats the input columns
    unchanged: an integer column with a gap stays integers, ``02134`` keeps its zero.
    """
    if is_parquet(path):
        yield from _parquet_chunks(path, rows)
        return
    with pd.read_csv(path, chunksize=rows, dtype=str, keep_default_na=False) as reader:
        yield from reader


_CANDIDATE_TYPES: dict[str, pa.DataType] = {"int64": pa.int64(), "double": pa.float64()}
_BOOL_CELLS = pa.array(["true", "false"], type=pa.string())


def _as_text(col: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """A column as strings (an empty pandas chunk's columns have Arrow's null type)."""
    return col if pa.types.is_string(col.type) else col.cast(pa.string())


def _types_taken(col: pa.ChunkedArray | pa.Array, candidates: set[str]) -> tuple[set[str], bool]:
    """Which of ``candidates`` every present cell of a text column converts to, losslessly.

    Returns:
        ``(kept, any_present)``: the candidate type names (``int64``, ``double``, ``bool``) all
        present cells (not :data:`NA_CELLS`) convert to, and whether any cell was present.
    """
    text = _as_text(col)
    present = text.filter(pc.invert(pc.is_in(text, value_set=_NA_CELLS_ARROW)))
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


def infer_csv_types(tables: Iterator[pa.Table]) -> dict[str, pa.DataType]:
    """Each column's type over a whole CSV, as ``pandas.read_csv`` would read it (for Parquet).

    Args:
        tables: The file's rows in blocks, every cell the text as written (string columns).

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
                candidates[name], present = _types_taken(col, left)
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


def _typed(col: pa.ChunkedArray | pa.Array, type_: pa.DataType) -> pa.ChunkedArray | pa.Array:
    """A text column as ``type_`` (from :func:`infer_csv_types`), missing cells as nulls."""
    text = _as_text(col)
    missing = pc.is_in(text, value_set=_NA_CELLS_ARROW)
    text = pc.if_else(missing, pa.scalar(None, pa.string()), text)
    if pa.types.is_boolean(type_):
        return pc.equal(pc.utf8_lower(text), "true")
    return pc.cast(text, type_)


def _csv_types(
    service: PredictionService, input_path: Path, arrow: bool
) -> dict[str, pa.DataType] | None:
    """The input columns' Parquet types for a CSV input (``None`` for Parquet input): a pass.

    Reads the file as the scoring pass will (``arrow``: Arrow's streaming reader, else
    pandas), so a file either reader refuses fails here the same way, before any row is scored.

    Raises:
        _ArrowRefused: As :func:`_arrow_scored_chunks` (``arrow`` only).
        InvalidInput: A feature column is missing.
    """
    if is_parquet(input_path):
        return None
    tables: Iterator[pa.Table]
    if arrow:
        compression = _arrow_csv_compression(input_path)
        if compression is False:
            raise _ArrowRefused("read by pandas")
        reader = _open_arrow_csv(input_path, cast("str | None", compression))
        _check_columns(input_path, reader.schema.names, service.schema.names)
        tables = _arrow_csv_tables(reader, CHECK_BLOCK_ROWS)
    else:

        def from_pandas() -> Iterator[pa.Table]:
            for chunk in _chunks(input_path, CHECK_BLOCK_ROWS):
                _check_columns(input_path, list(chunk.columns), service.schema.names)
                yield pa.Table.from_pandas(chunk, preserve_index=False, nthreads=1)

        tables = from_pandas()
    added = set(_output_columns(service))  # replaced by the model's output: typed by it
    return {k: v for k, v in infer_csv_types(tables).items() if k not in added}


WRITE_QUEUE_CHUNKS = 4
"""Scored chunks waiting for the writer thread at most (bounds memory)."""

_STOP = object()


class _Writer:
    """Appends scored chunks to a CSV or Parquet file, through pyarrow's writers, in a thread.

    pyarrow's CSV writer is several times faster than ``DataFrame.to_csv`` (which would cost
    more than the model); cells are written as read, unquoted, through a gzip/bzip2/zstd stream
    when ``compression`` names one. A Parquet file keeps the types of the first chunk: later
    chunks are cast to them; ``types`` (CSV input: :func:`infer_csv_types`) first converts the
    named text columns of every chunk.

    Writing runs in one background thread, beside the model: pyarrow formats and writes
    without holding the GIL. At most :data:`WRITE_QUEUE_CHUNKS` chunks wait for it. An error
    there (a Parquet column whose type changed) is raised by the next :meth:`write` or by
    :meth:`close`, so the caller never renames a failed output into place.
    """

    def __init__(
        self,
        path: Path,
        parquet: bool,
        compression: str | None = None,
        types: dict[str, pa.DataType] | None = None,
    ) -> None:
        self.path = path
        self.parquet = parquet
        self.compression = compression
        self.types = types
        self._parquet_writer: pq.ParquetWriter | None = None
        self._fh: Any = None
        self._raw: Any = None  # the file under a gzip stream
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=WRITE_QUEUE_CHUNKS)
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def write(self, frame: pd.DataFrame | pa.Table) -> None:
        """Queue one chunk (columns in the same order for every chunk) to be appended.

        Raises:
            InvalidInput: An earlier chunk could not be written (Parquet: a column's type
                changed between chunks).
        """
        self._raise()
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="ml-api-writer", daemon=True)
            self._thread.start()
        self._queue.put(frame)

    def _raise(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def _run(self) -> None:
        while (frame := self._queue.get()) is not _STOP:
            if self._error is None:
                try:
                    self._write_now(frame)
                except BaseException as exc:  # raised again in the caller's thread
                    self._error = exc

    def _write_now(self, frame: pd.DataFrame | pa.Table) -> None:
        if isinstance(frame, pa.Table):
            table = frame
        else:
            # One thread: a pool per chunk costs more than it saves on a few thousand rows.
            table = pa.Table.from_pandas(frame, preserve_index=False, nthreads=1)
        if not self.parquet:
            first = self._fh is None
            if first:
                if self.compression is None:
                    self._fh = open(self.path, "wb")  # noqa: SIM115 - closed in close()
                elif self.compression == "gzip":
                    # Python's zlib at gzip's own default level: Arrow's gzip stream has no
                    # level and compresses at 9, 4x slower for a 0.5% smaller file. No name
                    # or time in the header: the same rows give the same bytes.
                    self._raw = open(self.path, "wb")  # noqa: SIM115 - closed in close()
                    self._fh = gzip.GzipFile(
                        filename="", mode="wb", compresslevel=GZIP_LEVEL, fileobj=self._raw, mtime=0
                    )
                else:
                    self._fh = pa.output_stream(str(self.path), compression=self.compression)
            # Cells as written, unquoted; a chunk with a comma, quote or line break in a cell
            # (pyarrow refuses those unquoted) is written by pandas, which quotes just those.
            buffer = pa.BufferOutputStream()
            try:
                options = pacsv.WriteOptions(
                    include_header=first, quoting_style="none", quoting_header="none"
                )
                pacsv.write_csv(table, buffer, write_options=options)
                self._fh.write(buffer.getvalue())
            except pa.ArrowInvalid:
                if isinstance(frame, pa.Table):
                    frame = frame.to_pandas()
                text = frame.to_csv(index=False, header=first, lineterminator="\n")
                self._fh.write(text.encode("utf-8"))
            return
        if self.types:
            # pandas' metadata (a chunk read by pandas) would turn the typed columns back into
            # strings when pandas reads the file: the Arrow types are the truth.
            table = table.replace_schema_metadata(None)
            for i, name in enumerate(table.column_names):
                if name in self.types:
                    table = table.set_column(i, name, _typed(table.column(i), self.types[name]))
        if self._parquet_writer is None:
            self._parquet_writer = pq.ParquetWriter(self.path, table.schema)
        elif not table.schema.equals(self._parquet_writer.schema):
            try:
                table = table.cast(self._parquet_writer.schema)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise InvalidInput(
                    f"a column's type changed between chunks of the input ({exc}); read from "
                    "Parquet, or raise --chunk-rows so the first chunk shows the type"
                ) from exc
        self._parquet_writer.write_table(table)

    def close(self, discard: bool = False) -> None:
        """Write what is queued and close the file.

        Args:
            discard: The output will be deleted: do not raise a writing error.

        Raises:
            InvalidInput: A chunk could not be written (see :meth:`write`).
        """
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join()
            self._thread = None
        if self._parquet_writer is not None:
            self._parquet_writer.close()
            self._parquet_writer = None
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        if self._raw is not None:
            self._raw.close()
            self._raw = None
        if discard:
            self._error = None
        self._raise()


def score_file(
    service: PredictionService,
    input_path: Path,
    output_path: Path,
    *,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    on_chunk: Callable[[int], None] | None = None,
    on_out_of_range: Callable[[OutOfRange], None] | None = None,
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
    writer = _Writer(tmp, parquet_out, compression)
    reported = 0  # rows whose callbacks ran (a restart with pandas does not repeat them)
    try:
        try:
            if parquet_out:
                writer.types = _csv_types(service, input_path, arrow=True)
            chunks = _arrow_scored_chunks(service, input_path, chunk_rows)
            total, reported = _write_all(chunks, writer, reported, on_chunk, on_out_of_range)
        except _ArrowRefused as refused:
            reported = refused.rows_reported
            # An odd file Arrow reads differently from pandas, or not at all: pandas reads it
            # from the start, as it always did (its result or its error message, unchanged).
            writer.close(discard=True)
            writer = _Writer(tmp, parquet_out, compression)
            if parquet_out:
                writer.types = _csv_types(service, input_path, arrow=False)
            chunks = _pandas_scored_chunks(service, input_path, chunk_rows)
            total, reported = _write_all(chunks, writer, reported, on_chunk, on_out_of_range)
        writer.close()
        os.chmod(tmp, _new_file_mode())  # mkstemp made it 0600; a new file is 0666 & ~umask
        os.replace(tmp, output_path)
    finally:
        writer.close(discard=True)  # after a failure: the failure is what is reported
        tmp.unlink(missing_ok=True)
    return total


_Scored = tuple[pd.DataFrame | pa.Table, OutOfRange | None, int]
"""One scored chunk: its output rows, its out-of-range values (``warn``), its row count."""


def _write_all(
    chunks: Iterator[_Scored],
    writer: _Writer,
    reported: int,
    on_chunk: Callable[[int], None] | None,
    on_out_of_range: Callable[[OutOfRange], None] | None,
) -> tuple[int, int]:
    """Write every scored chunk; run the callbacks for rows past ``reported``.

    Returns:
        ``(rows written, rows reported)``.

    Raises:
        _ArrowRefused: Arrow could not read on (the rows reported so far are in its ``rows``).
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
    except _ArrowRefused as exc:
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
    service: PredictionService, input_path: Path, chunk_rows: int
) -> Iterator[_Scored]:
    """Score a CSV read by Arrow, chunk by chunk (cells stay Arrow strings end to end).

    Raises:
        _ArrowRefused: A Parquet file, a compression Arrow does not stream, or a CSV Arrow
            reads differently from pandas or not at all (the caller then reads it with pandas).
    """
    compression = _arrow_csv_compression(input_path)
    if is_parquet(input_path) or compression is False:
        raise _ArrowRefused("read by pandas")
    reader = _open_arrow_csv(input_path, cast("str | None", compression))
    _check_columns(input_path, reader.schema.names, service.schema.names)
    total = 0
    block_rows = chunk_rows * max(1, CHECK_BLOCK_ROWS // chunk_rows)
    for block in _arrow_csv_tables(reader, block_rows):
        checked = arrow_block_check(block, service.schema)
        for start in range(0, block.num_rows, chunk_rows):
            chunk = block.slice(start, chunk_rows)
            stop = start + chunk.num_rows
            columns = None
            if checked is not None and not checked[1][start:stop].any():
                columns = [values[start:stop] for values in checked[0]]
            scored, out_of_range = score_arrow_chunk(service, chunk, total + 1, columns)
            total += chunk.num_rows
            yield scored, out_of_range, chunk.num_rows
    if total == 0:  # a header and no rows: a header-only output, 0 rows scored
        header = [*reader.schema.names, *_output_columns(service)]
        yield pd.DataFrame(columns=header, dtype=object), None, 0


def _pandas_scored_chunks(
    service: PredictionService, input_path: Path, chunk_rows: int
) -> Iterator[_Scored]:
    """Score a Parquet file, or a CSV read by pandas, chunk by chunk."""
    total = 0
    for chunk in _chunks(input_path, chunk_rows):
        _check_columns(input_path, list(chunk.columns), service.schema.names)
        if chunk.empty:  # a header and no rows: a header-only output, 0 rows scored
            if total == 0:
                columns = [*chunk.columns, *_output_columns(service)]
                yield pd.DataFrame(columns=columns, dtype=object), None, 0
            continue
        scored, out_of_range = score_chunk(
            service, chunk, total + 1, text=not is_parquet(input_path)
        )
        total += len(chunk)
        yield scored, out_of_range, len(chunk)


def _output_columns(service: PredictionService) -> list[str]:
    """Names of the columns scoring adds (``prediction``, ``probability_<class>``...)."""
    predictor = service.predictor
    classes = tuple(predictor.classes) if predictor.is_classifier else ()
    empty = PredictionResult(
        labels=np.empty(0, dtype=object),
        probabilities=np.empty((0, len(classes))) if predictor.is_classifier else None,
        classes=classes,
    )
    return list(encode_csv_columns(empty))


score_csv = score_file
"""The earlier name of :func:`score_file` (CSV was its only format)."""
