"""Score a Dask DataFrame with a verified ml-api model: the scoring function on each partition.

Each partition goes through :func:`ml_api.engines.scorer.score_batch` in ``chunk_rows`` slices
(the rules of ``ml-api predict``), the model loaded once per worker process and pinned by sha256
(:class:`~ml_api.engines.scorer.ModelPin`). Partitions are Arrow-backed pandas frames
(``dtype_backend="pyarrow"``), so a partition becomes the scorer's Arrow table without a copy and
the Parquet types survive the round trip. Needs ``dask[dataframe]`` (``pip install
'ml-api[dask]'``); the default scheduler runs on this machine's cores, a ``distributed.Client``
created before the call runs it on a cluster.
"""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ml_api.core.errors import InvalidInput
from ml_api.engines.jobs import EngineRun, csv_codec, model_of, path_format, refusal_in_input
from ml_api.engines.refusals import PartitionRefused, offsets
from ml_api.engines.scorer import ROW_COLUMN, ModelPin, score_batch
from ml_api.scoring.checks import missing_in, text_cells
from ml_api.scoring.writer import Writer

if TYPE_CHECKING:
    import dask.dataframe as dd

    from ml_api.settings import Settings

BLOCK_BYTES = "64MB"
"""Bytes of CSV per partition (Dask's ``blocksize``): a few per core, bounded memory."""


def score_partition(
    frame: pd.DataFrame,
    pin: ModelPin,
    number: int,
    *,
    text: bool,
    keep: bool,
    text_output: bool,
    chunk_rows: int,
) -> tuple[pa.Table, pa.Table, Counter[str]]:
    """Score one partition, chunk by chunk: the scored rows, the refused ones, the range counts.

    Args:
        frame: The partition, shape ``(n_rows, >= n_features)``.
        pin: The model pinned on the driver.
        number: The partition's number (0-based, in the input's order).
        text: The cells are a CSV's text (see :func:`~ml_api.engines.scorer.score_batch`).
        keep: Keep refused rows instead of raising.
        text_output: Every column as ``ml-api predict``'s CSV text.
        chunk_rows: Rows scored at a time.

    Returns:
        ``(scored, refused, out_of_range)``: the scored rows (an Arrow table); the refused
        ones with :data:`ROW_COLUMN` (1-based within the partition) and
        :data:`PROBLEMS_COLUMN`; the values outside the training range per feature.

    Raises:
        PartitionRefused: Without ``keep``, a row breaks the schema (rows within the partition).
    """
    service = pin.service()
    table = pa.Table.from_pandas(frame, preserve_index=False)
    scored, refused = [], []
    found: Counter[str] = Counter()
    for start in range(0, max(table.num_rows, 1), chunk_rows):
        chunk = table.slice(start, chunk_rows)
        try:
            out = score_batch(
                service, chunk, text=text, first_row=start + 1, keep_refused=keep,
                text_output=text_output,
            )  # fmt: skip
        except InvalidInput as exc:
            raise PartitionRefused.of(number, exc) from None
        scored.append(out.scored)
        refused.append(out.refused)
        found.update(out.out_of_range)
    return pa.concat_tables(scored), pa.concat_tables(refused), found


def score_frame(
    frame: dd.DataFrame,
    settings: Settings | None = None,
    *,
    text: bool = False,
    chunk_rows: int = 5000,
    pin: ModelPin | None = None,
) -> dd.DataFrame:
    """Add ``ml-api predict``'s columns to a Dask DataFrame (lazily, ``map_partitions``).

    Args:
        frame: Shape ``(n_rows, >= n_features)``; other columns are carried through.
        settings: The model (``ML_API_*``; default: the environment's), pinned here.
        text: The columns are a CSV's cells as text (``read_csv(dtype=str,
            keep_default_na=False)``), read by the model's schema as ``ml-api predict`` does.
        chunk_rows: Rows scored at a time within a partition.
        pin: An already pinned model (else loaded from ``settings``).

    Returns:
        The input's columns, then ``prediction`` and one ``probability_<class>`` per class,
        Arrow-backed. A row that breaks the schema fails the computation with
        :class:`~ml_api.engines.refusals.PartitionRefused` (rows within the partition).
    """
    from ml_api.settings import Settings

    if pin is None:
        pin, _ = ModelPin.load(settings or Settings())
    head = frame.partitions[0].head(1, npartitions=1, compute=True)
    meta = _scored_frame(head, pin, text, 1).iloc[:0]
    return frame.map_partitions(_scored_frame, pin, text, chunk_rows, meta=meta)


def _scored_frame(
    frame: pd.DataFrame,
    pin: ModelPin,
    text: bool,
    chunk_rows: int,
    partition_info: dict[str, Any] | None = None,
) -> pd.DataFrame:
    number = int((partition_info or {}).get("number", 0))
    scored = score_partition(
        frame, pin, number, text=text, keep=False, text_output=False, chunk_rows=chunk_rows
    )[0]
    return scored.to_pandas(types_mapper=pd.ArrowDtype)


