"""The one scoring function of every engine: a batch of rows in, ``ml-api predict``'s rows out.

:func:`score_batch` takes an Arrow table (a Spark ``mapInArrow`` batch, a Dask partition, a
chunk of a file) and scores it through the same path as ``ml-api predict``
(:func:`ml_api.predict.score_arrow_chunk` for CSV text cells, :func:`ml_api.predict.score_chunk`
for typed columns): the same vectorised check, the same per-value validation and wording, the
same missing-value and out-of-range policy, the same added columns with the same values. Nothing
here re-implements a check.

Rows that break the schema either fail the batch (``ml-api predict``'s policy: an
:class:`~ml_api.core.errors.InvalidInput` naming rows and columns) or, with ``keep_refused``, are
set aside with their problems (the engines' side output) while the other rows are scored.

:class:`ModelPin` is what a driver hands its workers: the settings with the version resolved and
the model file's sha256. :meth:`ModelPin.service` loads the model once per worker process (later
batches reuse it) through :func:`ml_api.composition.build_scoring`, which applies the card's
sha256 and library-version gates, and refuses an artifact whose sha256 is not the pinned one (an
alias moved, a file replaced on shared storage mid-job).
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ml_api.composition import build_scoring
from ml_api.core.errors import InvalidInput, Problem
from ml_api.core.model.integrity import ArtifactError
from ml_api.predict import score_arrow_chunk, score_chunk

if TYPE_CHECKING:
    from ml_api.core.model.ranges import OutOfRange
    from ml_api.core.service import PredictionService
    from ml_api.settings import Settings

ROW_COLUMN = "row"
"""Side output column: the refused row's 1-based number (as ``ml-api predict`` numbers rows)."""

PROBLEMS_COLUMN = "problems"
"""Side output column: the row's problems, a JSON list of ``{"field", "problem"}`` (the API's
error ``details`` without ``instance``, which is the row)."""

_LOADED: dict[tuple[Any, ...], PredictionService] = {}
_LOAD_LOCK = threading.Lock()


@dataclass(frozen=True)
class ModelPin:
    """The model every worker must score with, fixed once on the driver; picklable.

    Attributes:
        settings: The driver's settings, ``model_version`` set to the resolved version and
            ``model_root`` absolute (workers read the same path: a shared volume, the image).
        sha256: The model file's sha256 the driver loaded (its card's ``model_file.sha256``).
    """

    settings: Settings
    sha256: str

    @classmethod
    def load(cls, settings: Settings) -> tuple[ModelPin, PredictionService]:
        """Load the configured model on the driver and pin it (version and sha256).

        Args:
            settings: The configuration (``ML_API_*``): model root, name, version or alias,
                runtime, out-of-range policy.

        Returns:
            ``(pin, service)``: the pin for the workers, and the driver's loaded service
            (cached for this process, so a local engine does not load it twice).

        Raises:
            ArtifactError: The model is missing, tampered with or built with other library
                versions (the gates of :func:`~ml_api.core.model.artifact.load_artifact`).
        """
        service = build_scoring(settings)
        pinned = settings.model_copy(
            update={
                "model_version": service.artifact.version,
                "model_root": settings.resolved_model_root(),
            }
        )
        pin = cls(pinned, service.artifact.card.model_file.sha256)
        with _LOAD_LOCK:
            _LOADED.setdefault(pin.key, service)
        return pin, service

    @property
    def key(self) -> tuple[Any, ...]:
        """What identifies one loaded service in a process."""
        s = self.settings
        return (str(s.model_root), s.model_name, s.model_version, s.runtime, s.out_of_range,
                self.sha256)  # fmt: skip

    def service(self) -> PredictionService:
        """The pinned model's service, loaded at the first call in this process, then reused.

        Raises:
            ArtifactError: The artifact fails its gates here, or its sha256 or version is not
                the pinned one (the file on this worker differs from the driver's).
        """
        with _LOAD_LOCK:
            service = _LOADED.get(self.key)
            if service is None:
                service = build_scoring(self.settings)
                found = service.artifact.card.model_file.sha256
                if found != self.sha256 or service.artifact.version != self.settings.model_version:
                    raise ArtifactError(
                        f"model {service.artifact.path} on this worker is version "
                        f"{service.artifact.version} with sha256 {found[:12]}..., not the "
                        f"version {self.settings.model_version} with sha256 {self.sha256[:12]}... "
                        f"the driver pinned: give every worker the same model root"
                    )
                _LOADED[self.key] = service
        return service


