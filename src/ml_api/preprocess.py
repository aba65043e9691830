"""Reading training data and building the preprocessing half of the model pipeline.

The preprocessing is fitted as part of the model's :class:`~sklearn.pipeline.Pipeline`, so serving
applies exactly what training did: median imputation and (for linear models) standard scaling of
numeric features; most-frequent imputation and one-hot encoding of categorical features, with
``handle_unknown="ignore"`` as the explicit policy for a category the encoder never saw (it encodes
as all zeros). The API refuses unseen categories before they reach the model (see
``ml_api.core.model.schema``); the encoder's policy only matters for callers that bypass validation.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from ml_api.core.errors import InvalidInput
from ml_api.core.model.schema import FeatureKind, FeatureSchema
from ml_api.scoring.cells import NA_CELLS
from ml_api.scoring.structure import check_file
from ml_api.settings import project_root

PENGUINS_CSV = project_root() / "data" / "raw" / "penguins.csv"
"""The default data set: Palmer penguins (Horst, Hill & Gorman 2020, CC0), 344 rows, from the
``palmerpenguins`` PyPI package."""

PENGUINS_TARGET = "species"
PENGUINS_DROP = ("year",)
PENGUINS_DROP_REASON = (
    "left out by default for the bundled penguins data (the year of the survey, not a trait of "
    "the penguin)"
)
"""Why :data:`PENGUINS_DROP` leaves its columns out when no ``--drop`` is given."""


def load_csv(
    path: Path, na_values: Sequence[str] | None = None, text: Sequence[str] = ()
) -> pd.DataFrame:
    """Read a CSV file as written: every cell a string, the missing tokens missing.

    No column is typed here, so ``02134`` keeps its leading zero and ``H1000`` stays text; the
    kinds are decided by :func:`infer_columns` (numbers are parsed by :func:`typed_frame`).

    Args:
        path: The CSV.
        na_values: The cells read as missing; ``None``: pandas' defaults
            (:data:`~ml_api.scoring.cells.NA_CELLS`: ``""``, ``NA``, ``null``, ``NaN``...).
        text: Text columns (``--text``): every cell is text, none missing, as scoring reads
            them (:func:`~ml_api.core.model.columns.missing_cells`).

    Returns:
        The frame; ``frame.attrs["missing_cells"]`` counts, per column, the cells each token made
        missing (``{"sex": {"NA": 11}}``), so training can say what it read as missing.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: The file has no rows, or its structure is broken (rows with more or fewer
            fields than the header, a repeated or blank column name:
            :func:`~ml_api.scoring.structure.check_file`), found before any row is read.
    """
    try:
        check_file(Path(path))
    except InvalidInput as exc:
        raise ValueError(exc.message) from None
    raw = pd.read_csv(path, dtype=str, index_col=False, na_filter=False)
    if raw.empty:
        raise ValueError(f"{Path(path).resolve()} has no data rows")
    tokens = NA_CELLS if na_values is None else frozenset(na_values)
    missing = raw.isin(tokens)
    missing[[c for c in text if c in missing.columns]] = False  # a text cell is never missing
    counts = {
        str(name): {str(k): int(v) for k, v in raw[name][missing[name]].value_counts().items()}
        for name in raw.columns
        if missing[name].any()
    }
    frame = raw.mask(missing)
    frame.attrs["missing_cells"] = counts
    return frame


ColumnKind = Literal["numeric", "categorical", "text"]

IDENTIFIER_SHARE = 0.95
"""A column whose distinct values cover at least this share of its (non-missing) rows is
identifier-like (text; integers also need an id-like name or a dense run of values)."""

MIN_ROWS_FOR_IDENTIFIER = 20
"""Below this many rows, nearly-distinct columns are too common to call identifiers."""

_LEADING_ZERO = re.compile(r"^[+-]?0\d")
_DATE = re.compile(
    r"^(\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4})"
    r"([T ]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$"
    r"|^\d{1,2}:\d{2}(:\d{2})?$"
)
_ID_NAME = re.compile(r"(^|[_\s.-])(id|key|uuid|guid)$|^id[_\s.-]|[a-z]Id$|ID$", re.IGNORECASE)


@dataclass(frozen=True)
class ColumnDecision:
    """What training does with one column of the input.

    Attributes:
        name: Column name.
        kind: ``"numeric"``, ``"categorical"`` or ``"text"`` (``--text``: free text, read by a
            TF-IDF vectorizer) for a feature; ``None`` for a column left out.
        reason: Why it has this kind, or why it was left out (one phrase, printed by ``train``).
    """

    name: str
    kind: ColumnKind | None
    reason: str

    @property
    def used(self) -> bool:
        """Whether the column is a feature."""
        return self.kind is not None


def infer_columns(
    frame: pd.DataFrame,
    *,
    drop: tuple[str, ...] = (),
    keep: tuple[str, ...] = (),
    categorical: tuple[str, ...] = (),
    numeric: tuple[str, ...] = (),
    text: tuple[str, ...] = (),
) -> list[ColumnDecision]:
    """Decide each column's feature kind, or leave it out with the reason.

    The rules, in order (the first that applies wins):

    1. ``drop`` leaves a column out; ``categorical`` / ``numeric`` / ``text`` force a kind.
    2. A column with no values is left out.
    3. A column whose every value parses as a number is numeric, except: digit strings with a
       leading zero (``02134``: codes such as zip codes) are categorical; integers distinct on
       (almost) every row, with an id-like name (``customer_id``, ``key``) or forming a dense run
       (``1001..1200`` in any order), are identifier-like and left out.
    4. Date/time strings (``2024-05-01``, ``05/01/2024 13:45``) are left out: a date seen in
       training rarely recurs, so as a category it can never score a new row. Derive numeric
       parts (year, age in days) in the CSV if they matter, or ``keep`` it as a category.
    5. Text distinct on (almost) every row (:data:`IDENTIFIER_SHARE`, at least
       :data:`MIN_ROWS_FOR_IDENTIFIER` rows) is identifier-like and left out.
    6. Anything else is categorical.

    ``keep`` keeps a column rules 3-5 would leave out (as numeric if it is all numbers, else as
    categorical). Training, and anything else that infers a schema from a table, calls this.

    Args:
        frame: The candidate features (target excluded), shape ``(n_rows, n_columns)``; cells as
            read by :func:`load_csv` (strings) or already typed (numeric dtypes).
        drop: Columns to leave out (ignored where absent).
        keep: Columns to keep even if identifier-like or dates.
        categorical: Columns forced to be categorical.
        numeric: Columns forced to be numeric.
        text: Columns that are free text (reviews, tickets, descriptions): never inferred,
            only named.

    Returns:
        One decision per column of ``frame``, in its order.

    Raises:
        ValueError: An option names a column ``frame`` does not have, a column is both
            categorical and numeric (or text), or a column forced numeric holds a value that is
            no number.
    """
    columns = [str(c) for c in frame.columns]
    options = (("--keep", keep), ("--categorical", categorical), ("--numeric", numeric))
    for option, names in (*options, ("--text", text)):
        unknown = [n for n in names if n not in columns]
        if unknown:
            raise ValueError(f"{option}: no column {', '.join(map(repr, unknown))} in {columns}")
    for (a, first), (b, second) in (
        (("--categorical", categorical), ("--numeric", numeric)),
        (("--text", text), ("--categorical", categorical)),
        (("--text", text), ("--numeric", numeric)),
    ):
        both = set(first) & set(second)
        if both:
            raise ValueError(f"{', '.join(sorted(both))}: both {a} and {b}")
    return [
        ColumnDecision(str(name), "text", "--text")
        if name in text and name not in drop
        else _decide(str(name), frame[name], drop=drop, keep=keep, cat=categorical, num=numeric)
        for name in frame.columns
    ]


def _decide(
    name: str,
    col: pd.Series,
    *,
    drop: tuple[str, ...],
    keep: tuple[str, ...],
    cat: tuple[str, ...],
    num: tuple[str, ...],
) -> ColumnDecision:
    if name in drop:
        return ColumnDecision(name, None, "left out by --drop")
    if name in cat:
        return ColumnDecision(name, "categorical", "--categorical")
    values = col.dropna()
    numbers = _as_numbers(col)
    if name in num:
        bad = values[numbers[values.index].isna()]
        if len(bad):
            raise ValueError(f"--numeric {name}: {bad.iloc[0]!r} is not a number")
        return ColumnDecision(name, "numeric", "--numeric")
    if values.empty:
        return ColumnDecision(name, None, "no values (every cell is empty)")
    kept = name in keep
    distinct = values.nunique()
    nearly_unique = len(values) >= MIN_ROWS_FOR_IDENTIFIER and distinct >= IDENTIFIER_SHARE * len(
        values
    )
    if numbers[values.index].notna().all():
        text = None if pd.api.types.is_numeric_dtype(values) else values.astype(str)
        if text is not None and text.str.match(_LEADING_ZERO).any():
            example = text[text.str.match(_LEADING_ZERO)].iloc[0]
            return ColumnDecision(
                name, "categorical", f"digit codes with leading zeros (e.g. {example!r})"
            )
        ints = numbers.dropna()
        # An identifier is written as an integer: "10.0" (a measured amount) is not one.
        written_as_int = (
            pd.api.types.is_integer_dtype(values)
            if text is None
            else not text.str.contains(r"[.eE]", regex=True).any()
        )
        if nearly_unique and not kept and written_as_int and (ints % 1 == 0).all():
            span = ints.max() - ints.min() + 1
            if _ID_NAME.search(name) or span <= 2 * distinct:
                return ColumnDecision(
                    name,
                    None,
                    f"identifier-like: {distinct} distinct integers in {len(values)} rows "
                    "(--keep to use it)",
                )
        return ColumnDecision(name, "numeric", "numbers" + (" (--keep)" if kept else ""))
    text = values.astype(str)
    if not kept and text.str.match(_DATE).mean() >= IDENTIFIER_SHARE:
        return ColumnDecision(
            name,
            None,
            f"date/time strings (e.g. {text.iloc[0]!r}) cannot score new dates "
            "(derive numeric parts in the CSV, or --keep as a category)",
        )
    if nearly_unique and not kept:
        return ColumnDecision(
            name,
            None,
            f"identifier-like: {distinct} distinct values in {len(values)} rows (--keep to use it)",
        )
    return ColumnDecision(name, "categorical", "text" + (" (--keep)" if kept else ""))


def _as_numbers(col: pd.Series) -> pd.Series:
    """``col`` as floats; ``NaN`` where a cell is missing or not a number (booleans are not)."""
    if pd.api.types.is_bool_dtype(col):
        return pd.Series(float("nan"), index=col.index)
    if pd.api.types.is_numeric_dtype(col):
        return col.astype("float64")
    return pd.to_numeric(col.astype(str).str.strip(), errors="coerce").where(col.notna())


def typed_frame(frame: pd.DataFrame, decisions: list[ColumnDecision]) -> pd.DataFrame:
    """Keep the feature columns, typed as decided.

    Args:
        frame: As passed to :func:`infer_columns`, shape ``(n_rows, n_columns)``.
        decisions: Its result.

    Returns:
        Shape ``(n_rows, n_features)``: numeric columns as numbers (``int64`` when every value is
        an integer and none is missing, else ``float64``), categorical ones as ``object`` strings
        with ``NaN`` for missing, text ones as ``object`` strings with ``""`` for missing.
    """
    out = {}
    for d in decisions:
        col = frame[d.name]
        if d.kind == "numeric":
            numbers = _as_numbers(col)
            whole = numbers.notna().all() and (numbers % 1 == 0).all()
            out[d.name] = numbers.astype("int64") if whole else numbers
        elif d.kind == "categorical":
            out[d.name] = col.map(lambda v: v if pd.isna(v) else str(v)).astype(object)
        elif d.kind == "text":  # an empty cell is an empty text (a vectorizer takes no NaN)
            out[d.name] = col.map(lambda v: "" if pd.isna(v) else str(v)).astype(object)
    return pd.DataFrame(out, index=frame.index)


def typed_target(y: pd.Series) -> pd.Series:
    """The target as numbers when every value is one (and no code has a leading zero), else text."""
    numbers = _as_numbers(y)
    text = y.astype(str)
    if numbers.notna().all() and not text.str.match(_LEADING_ZERO).any():
        return numbers.astype("int64") if (numbers % 1 == 0).all() else numbers
    return text


def split_features_target(
    frame: pd.DataFrame, target: str, drop: tuple[str, ...] = ()
) -> tuple[pd.DataFrame, pd.Series]:
    """Separate the features from the target and drop rows whose target is missing.

    Args:
        frame: Shape ``(n_rows, n_columns)``.
        target: Target column name.
        drop: Columns to leave out of the features (ignored where absent).

    Returns:
        ``(X, y)``: ``X`` shape ``(n_kept, n_features)``, ``y`` shape ``(n_kept,)``; the number of
        rows dropped is ``len(frame) - len(y)``.

    Raises:
        KeyError: ``target`` is not a column.
    """
    if target not in frame.columns:
        raise KeyError(f"target column {target!r} not in {list(frame.columns)}")
    kept = frame[frame[target].notna()]
    features = kept.drop(columns=[target, *[c for c in drop if c in kept.columns]])
    return features.reset_index(drop=True), kept[target].reset_index(drop=True)


def build_preprocessor(schema: FeatureSchema, *, scale: bool) -> ColumnTransformer | Pipeline:
    """Build the column transformer for a schema.

    Args:
        schema: The features, in column order.
        scale: Standardize numeric features (needed by linear models, not by trees).

    Returns:
        An unfitted transformer whose output has the numeric, the one-hot, then each text
        feature's TF-IDF columns (a ``TfidfVectorizer`` per text feature, on the 1-D column);
        for an all-numeric schema, a plain imputer (+ scaler) pipeline that needs no column
        names.
    """
    numeric = [f.name for f in schema.features if f.kind is FeatureKind.NUMERIC]
    categorical = [f.name for f in schema.features if f.kind is FeatureKind.CATEGORICAL]
    text = [f.name for f in schema.features if f.kind is FeatureKind.TEXT]
    num_steps: list[tuple[str, object]] = [("impute", SimpleImputer(strategy="median"))]
    if scale:
        num_steps.append(("scale", StandardScaler()))
    if not categorical and not text:
        # All numeric: no column selection needed; the pipeline then takes a float matrix
        # (n_instances, n_features) in schema order as well as a frame.
        return Pipeline(num_steps)
    transformers: list[tuple[str, Any, str | list[str]]] = []
    if numeric:
        transformers.append(("numeric", Pipeline(num_steps), numeric))
    if categorical:
        transformers.append(
            (
                "categorical",
                Pipeline(
                    [
                        ("impute", SimpleImputer(strategy="most_frequent")),
                        ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
                    ]
                ),
                categorical,
            )
        )
    for name in text:  # the column name as a string: the vectorizer gets the 1-D column
        transformers.append((f"text_{name}", TfidfVectorizer(), name))
    return ColumnTransformer(transformers, remainder="drop", verbose_feature_names_out=False)


def write_splits(
    X_train: pd.DataFrame,
    y_train: pd.Series,
    X_test: pd.DataFrame,
    y_test: pd.Series,
    out_dir: Path,
) -> tuple[Path, Path]:
    """Write the processed train and test splits as CSV (features then target).

    Returns:
        The paths of ``train.csv`` and ``test.csv``.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = out_dir / "train.csv", out_dir / "test.csv"
    for (X, y), path in zip(((X_train, y_train), (X_test, y_test)), paths, strict=True):
        X.assign(**{str(y.name): y.to_numpy()}).to_csv(path, index=False)
    return paths
