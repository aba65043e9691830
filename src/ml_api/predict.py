"""Batch scoring: a CSV file in, the same CSV with predictions out, through the serving core.

Rows go through the same validation as HTTP requests (``ml_api.core.validation``), so a file that
scores here would be accepted by the API and vice versa; problems are reported by 1-based data row
number (the header is not counted). The input's columns, used by the model or not (ids, the
target), are carried through to the output as written: cells are read as text, never re-typed.

The model's schema, not pandas' guess, decides how each feature cell is taken: a categorical
feature's cell is its text (``01067`` keeps its leading zero, digit-only codes stay codes), a
feature that held booleans in training reads ``true``/``false`` in any case as
``"True"``/``"False"`` (as training saw them), and numeric features' cells are numbers. So any
file that trained a model scores with it. A file with a header and no rows writes a header-only
output and reports 0 rows.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ml_api.core.codecs import to_jsonable
from ml_api.core.errors import InvalidInput, Problem
from ml_api.core.predictor import PredictionResult
from ml_api.core.ranges import OutOfRange
from ml_api.core.schema import FeatureKind, FeatureSchema
from ml_api.core.service import PredictionService

DEFAULT_CHUNK_ROWS = 5_000
"""Rows read, validated and predicted at a time: bounds memory for files of any size."""


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


def _records(chunk: pd.DataFrame, schema: FeatureSchema) -> list[dict[str, Any]]:
    """The chunk's feature cells (strings as written) as JSON-like instances for validation.

    Missing cells become ``None``; numeric features' cells become floats where they parse;
    categorical features keep the text as written (``02134`` stays a zip code).
    """
    numeric = {f.name for f in schema.features if f.kind is FeatureKind.NUMERIC}
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


def encode_csv_columns(result: PredictionResult) -> dict[str, list[Any]]:
    """Encode a prediction as the scored CSV's added columns.

    Args:
        result: The neutral result for ``n_instances`` rows.

    Returns:
        ``{"prediction": [...]}`` and, for classifiers, one ``probability_<class>`` column per
        class in the model's class order; each a list of ``n_instances`` plain values
        (non-finite numbers as ``None``, an empty cell).
    """
    columns: dict[str, list[Any]] = {"prediction": to_jsonable(result.labels)}
    if result.probabilities is not None:
        for j, key in enumerate(result.class_keys):
            columns[f"probability_{key}"] = to_jsonable(result.probabilities[:, j])
    return columns


def score_csv(
    service: PredictionService,
    input_path: Path,
    output_path: Path,
    *,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    on_chunk: Callable[[int], None] | None = None,
    on_out_of_range: Callable[[OutOfRange], None] | None = None,
) -> int:
    """Score every row of a CSV file and write the result atomically.

    The output has the input's columns, then ``prediction`` and, for classifiers, one
    ``probability_<class>`` column per class. It is written to a temporary file and renamed into
    place only when every row scored, so a failed run leaves no partial output.

    Args:
        service: The loaded prediction service.
        input_path: CSV with a header row holding at least every feature column.
        output_path: Where to write the scored CSV.
        chunk_rows: Rows per model call.
        on_chunk: Called with the number of rows after each chunk (progress bars).
        on_out_of_range: Called with each chunk's values outside the training range, under
            ``ML_API_OUT_OF_RANGE=warn`` (rows numbered from 1); ``ml-api predict`` sums them
            into one line.

    Returns:
        The number of rows scored.

    Raises:
        InvalidInput: A feature column is missing, or a row breaks the schema (rows numbered from
            1; every problem in the failing chunk is listed);
            :class:`~ml_api.core.ranges.OutOfRangeInput` a value is outside the training range
            under ``ML_API_OUT_OF_RANGE=reject``.
        FileNotFoundError: ``input_path`` does not exist.
    """
    names = service.schema.names
    output_path = Path(output_path)
    fd, tmp_name = tempfile.mkstemp(prefix=".scoring-", suffix=".csv", dir=output_path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    total = 0
    try:
        for chunk in _chunks(input_path, chunk_rows):
            missing = [n for n in names if n not in chunk.columns]
            if missing:
                raise InvalidInput(
                    f"{input_path} lacks feature columns: {', '.join(missing)}",
                    [Problem("missing column", field=n) for n in missing],
                )
            if chunk.empty:  # a header and no rows: a header-only output, 0 rows scored
                if total == 0:
                    columns = [*chunk.columns, *_output_columns(service)]
                    pd.DataFrame(columns=columns).to_csv(tmp, index=False)
                continue
            rows = _records(chunk, service.schema)
            result = service.predict_rows(rows, first_index=total + 1)
            if on_out_of_range is not None and result.out_of_range is not None:
                on_out_of_range(result.out_of_range)
            out = chunk.copy()
            for column, values in encode_csv_columns(result).items():
                out[column] = values
            out.to_csv(tmp, mode="a", header=total == 0, index=False)
            total += len(chunk)
            if on_chunk:
                on_chunk(len(chunk))
        os.replace(tmp, output_path)
    finally:
        tmp.unlink(missing_ok=True)
    return total


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


def _chunks(path: Path, rows: int) -> Iterator[pd.DataFrame]:
    """Read the file in chunks of text cells exactly as written (no type guessing, no NA parsing).

    The output then repeats the input columns unchanged: an integer column with a gap stays
    integers, ``02134`` keeps its zero.
    """
    with pd.read_csv(path, chunksize=rows, dtype=str, keep_default_na=False) as reader:
        yield from reader