def run(
    settings: Settings,
    input_path: str,
    output_path: str,
    *,
    refused_path: str | None = None,
    chunk_rows: int = 5000,
    block_bytes: str | int | None = None,
) -> EngineRun:
    """``ml-api predict --engine dask``: score a Parquet or CSV path into a directory of parts.

    The scored partitions feed the output's writer and the refused rows in one computation:
    each partition is scored once.

    Args:
        settings: The model and policies.
        input_path: A file, a directory or a glob Dask reads (``s3://...`` with ``s3fs``).
        output_path: The directory of part files written, Parquet or CSV by its name.
        refused_path: Where refused rows go instead of failing (``--refused``): their input
            columns, ``row`` (in the input) and ``problems``; ``None`` fails on a refusal.
        chunk_rows: Rows scored at a time.
        block_bytes: Bytes of CSV per partition (default :data:`BLOCK_BYTES`).

    Returns:
        Rows scored and refused, values outside the training range.

    Raises:
        InvalidInput: As ``ml-api predict`` (rows numbered in the input); nothing is left at
            ``output_path``.
    """
    import dask
    from dask import delayed

    pin, _ = ModelPin.load(settings)
    in_format, out_format = path_format(input_path), path_format(output_path)
    codec = csv_codec(output_path) if out_format == "csv" else None
    frame = _read(input_path, in_format, block_bytes or BLOCK_BYTES)
    options = {
        "text": in_format == "csv",
        "keep": refused_path is not None,
        "text_output": False,  # the part files are written by ml-api predict's own writer
        "chunk_rows": chunk_rows,
    }
    _delete(output_path)
    Path(output_path).mkdir(parents=True)
    parts = [
        delayed(_score_and_write)(part, pin, i, output_path, out_format, codec, options)
        for i, part in enumerate(frame.to_delayed())
    ]
    try:
        done = dask.compute(*parts)
    except PartitionRefused as refusal:
        _delete(output_path)
        raise refusal_in_input(refusal, _partition_rows(frame)) from None
    rows_in = {i: rows for i, (rows, _, _) in enumerate(done)}
    result = EngineRun(model_of(pin.settings), out_of_range=sum((f for _, _, f in done), Counter()))
    result.refused = _side_output([refused for _, refused, _ in done], rows_in, refused_path)
    result.rows = sum(rows_in.values()) - result.refused
    return result


def _score_and_write(
    frame: pd.DataFrame,
    pin: ModelPin,
    number: int,
    path: str,
    out_format: str,
    codec: str | None,
    options: dict[str, Any],
) -> tuple[int, pa.Table, Counter[str]]:
    """Score a partition and write its part file with ``ml-api predict``'s writer.

    Returns:
        ``(rows in the partition, refused rows, values outside the training range)``.
    """
    scored, refused, found = score_partition(frame, pin, number, **options)
    suffix = {"gzip": ".gz", "bzip2": ".bz2", "zstd": ".zst"}.get(codec or "", "")
    name = f"part-{number:05d}." + ("parquet" if out_format == "parquet" else "csv" + suffix)
    writer = Writer(Path(path) / name, out_format == "parquet", _WRITER_CODECS.get(codec or ""))
    service = pin.service()
    writer.missing = missing_in(text_cells(service.artifact.metadata), service.schema)
    writer.write(scored)
    writer.close()
    return len(frame), refused, found


_WRITER_CODECS = {"gzip": "gzip", "bzip2": "bz2", "zstd": "zstd"}
"""Spark's codec names (:func:`~ml_api.engines.jobs.csv_codec`) as the CLI writer's."""


def _read(path: str, in_format: str, block_bytes: str | int) -> dd.DataFrame:
    import dask.dataframe as dd

    if in_format == "parquet":
        return dd.read_parquet(path, dtype_backend="pyarrow")
    return dd.read_csv(
        path, dtype=pd.ArrowDtype(pa.string()), keep_default_na=False, na_filter=False,
        blocksize=block_bytes,
    )  # fmt: skip


def _partition_rows(frame: dd.DataFrame) -> dict[int, int]:
    return dict(enumerate(frame.map_partitions(len).compute()))


def _side_output(refused: list[pa.Table], rows_in: dict[int, int], path: str | None) -> int:
    """Number the refused rows in the input and write them to ``path``; how many there were."""
    starts = offsets(rows_in)
    numbered: list[pa.Table] = []
    for number, table in enumerate(refused):
        if table.num_rows:
            rows = pc.add(table.column(ROW_COLUMN), starts[number])
            numbered.append(
                table.set_column(table.schema.get_field_index(ROW_COLUMN), ROW_COLUMN, rows)
            )
    if path is None:
        return 0
    table = pa.concat_tables(numbered) if numbered else refused[0]
    _delete(path)
    Path(path).mkdir(parents=True)
    parquet = path_format(path) == "parquet"
    writer = Writer(Path(path) / ("part-00000." + ("parquet" if parquet else "csv")), parquet)
    writer.write(table)
    writer.close()
    return int(table.num_rows)


def _delete(path: str) -> None:
    """Remove a local output directory (or file) a failed or repeated run left."""
    target = Path(path)
    if target.is_dir():
        shutil.rmtree(target)
    elif target.exists():
        target.unlink()
