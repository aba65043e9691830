"""The import's sample data: a CSV file, a DataFrame or an MLflow input example, and its hash."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pandas as pd

from ml_api.core.errors import InvalidInput
from ml_api.core.model.integrity import sha256_file
from ml_api.importing.sources import ImportRefused, Source
from ml_api.scoring.structure import check_file


def read_data(
    data: pd.DataFrame | str | Path | None, source: Source
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Read the import's sample data, and say where it came from for the card.

    Args:
        data: A DataFrame, a CSV path, or ``None`` for the MLflow model's input example.
        source: The model read (its input example and signature).

    Returns:
        The rows (column names as strings), shape ``(n_rows, n_columns)``, and the card's
        ``import_data`` start: ``file`` (a name, or ``None`` for a DataFrame), ``sha256`` (of
        the file, else of the rows), ``rows``.

    Raises:
        ImportRefused: No data and no input example; a missing, empty, ragged or unreadable
            CSV; no rows.
    """
    if data is None:
        if source.example is None:
            raise ImportRefused(
                "sample data is needed (--data CSV, or a DataFrame): it gives the features' kinds, "
                "ranges and nullability"
                + (", and this MLflow model has no input example" if source.signature else "")
            )
        frame = source.example
        info: dict[str, Any] = {"file": "MLflow input example", "sha256": frame_sha256(frame)}
    elif isinstance(data, pd.DataFrame):
        frame = data
        info = {"file": None, "sha256": frame_sha256(frame), "sha256_of": "the DataFrame's rows"}
    else:
        path = Path(data).expanduser().resolve()
        if not path.is_file():
            raise ImportRefused(f"data file {path}: no such file")
        try:
            check_file(path)  # rows longer or shorter than the header: refused, not shifted
            frame = pd.read_csv(path, index_col=False)
        except InvalidInput as exc:
            raise ImportRefused(f"data file {exc.message}") from None
        except pd.errors.EmptyDataError:
            raise ImportRefused(
                f"data file {path} is empty: a header and data rows are needed"
            ) from None
        except (pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise ImportRefused(f"cannot read data file {path} as CSV: {exc}") from None
        info = {"file": path.name, "sha256": sha256_file(path)}
    if frame.empty:
        raise ImportRefused(
            f"the data ({info['file'] or 'DataFrame'}) has no rows: sample rows are needed"
        )
    frame = frame.rename(columns=str)
    return frame, {**info, "rows": len(frame)}


def frame_sha256(frame: pd.DataFrame) -> str:
    """Return a hex sha256 of a DataFrame's rows and column names (the index left out)."""
    hashes = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    return hashlib.sha256(
        hashes.tobytes() + "\0".join(map(str, frame.columns)).encode()
    ).hexdigest()
