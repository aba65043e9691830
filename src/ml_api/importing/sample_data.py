"""The import's sample data: a CSV file, a DataFrame or an MLflow input example, and its hash."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from ml_api.core.errors import InvalidInput
from ml_api.core.model.integrity import sha256_file
from ml_api.core.model.schema import Feature, FeatureKind, is_code
from ml_api.importing import inspection
from ml_api.importing.sources import ImportRefused, Source
from ml_api.scoring.cells import NA_CELLS, pandas_na_values, pandas_text_dtypes
from ml_api.scoring.structure import check_file

ValueColumns = Callable[[Sequence[str]], Sequence[Feature]]
"""Given a CSV's header, the columns whose cells may be values although they are missing-value
tokens: the model's categorical columns (with its encoders' categories) and text columns."""


def read_data(
    data: pd.DataFrame | str | Path | None,
    source: Source,
    na_values: Collection[str] | None = None,
    value_columns: ValueColumns = lambda header: (),
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Read the import's sample data, and say where it came from for the card.

    A CSV's cells are read as ``ml-api predict`` reads them (one rule,
    :func:`~ml_api.core.model.columns.missing_cells`): a missing-value token is missing except
    where it is a category of the model's encoder for that column (``NA``: North America) or a
    cell of a text column.

    Args:
        data: A DataFrame, a CSV path, or ``None`` for the MLflow model's input example.
        source: The model read (its input example and signature).
        na_values: A CSV's missing-value tokens (``--na-values``; ``None``: pandas' defaults,
            :data:`~ml_api.scoring.cells.NA_CELLS`).
        value_columns: The model's categorical and text columns, given the CSV's header.

    Returns:
        The rows (column names as strings), shape ``(n_rows, n_columns)``, and the card's
        ``import_data`` start: ``file`` (a name, or ``None`` for a DataFrame), ``sha256`` (of
        the file, else of the rows), ``rows``. A CSV's frame has ``attrs["missing_cells"]``:
        per column, the cells each token made missing (``{"region": {"": 3}}``).

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
            frame = _read_csv(path, NA_CELLS if na_values is None else na_values, value_columns)
        except InvalidInput as exc:
            raise ImportRefused(f"data file {exc.message}") from None
        except pd.errors.EmptyDataError:
            raise ImportRefused(
                f"data file {path} is empty: a header and data rows are needed"
            ) from None
        except (pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise ImportRefused(f"cannot read data file {path} as CSV: {exc}") from None
        info = {"file": path.name, "sha256": sha256_file(path)}
    cells = frame.attrs.get("missing_cells")
    if frame.empty:
        raise ImportRefused(
            f"the data ({info['file'] or 'DataFrame'}) has no rows: sample rows are needed"
        )
    frame = frame.rename(columns=str)
    if cells is not None:
        frame.attrs["missing_cells"] = cells
    return frame, {**info, "rows": len(frame)}


def value_columns(model: Any, source: Source, target: str | None) -> ValueColumns:
    """The model's categorical columns (its encoders' categories) and text columns, by header.

    Args:
        model: The fitted model.
        source: Where it came from (an MLflow signature names its columns).
        target: The target column, not a feature.

    Returns:
        A function of the CSV's header giving those columns as features, for
        :func:`read_data`.
    """

    def columns(header: Sequence[str]) -> list[Feature]:
        names = inspection.feature_names(model)
        if names is None:
            names = list(source.signature or [c for c in header if c != target])
        texts = inspection.text_columns(model, names)
        found = [Feature.text(n, "object", True) for n in texts]
        for name, (cats, _) in inspection.encoder_categories(model, names).items():
            if name not in texts and cats and not all(is_code(c) for c in cats):
                found.append(
                    Feature(name, FeatureKind.CATEGORICAL, "object", True, tuple(map(str, cats)))
                )
        return found

    return columns


def _read_csv(path: Path, tokens: Collection[str], value_columns: ValueColumns) -> pd.DataFrame:
    """The CSV typed as pandas reads it, each column's missing cells by the one rule."""
    raw = pd.read_csv(path, dtype=str, index_col=False, keep_default_na=False)
    values = value_columns(list(map(str, raw.columns)))
    missing = pandas_na_values(raw.columns, values, tokens)
    text = pandas_text_dtypes(raw.columns, values)  # 02134 stays "02134"
    frame = pd.read_csv(path, index_col=False, na_values=missing, keep_default_na=False, dtype=text)
    counts = {}
    for name in raw.columns:
        read_missing = raw[name][raw[name].isin(missing[str(name)])]
        if len(read_missing):
            counts[str(name)] = {str(k): int(v) for k, v in read_missing.value_counts().items()}
    frame.attrs["missing_cells"] = counts
    return frame


def frame_sha256(frame: pd.DataFrame) -> str:
    """Return a hex sha256 of a DataFrame's rows and column names (the index left out)."""
    hashes = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    return hashlib.sha256(
        hashes.tobytes() + "\0".join(map(str, frame.columns)).encode()
    ).hexdigest()
