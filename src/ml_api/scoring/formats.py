"""File formats of batch scoring, by file name: Parquet or CSV, and the CSV's compression.

Input: ``.parquet``/``.pq`` is Parquet (read with pyarrow); anything else is CSV, compressed if
its name says so (``.gz``, ``.bz2``, ``.zst`` streamed by Arrow; ``.zip``, ``.xz``, ``.tar.*``
read by pandas). Output: ``.parquet``/``.pq`` is Parquet, ``.gz``/``.bz2``/``.zst`` is CSV
compressed with gzip (level :data:`GZIP_LEVEL`), bzip2 or zstd, any other compression suffix is
refused before anything is read or written (:func:`output_compression`), every other name is
plain CSV.
"""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ml_api.core.errors import InvalidInput

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


def new_file_mode() -> int:
    """``0o666`` less the process's umask: the mode ``open()`` gives a new file."""
    umask = os.umask(0o022)  # reading the umask means setting it: set it straight back
    os.umask(umask)
    return 0o666 & ~umask


ARROW_COMPRESSED = {".gz": "gzip", ".bz2": "bz2", ".zst": "zstd"}
"""CSV compressions read by Arrow's own streams (``.zip``, ``.xz``, ``.tar.*``: by pandas)."""

PANDAS_ONLY_SUFFIXES = (".zip", ".xz", ".tar")
"""Compressed CSV that Arrow cannot stream: read by pandas."""


def arrow_csv_compression(path: Path) -> str | bool | None:
    """Arrow's compression name for ``path``, ``None`` (plain), or ``False`` (pandas reads it)."""
    suffixes = [s.lower() for s in Path(path).suffixes]
    if any(s in PANDAS_ONLY_SUFFIXES for s in suffixes):
        return False
    last = suffixes[-1] if suffixes else ""
    return ARROW_COMPRESSED.get(last)


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
