"""Training: CSV in, a verified, versioned model artifact out.

``train(options, ...)`` reads a CSV, infers the feature schema and the task, fits a pipeline
(preprocessing plus estimator) on a seeded stratified split, evaluates it on the held-out part and
saves both as a new artifact version, with its card (:class:`~ml_api.core.model.card.TrainedCard`).
The same data and options (:class:`TrainingOptions`) give the same metrics. What it reads from the
data before fitting (the task, hints, refusals) is :mod:`ml_api.training_data`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import (
    accuracy_score,
    f1_score,
    mean_absolute_error,
    r2_score,
    root_mean_squared_error,
)
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline

from ml_api.core.model.artifact import Format, save_artifact
from ml_api.core.model.card import MissingValues, NewCard, TrainedCard, TrainingRecord
from ml_api.core.model.integrity import sha256_file
from ml_api.core.model.profile import PROFILE_FILE, build_profile
from ml_api.core.model.schema import Feature, FeatureSchema
from ml_api.core.model.skops_trust import SKOPS_NODE_TYPES
from ml_api.onnx_export import ONNX_FORM, export_onnx
from ml_api.preprocess import (
    ColumnDecision,
    build_preprocessor,
    infer_columns,
    load_csv,
    split_features_target,
    typed_frame,
    typed_target,
    write_splits,
)
from ml_api.scoring.cells import NA_CELLS
from ml_api.training_data import (
    Task,
    check_classes,
    check_trainable,
    infer_task,
    integer_code_hints,
    mark_nullable,
)

ESTIMATORS = ("linear", "random_forest", "hist_gradient_boosting")
"""``linear`` is logistic regression for classification and ridge regression for regression."""


def make_estimator(task: Task, name: str, seed: int) -> tuple[Any, bool]:
    """Return an unfitted estimator and whether its numeric inputs should be scaled.

    Args:
        task: ``"classification"`` or ``"regression"``.
        name: One of :data:`ESTIMATORS`.
        seed: ``random_state`` for estimators that use randomness.

    Raises:
        ValueError: Unknown estimator name.
    """
    classification = task == "classification"
    if name == "linear":
        return (LogisticRegression(max_iter=1000) if classification else Ridge(alpha=1.0)), True
    if name == "random_forest":
        cls = RandomForestClassifier if classification else RandomForestRegressor
        # n_jobs=1: a server already runs one process per core; nested threads only contend.
        return cls(n_estimators=100, random_state=seed, n_jobs=1), False
    if name == "hist_gradient_boosting":
        cls = HistGradientBoostingClassifier if classification else HistGradientBoostingRegressor
        return cls(random_state=seed), False
    raise ValueError(f"unknown estimator {name!r}; choose one of {', '.join(ESTIMATORS)}")


def evaluate(task: Task, y_true: pd.Series, y_pred: np.ndarray) -> dict[str, float]:
    """Held-out metrics: accuracy and macro F1 (classification) or R², MAE, RMSE (regression)."""
    if task == "classification":
        return {
            "accuracy": float(accuracy_score(y_true, y_pred)),
            "f1_macro": float(f1_score(y_true, y_pred, average="macro")),
        }
    return {
        "r2": float(r2_score(y_true, y_pred)),
        "mae": float(mean_absolute_error(y_true, y_pred)),
        "rmse": float(root_mean_squared_error(y_true, y_pred)),
    }


def _class_distribution(y: pd.Series) -> dict[str, float]:
    """Share of each class among the training rows, keyed by the label as a string."""
    shares = y.value_counts(normalize=True).sort_index()
    return {str(label): float(share) for label, share in shares.items()}


@dataclass(frozen=True)
class TrainingOptions:
    """What to train on and how: the data, the target and every choice ``ml-api train`` offers.

    The defaults are ``ml-api train``'s (``ml_api.cli.train``, whose option names are these
    fields).

    Attributes:
        data: CSV file with a header row.
        target: Name of the target column.
        task: Override the inferred task (``None``: :func:`infer_task` decides).
        estimator: One of :data:`ESTIMATORS`.
        drop: Columns to leave out of the features.
        keep: Columns to keep although identifier-like or dates (see
            :func:`ml_api.preprocess.infer_columns`, which decides every column's kind).
        categorical: Columns forced to be categorical features.
        numeric: Columns forced to be numeric features.
        nullable: Features that accept ``null`` at serving although the training data had no
            missing value there (the pipeline's imputer fills it in); by default ``null`` is
            accepted only where training had missing values (``ml_api.core.model.schema``).
        text: Free-text columns (reviews, tickets): each a ``text`` feature read by a
            ``TfidfVectorizer`` (any string up to
            :data:`~ml_api.core.model.schema.TEXT_MAX_LENGTH` characters at serving; an empty
            cell trains as an empty text, and ``null`` is refused: send ``""``).
        na_values: The cells read as missing (``None``: pandas' defaults, ``NA`` included);
            recorded in the card (``missing_values``) and used again to read scoring files.
        test_size: Held-out fraction (0 < test_size < 1), stratified for classification.
        seed: Seed for the split and the estimator: the same inputs give the same metrics.
        fmt: Artifact format (``joblib`` or ``skops``).
        drop_reason: Why ``drop``'s columns are left out, as the card and ``ml-api train``
            say it (``None``: "left out by --drop"; ``ml-api train`` without ``--data`` gives
            the bundled penguins data's own reason for its default).
    """

    data: Path
    target: str
    task: Task | None = None
    estimator: str = "linear"
    drop: tuple[str, ...] = ()
    keep: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()
    numeric: tuple[str, ...] = ()
    nullable: tuple[str, ...] = ()
    text: tuple[str, ...] = ()
    na_values: tuple[str, ...] | None = None
    test_size: float = 0.2
    seed: int = 42
    fmt: Format = "joblib"
    drop_reason: str | None = None


@dataclass(frozen=True)
class TrainResult:
    """What :func:`train` produced.

    Attributes:
        path: The new artifact version directory.
        metrics: Held-out metrics.
        card: The new version's card as built (``metadata.json`` adds name, version, time,
            hashes and library versions).
        columns: What happened to each input column except the target (kind or reason left out).
        rows_without_target: Rows dropped because their target cell was empty.
        code_hints: Numeric features that look like integer codes, with their number of
            distinct values (:func:`integer_code_hints`); ``train`` prints a hint for each.
    """

    path: Path
    metrics: dict[str, float]
    card: TrainedCard
    columns: tuple[ColumnDecision, ...] = ()
    rows_without_target: int = 0
    code_hints: dict[str, int] = field(default_factory=dict)

    @property
    def metadata(self) -> dict[str, Any]:
        """The card's JSON form (:attr:`card` as ``metadata.json`` holds it, less save time's)."""
        return self.card.to_dict()


@dataclass(frozen=True)
class _Prepared:
    """The training data read, typed and checked: what the fit and the card start from."""

    frame: pd.DataFrame
    X: pd.DataFrame
    y: pd.Series
    columns: list[ColumnDecision]
    schema: FeatureSchema
    task: Task
    code_hints: dict[str, int]
    missing_share: dict[str, float]
    """Each feature's share of missing cells as read (before text cells are filled with "")."""


@dataclass(frozen=True)
class _Fitted:
    """The fitted pipeline, its split and its held-out metrics."""

    pipeline: Pipeline
    X_train: pd.DataFrame
    X_test: pd.DataFrame
    y_train: pd.Series
    y_test: pd.Series
    eval_X: Any
    metrics: dict[str, float]


def train(
    options: TrainingOptions,
    *,
    model_root: Path,
    name: str,
    processed_dir: Path | None = None,
) -> TrainResult:
    """Fit, evaluate and save a model as a new artifact version.

    Args:
        options: The data, the target and the training choices.
        model_root: Where artifacts go (``<model_root>/<name>/<version>/``).
        name: Model name.
        processed_dir: Where to write the train/test split CSVs (skipped when ``None``).

    Returns:
        The artifact path, metrics and card.

    Raises:
        FileNotFoundError: ``options.data`` does not exist.
        KeyError: ``options.target`` is not a column.
        ValueError: (one line; nothing written) unknown estimator; a target entirely missing; no
            usable feature column (every one empty or left out); a single class; a class with
            fewer than 2 rows; too few rows to split (see :func:`check_trainable`,
            :func:`check_classes`); an option naming no column.
    """
    data = _prepare(options)
    fitted = _fit(options, data)
    if processed_dir is not None:
        write_splits(fitted.X_train, fitted.y_train, fitted.X_test, fitted.y_test, processed_dir)
    card = _card(options, data, fitted)
    # The card's charts, drawn once here and stored (hashed) beside the model.
    from ml_api.charts import training_charts

    charts, chart_files = training_charts(
        fitted.pipeline,
        data.task,
        options.target,
        fitted.y_train,
        fitted.eval_X,
        fitted.y_test,
        data.schema.names,
        card.classes,
        options.seed,
    )
    # ONNX form, served where it passed the gate on every row (ml_api.onnx_export).
    X = data.X.to_numpy() if card.input == "array" else data.X
    onnx = export_onnx(fitted.pipeline, data.schema, X, array_input=card.input == "array")
    card = onnx.apply(replace(card, charts=charts))
    # The reference profile of the training data, against which serving measures drift.
    profile = build_profile(
        data.schema,
        data.X,
        fitted.pipeline.predict(X),
        classifier=data.task == "classification",
        source="training",
    )
    path = save_artifact(
        fitted.pipeline,
        model_root=model_root,
        name=name,
        card=card,
        fmt=options.fmt,
        forms=onnx.forms(),
        files={**chart_files, PROFILE_FILE: profile.to_bytes()},
        skops_trusted=list(SKOPS_NODE_TYPES),  # trees fitted here, not read from a file
    )
    return TrainResult(
        path=path,
        metrics=fitted.metrics,
        card=card,
        columns=tuple(data.columns),
        rows_without_target=len(data.frame) - len(data.y),
        code_hints=data.code_hints,
    )


def _prepare(options: TrainingOptions) -> _Prepared:
    """Read the CSV, decide every column's kind, type the features, infer schema and task."""
    frame = load_csv(options.data, options.na_values, options.text)
    X, y = split_features_target(frame, options.target)
    check_trainable(X, y, options.target, options.test_size)
    if options.text and options.estimator == "hist_gradient_boosting":
        raise ValueError(
            "--text needs --estimator linear or random_forest: hist_gradient_boosting takes no "
            "sparse input, and a text feature's TF-IDF columns are sparse"
        )
    columns = infer_columns(
        X,
        drop=options.drop,
        keep=options.keep,
        categorical=options.categorical,
        numeric=options.numeric,
        text=options.text,
    )
    if options.drop_reason is not None:
        columns = [
            replace(c, reason=options.drop_reason) if c.name in options.drop else c for c in columns
        ]
    if not any(c.used for c in columns):
        left = "; ".join(f"{c.name}: {c.reason}" for c in columns)
        raise ValueError(f"no feature left to train on ({left})")
    missing_share = {str(k): float(v) for k, v in X.isna().mean().items()}
    X, y = typed_frame(X, columns), typed_target(y)
    schema = with_text(mark_nullable(FeatureSchema.infer(X), options.nullable), columns)
    X = schema.coerce_training_frame(X)
    code_hints = integer_code_hints(X, schema, options.numeric)
    task = options.task or infer_task(y)
    if task == "classification":
        y = y.astype(str) if not pd.api.types.is_numeric_dtype(y) else y
        check_classes(y, options.target, options.test_size)
    shares = {name: missing_share[name] for name in schema.names}
    return _Prepared(frame, X, y, columns, schema, task, code_hints, shares)


def _fit(options: TrainingOptions, data: _Prepared) -> _Fitted:
    """Split (seeded, stratified for classification), fit the pipeline, score the held-out part."""
    model, scale = make_estimator(data.task, options.estimator, options.seed)
    stratify = data.y if data.task == "classification" else None
    X_train, X_test, y_train, y_test = train_test_split(
        data.X,
        data.y,
        test_size=options.test_size,
        random_state=options.seed,
        stratify=stratify,
    )
    pipeline = Pipeline(
        [("preprocess", build_preprocessor(data.schema, scale=scale)), ("model", model)]
    )
    # All-numeric data is fitted on a float matrix, so serving can skip building a DataFrame and
    # the column selection (several times faster per call; see ml_api.core.runtimes.predictor).
    array_input = data.schema.all_numeric
    fit_X, eval_X = (X_train.to_numpy(), X_test.to_numpy()) if array_input else (X_train, X_test)
    pipeline.fit(fit_X, y_train)
    metrics = evaluate(data.task, y_test, pipeline.predict(eval_X))
    return _Fitted(pipeline, X_train, X_test, y_train, y_test, eval_X, metrics)


def _card(options: TrainingOptions, data: _Prepared, fitted: _Fitted) -> TrainedCard:
    """The new version's card, before its charts and served forms."""
    classes = getattr(fitted.pipeline, "classes_", None)
    frame, X, y = data.frame, data.X, data.y
    tokens = sorted(NA_CELLS if options.na_values is None else set(options.na_values))
    return TrainedCard(
        task=data.task,
        estimator=options.estimator,
        estimator_class=type(fitted.pipeline[-1]).__name__,
        target=options.target,
        input="array" if data.schema.all_numeric else "frame",
        schema=data.schema,
        classes=[c.item() if hasattr(c, "item") else c for c in classes]
        if classes is not None
        else None,
        metrics=fitted.metrics,
        missing_values=MissingValues(tokens=tokens, cells=frame.attrs.get("missing_cells", {})),
        training=TrainingRecord(
            data_file=Path(options.data).name,
            data_sha256=sha256_file(Path(options.data)),
            rows=len(X),
            train_rows=len(fitted.X_train),
            test_rows=len(fitted.X_test),
            test_size=options.test_size,
            seed=options.seed,
            dropped_columns=[c for c in options.drop if c in frame.columns],
            marked_nullable=list(dict.fromkeys(options.nullable)),
            left_out=[{"name": c.name, "reason": c.reason} for c in data.columns if not c.used],
            rows_without_target=len(frame) - len(y),
            missing_share=data.missing_share,
            class_distribution=_class_distribution(fitted.y_train)
            if data.task == "classification"
            else None,
        ),
    )


def with_text(schema: FeatureSchema, columns: list[ColumnDecision]) -> FeatureSchema:
    """The schema with each ``--text`` column as a text feature (not nullable: send ``""``)."""
    text = {c.name for c in columns if c.kind == "text"}
    if not text:
        return schema
    return FeatureSchema(
        [
            Feature.text(f.name, f.dtype, nullable=False) if f.name in text else f
            for f in schema.features
        ]
    )


def runtime_line(card: NewCard) -> str:
    """One line saying which runtime serves a version just saved (train and import print it).

    ONNX Runtime where the ONNX form passed the acceptance gate (``ml_api.onnx_export``), else
    scikit-learn, with the gate's (or the converter's) reason.
    """
    onnx = card.forms[ONNX_FORM]
    if onnx["passed"]:
        gate = onnx["gate"]
        return (
            f"ONNX form passed the gate on all {gate['rows']} rows (largest difference "
            f"{gate['max_abs_diff']:.1e}): served by ONNX Runtime (ML_API_RUNTIME=auto)"
        )
    return f"scikit-learn serves ({onnx['reason']})"
