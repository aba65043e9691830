"""The scored file's writer: CSV (plain or compressed) or Parquet, in a thread beside the model."""

from __future__ import annotations

import gzip
import queue
import threading
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from ml_api.core.errors import InvalidInput
from ml_api.scoring.formats import GZIP_LEVEL
from ml_api.scoring.types import MissingIn, pandas_defaults, typed_column

WRITE_QUEUE_CHUNKS = 4
"""Scored chunks waiting for the writer thread at most (bounds memory)."""

_STOP = object()


class Writer:
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
        self.missing: MissingIn = pandas_defaults  # the cells typed as null, per column
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
                    table = table.set_column(
                        i, name, typed_column(table.column(i), self.types[name], self.missing(name))
                    )
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