@dataclass
class ScoredBatch:
    """One batch scored.

    Attributes:
        scored: The rows that scored, in input order: the input's columns, then ``prediction``
            and one ``probability_<class>`` per class (as ``ml-api predict`` writes them).
        refused: The rows set aside (``keep_refused``), in input order: the input's columns, then
            :data:`ROW_COLUMN` (``first_row`` + position) and :data:`PROBLEMS_COLUMN`.
        out_of_range: Values outside the training range per feature (the ``warn`` policy).
    """

    scored: pa.Table
    refused: pa.Table
    out_of_range: Counter[str] = field(default_factory=Counter)


def score_batch(
    service: PredictionService,
    table: pa.Table,
    *,
    text: bool,
    first_row: int = 1,
    keep_refused: bool = False,
    text_output: bool = False,
) -> ScoredBatch:
    """Score a batch of rows exactly as ``ml-api predict`` scores a chunk of a file.

    Args:
        service: The loaded service (:meth:`ModelPin.service` on a worker).
        table: Shape ``(n_rows, >= n_features)``, every feature column present.
        text: The cells are a CSV's text as written (string columns; a null is a missing cell),
            else typed values (Parquet, a typed DataFrame).
        first_row: The 1-based number of the batch's first row, in messages and
            :data:`ROW_COLUMN`.
        keep_refused: Set rows that break the schema (or the out-of-range ``reject`` policy,
            or overflow the model) aside in ``refused`` instead of raising.
        text_output: Every output column as the text ``ml-api predict`` writes into a CSV
            (Arrow's formatting), for an engine's own CSV writer to write verbatim.

    Returns:
        The scored rows and the refused ones (empty unless ``keep_refused``).

    Raises:
        InvalidInput: Without ``keep_refused``, as ``ml-api predict``: every problem of the batch
            (up to 50) by row and column; ``OutOfRangeInput`` under ``reject``.
    """
    if not keep_refused:
        scored, out_of_range = _score_once(service, table, text, first_row)
        refused = _refused_table(table, {}, first_row)
    else:
        scored, out_of_range, problems = _score_keeping_refusals(service, table, text)
        refused = _refused_table(table, problems, first_row)
    counts: Counter[str] = Counter(out_of_range.counts if out_of_range is not None else {})
    if text_output:
        scored = as_csv_text(scored)
        refused = as_csv_text(refused)
    return ScoredBatch(scored, refused, counts)


def _score_once(
    service: PredictionService, table: pa.Table, text: bool, first_row: int
) -> tuple[pa.Table, OutOfRange | None]:
    """One chunk through ``ml-api predict``'s own path (Arrow text, or typed through pandas)."""
    if text:
        return score_arrow_chunk(service, as_cells(table), first_row)
    frame, out_of_range = score_chunk(service, table.to_pandas(), first_row, text=False)
    return pa.Table.from_pandas(frame, preserve_index=False, nthreads=1), out_of_range


