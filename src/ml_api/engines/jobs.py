"""``ml-api predict --engine spark|dask``: a path in, a directory of scored part files out.

What both engines share on the driver: the formats by path name (:func:`path_format`), the
result (:class:`EngineRun`), and turning a worker's refusal back into ``ml-api predict``'s own
error with rows numbered in the input (:func:`refusal_in_input`).

Row numbers: an engine reads its input as partitions in order (Spark: a file's splits in file
order; Dask: ``read_csv``'s blocks, ``read_parquet``'s files). For one input file the
row numbers are the file's 1-based data rows, as ``ml-api predict`` gives them; for a
directory they count rows in the engine's order of its files.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ml_api.core.errors import InvalidInput
from ml_api.engines.refusals import PartitionRefused, offsets
from ml_api.scoring.formats import PARQUET_SUFFIXES, output_compression

if TYPE_CHECKING:
    from ml_api.settings import Settings

ENGINES = ("local", "spark", "dask")
"""``ml-api predict --engine`` values: ``local`` is the one-process scorer."""


@dataclass
class EngineRun:
    """What an engine run did.

    Attributes:
        rows: Rows scored (written to the output).
        refused: Rows set aside in the side output (``--refused``).
        out_of_range: Values outside the training range per feature (``warn``).
        model: The model scored with, ``<name> version <version>``.
    """

    model: str = ""
    rows: int = 0
    refused: int = 0
    out_of_range: Counter[str] = field(default_factory=Counter)


def model_of(settings: Settings) -> str:
    """``<name> version <version>`` of pinned settings, as ``ml-api predict`` names the model."""
    return f"{settings.model_name} version {settings.model_version}"


def path_format(path: str) -> str:
    """``parquet`` or ``csv`` for an input or output path (a file, a directory, a URL).

    By name first: ``.parquet``/``.pq`` is Parquet, ``.csv`` (``.csv.gz``...) is CSV. A local
    directory with another name is what its files are (``*.parquet`` or ``*.csv*``); any other
    name is Parquet, the format engines keep tables in.

    Raises:
        InvalidInput: A local directory holding both, or neither.
    """
    name = path.rstrip("/").rsplit("/", 1)[-1].lower()
    suffixes = Path(name).suffixes
    if suffixes and suffixes[-1] in PARQUET_SUFFIXES:
        return "parquet"
    if ".csv" in suffixes:
        return "csv"
    local = Path(path)
    if "://" not in path and local.is_dir():
        files = [p.name.lower() for p in local.rglob("*") if p.is_file()]
        kinds = {
            "parquet" if Path(f).suffix in PARQUET_SUFFIXES else "csv"
            for f in files
            if not f.startswith(("_", ".")) and (".csv" in Path(f).suffixes or
                                                 Path(f).suffix in PARQUET_SUFFIXES)
        }  # fmt: skip
        if len(kinds) != 1:
            raise InvalidInput(
                f"{path}: cannot tell whether this directory is Parquet or CSV "
                f"({'both' if kinds else 'neither'} *.parquet and *.csv files); name it "
                f"*.parquet or *.csv"
            )
        return kinds.pop()
    return "parquet"


def csv_codec(path: str) -> str | None:
    """The compression of a CSV output directory's part files, by its name (``out.csv.gz``).

    Raises:
        InvalidInput: A compression ``ml-api predict`` refuses too (``.zip``, ``.xz``...).
    """
    codec = output_compression(Path(path.rstrip("/")))
    return {"gzip": "gzip", "bz2": "bzip2", "zstd": "zstd"}.get(codec or "")


def refusal_in_input(refused: PartitionRefused, counts: Mapping[int, int]) -> InvalidInput:
    """A worker's refusal as ``ml-api predict``'s error, rows numbered in the whole input.

    Args:
        refused: The refusal, rows numbered within its partition.
        counts: Rows of each partition (the engine counts them after the failure).
    """
    return refused.as_input_error(offsets(counts).get(refused.partition, 0))