def _score_keeping_refusals(
    service: PredictionService, table: pa.Table, text: bool
) -> tuple[pa.Table, OutOfRange | None, dict[int, list[Problem]]]:
    """Score the rows that pass; the others' full problems by 0-based position.

    The batch is scored whole; rows an error names are scored alone (their complete problems)
    and set aside, and the rest is scored again. An error that names no row that fails alone
    (a problem of the batch as a whole) falls back to scoring every row alone.
    """
    keep = np.ones(table.num_rows, dtype=bool)
    problems: dict[int, list[Problem]] = {}
    while True:
        positions = np.flatnonzero(keep)
        try:
            scored, out_of_range = _score_once(service, table.take(positions), text, 0)
            return scored, out_of_range, problems
        except InvalidInput as exc:
            named = sorted({p.instance for p in exc.details if p.instance is not None})
            alone = [int(positions[i]) for i in named if 0 <= i < len(positions)]
            if not _set_aside(service, table, text, alone, keep, problems) and not _set_aside(
                service, table, text, positions.tolist(), keep, problems
            ):
                raise  # no row fails alone: the batch as a whole is refused
            if not keep.any():
                return _empty_scored(service, table), None, problems


def _set_aside(
    service: PredictionService,
    table: pa.Table,
    text: bool,
    candidates: list[int],
    keep: np.ndarray,
    problems: dict[int, list[Problem]],
) -> bool:
    """Score each candidate row alone; set aside those refused. Whether any was."""
    found = False
    for pos in candidates:
        try:
            _score_once(service, table.slice(pos, 1), text, 0)
        except InvalidInput as exc:
            problems[pos] = list(exc.details) or [Problem(exc.message)]
            keep[pos] = False
            found = True
    return found


def _empty_scored(service: PredictionService, table: pa.Table) -> pa.Table:
    """The scored table of no rows: the input's columns and the added ones (typed by a row)."""
    example = score_batch_example(service)
    added = [example.field(n) for n in example.column_names if n not in table.column_names]
    schema = pa.schema([*table.schema, *added])
    return schema.empty_table()


def score_batch_example(service: PredictionService) -> pa.Table:
    """The added columns for the schema's example row: their names and Arrow types."""
    from ml_api.scoring.encoding import encode_csv_columns

    columns = service.validator.validate_columns([service.schema.example()])
    result = service.predictor.predict(columns)
    return pa.table(
        {k: pa.array(v, from_pandas=True) for k, v in encode_csv_columns(result).items()}
    )


def _refused_table(table: pa.Table, problems: dict[int, list[Problem]], first_row: int) -> pa.Table:
    """The refused rows: their input columns, their row numbers and their problems as JSON."""
    positions = sorted(problems)
    rows = table.take(pa.array(positions, type=pa.int64()))
    numbers = pa.array([first_row + p for p in positions], type=pa.int64())
    words = pa.array(
        [
            json.dumps([{"field": q.field, "problem": q.problem} for q in problems[p]])
            for p in positions
        ],
        type=pa.string(),
    )
    return rows.append_column(ROW_COLUMN, numbers).append_column(PROBLEMS_COLUMN, words)


def as_cells(table: pa.Table) -> pa.Table:
    """A CSV's text columns as ``ml-api predict`` reads them: a null (Spark's empty cell) is ``""``.

    Spark's and Dask's CSV readers may read an empty cell as null; Arrow's reader in
    ``ml-api predict`` reads it as the empty text, which the model's missing tokens then judge.
    """
    if not any(table.column(i).null_count for i in range(table.num_columns)):
        return table
    columns = [
        pc.fill_null(col, "") if pa.types.is_string(col.type) or pa.types.is_large_string(col.type)
        else col
        for col in table.columns
    ]  # fmt: skip
    return pa.table(columns, names=table.column_names)


def as_csv_text(table: pa.Table) -> pa.Table:
    """Every column as the text Arrow's CSV writer (``ml-api predict``'s) writes; nulls stay null.

    Raises:
        pyarrow.ArrowNotImplementedError: A column type Arrow cannot write as CSV (a list, a
            struct); ``ml-api predict`` cannot write it either.
    """
    columns = [
        col if pa.types.is_string(col.type) else pc.cast(col, pa.string()) for col in table.columns
    ]
    return pa.table(columns, names=table.column_names)
