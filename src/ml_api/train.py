"""Training: CSV in, a verified, versioned model artifact out.

``train()`` reads a CSV, infers the feature schema and the task, fits a pipeline (preprocessing plus
estimator) on a seeded stratified split, evaluates it on the held-out part and saves both as a new
artifact version. The same data and options give the same metrics.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

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

from ml_api.core.errors import quote
from ml_api.core.model.artifact import Format, save_artifact
from ml_api.core.model.integrity import sha256_file
from ml_api.core.model.schema import Feature, FeatureSchema
from ml_api.core.model.skops_trust import SKOPS_NODE_TYPES
from ml_api.onnx_export import export_onnx
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

Task = Literal["classification", "regression"]
ESTIMATORS = ("linear", "random_forest", "hist_gradient_boosting")
"""``linear`` is logistic regression for classification and ridge regression for regression."""

MAX_CLASSES_FOR_NUMERIC_TARGET = 20
"""A numeric target with at most this many distinct integer values is taken as classes."""


CODE_HINT_MAX_DISTINCT = MAX_CLASSES_FOR_NUMERIC_TARGET
CODE_HINT_MAX_SHARE = 0.05
"""An integer feature with at most :data:`CODE_HINT_MAX_DISTINCT` distinct values, and at most this
share of the rows, gets a hint in ``train``'s output that it may be a code (see
:func:`integer_code_hints`). 20 is the bound under which an integer target is taken as classes,
so a column is hinted at exactly where the same values as a target would be classes; the 5 %
share means each value recurs on at least 20 rows on average, as codes (store ids, region
numbers) do, while a measured quantity in a small file (ages in 50 rows) does not qualify. It is
a hint only: inference is unchanged, and a count with few values (rooms, children) may trigger
it, which the wording ("if these are codes") allows for."""


def integer_code_hints(
    X: pd.DataFrame, schema: FeatureSchema, forced_numeric: tuple[str, ...] = ()
) -> dict[str, int]:
    """Numeric features that look like integer codes: few distinct integers, many rows each.

    Args:
        X: The typed training features, shape ``(n_rows, n_features)``.
        schema: Their schema (only ``numeric`` features are looked at).
        forced_numeric: Columns the user typed numeric (``--numeric``): no hint for those.

    Returns:
        Feature name to its number of distinct values, for the features within
        :data:`CODE_HINT_MAX_DISTINCT` and :data:`CODE_HINT_MAX_SHARE` of the rows.
    """
    hints: dict[str, int] = {}
    for f in schema.features:
        if f.kind != "numeric" or f.name in forced_numeric:
            continue
        column = X[f.name]
        if pd.api.types.is_bool_dtype(column) or not pd.api.types.is_numeric_dtype(column):
            continue
        values = column.dropna().to_numpy(dtype=float)
        if values.size == 0 or not np.all(np.mod(values, 1) == 0):
            continue
        distinct = len(np.unique(values))
        if 1 < distinct <= CODE_HINT_MAX_DISTINCT and distinct <= CODE_HINT_MAX_SHARE * len(X):
            hints[f.name] = distinct
    return hints


def infer_task(y: pd.Series) -> Task:
    """Guess the task from the target column.

    Non-numeric or boolean targets are classification; numeric targets are regression, except
    integer-valued targets with at most :data:`MAX_CLASSES_FOR_NUMERIC_TARGET` distinct values.
    Pass ``task`` to :func:`train` to override.
    """
    if not pd.api.types.is_numeric_dtype(y) or pd.api.types.is_bool_dtype(y):
        return "classification"
    values = y.dropna().to_numpy(dtype=float)
    if np.all(np.mod(values, 1) == 0) and len(np.unique(values)) <= MAX_CLASSES_FOR_NUMERIC_TARGET:
        return "classification"
    return "regression"


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


def mark_nullable(schema: FeatureSchema, names: tuple[str, ...]) -> FeatureSchema:
    """Mark features as accepting ``null`` (``ml-api train --nullable COL``).

    Args:
        schema: The inferred schema.
        names: Feature names to mark; already nullable ones stay so.

    Returns:
        The schema with those features' ``nullable`` set.

    Raises:
        ValueError: A name is not one of the features (a column left out, or no column at all).
    """
    unknown = [n for n in names if n not in schema.names]
    if unknown:
        raise ValueError(
            f"--nullable {unknown[0]!r} is not a feature; features: {', '.join(schema.names)}"
        )
    wanted = set(names)
    return FeatureSchema(
        [replace(f, nullable=True) if f.name in wanted else f for f in schema.features]
    )


def _class_distribution(y: pd.Series) -> dict[str, float]:
    """Share of each class among the training rows, keyed by the label as a string."""
    shares = y.value_counts(normalize=True).sort_index()
    return {str(label): float(share) for label, share in shares.items()}


def check_trainable(X: pd.DataFrame, y: pd.Series, target: str, test_size: float) -> None:
    """Refuse data no model can be fitted on, before anything is written.

    Args:
        X: Features, shape ``(n_rows, n_features)`` (rows with a target only).
        y: Target, shape ``(n_rows,)``.
        target: Target column name (for messages).
        test_size: Held-out fraction.

    Raises:
        ValueError: (one line) the target column is entirely missing, or no feature column has
            a value.
    """
    if len(y) == 0:
        raise ValueError(f"target column {target!r} has no values: every row's target is missing")
    usable = [str(c) for c in X.columns if X[c].notna().any()]
    if not usable:
        raise ValueError(
            "no usable feature columns: every column other than the target is dropped or empty"
        )
    n_test = math.ceil(test_size * len(y))
    if len(y) - n_test < 1 or n_test < 1:
        raise ValueError(f"{len(y)} rows with a target are too few to hold out {test_size:g}")


def check_classes(y: pd.Series, target: str, test_size: float) -> None:
    """Refuse a classification target the seeded stratified split cannot handle.

    Raises:
        ValueError: (one line) a single class; a class with fewer than 2 rows (the stratified
            split needs one on each side); or fewer held-out rows than classes.
    """
    counts = y.value_counts()
    if len(counts) < 2:
        raise ValueError(
            f"target column {target!r} has a single class ({quote(str(counts.index[0]))}): "
            "a classifier needs at least two"
        )
    if counts.min() < 2:
        raise ValueError(
            f"class {quote(str(counts.idxmin()))} of {target!r} has {counts.min()} row; "
            "every class needs at least 2 for the stratified train/test split"
        )
    n_test = math.ceil(test_size * len(y))
    if n_test < len(counts) or len(y) - n_test < len(counts):
        raise ValueError(
            f"{len(y)} rows are too few for a stratified split of {len(counts)} classes with "
            f"test size {test_size:g}: each side needs a row of every class"
        )


@dataclass(frozen=True)
class TrainResult:
    """What :func:`train` produced.

    Attributes:
        path: The new artifact version directory.
        metrics: Held-out metrics.
        metadata: The full model card written to ``metadata.json``'s inputs.
        columns: What happened to each input column except the target (kind or reason left out).
        rows_without_target: Rows dropped because their target cell was empty.
        code_hints: Numeric features that look like integer codes, with their number of
            distinct values (:func:`integer_code_hints`); ``train`` prints a hint for each.
    """

    path: Path
    metrics: dict[str, float]
    metadata: dict[str, Any]
    columns: tuple[ColumnDecision, ...] = ()
    rows_without_target: int = 0
    code_hints: dict[str, int] = field(default_factory=dict)


def train(
    data: Path,
    target: str,
    *,
    model_root: Path,
    name: str,
    processed_dir: Path | None = None,
    task: Task | None = None,
    estimator: str = "linear",
    drop: tuple[str, ...] = (),
    keep: tuple[str, ...] = (),
    categorical: tuple[str, ...] = (),
    numeric: tuple[str, ...] = (),
    nullable: tuple[str, ...] = (),
    text: tuple[str, ...] = (),
    test_size: float = 0.2,
    seed: int = 42,
    fmt: Format = "joblib",
    na_values: tuple[str, ...] | None = None,
) -> TrainResult:
    """Fit, evaluate and save a model as a new artifact version.

    Args:
        data: CSV file with a header row.
        target: Name of the target column.
        model_root: Where artifacts go (``<model_root>/<name>/<version>/``).
        name: Model name.
        processed_dir: Where to write the train/test split CSVs (skipped when ``None``).
        task: Override the inferred task.
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
        test_size: Held-out fraction (0 < test_size < 1), stratified for classification.
        seed: Seed for the split and the estimator: the same inputs give the same metrics.
        fmt: Artifact format (``joblib`` or ``skops``).
        na_values: The cells read as missing (``None``: pandas' defaults, ``NA`` included);
            recorded in the card (``missing_values``) and used again to read scoring files.

    Returns:
        The artifact path and metrics.

    Raises:
        FileNotFoundError: ``data`` does not exist.
        KeyError: ``target`` is not a column.
        ValueError: (one line; nothing written) unknown estimator; a target entirely missing; no
            usable feature column (every one empty or left out); a single class; a class with
            fewer than 2 rows; too few rows to split (see :func:`check_trainable`,
            :func:`check_classes`); an option naming no column.
    """
    frame = load_csv(data, na_values)
    tokens = sorted(NA_CELLS if na_values is None else set(na_values))
    X, y = split_features_target(frame, target)
    check_trainable(X, y, target, test_size)
    if text and estimator == "hist_gradient_boosting":
        raise ValueError(
            "--text needs --estimator linear or random_forest: hist_gradient_boosting takes no "
            "sparse input, and a text feature's TF-IDF columns are sparse"
        )
    columns = infer_columns(
        X, drop=drop, keep=keep, categorical=categorical, numeric=numeric, text=text
    )
    if not any(c.used for c in columns):
        left = "; ".join(f"{c.name}: {c.reason}" for c in columns)
        raise ValueError(f"no feature left to train on ({left})")
    X, y = typed_frame(X, columns), typed_target(y)
    schema = with_text(mark_nullable(FeatureSchema.infer(X), nullable), columns)
    X = schema.coerce_training_frame(X)
    code_hints = integer_code_hints(X, schema, numeric)
    task = task or infer_task(y)
    if task == "classification":
        y = y.astype(str) if not pd.api.types.is_numeric_dtype(y) else y
        check_classes(y, target, test_size)
    model, scale = make_estimator(task, estimator, seed)
    stratify = y if task == "classification" else None
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=test_size, random_state=seed, stratify=stratify
    )
    pipeline = Pipeline([("preprocess", build_preprocessor(schema, scale=scale)), ("model", model)])
    # All-numeric data is fitted on a float matrix, so serving can skip building a DataFrame and
    # the column selection (several times faster per call; see ml_api.core.runtimes.predictor).
    array_input = schema.all_numeric
    fit_X, eval_X = (X_train.to_numpy(), X_test.to_numpy()) if array_input else (X_train, X_test)
    pipeline.fit(fit_X, y_train)
    metrics = evaluate(task, y_test, pipeline.predict(eval_X))
    if processed_dir is not None:
        write_splits(X_train, y_train, X_test, y_test, processed_dir)
    classes = getattr(pipeline, "classes_", None)
    card: dict[str, Any] = {
        "task": task,
        "estimator": estimator,
        "estimator_class": type(model).__name__,
        "target": target,
        "input": "array" if array_input else "frame",
        "features": schema.to_list(),
        "classes": [c.item() if hasattr(c, "item") else c for c in classes]
        if classes is not None
        else None,
        "metrics": metrics,
        "missing_values": {"tokens": tokens, "cells": frame.attrs.get("missing_cells", {})},
        "training": {
            "data_file": Path(data).name,
            "data_sha256": sha256_file(Path(data)),
            "rows": len(X),
            "train_rows": len(X_train),
            "test_rows": len(X_test),
            "test_size": test_size,
            "seed": seed,
            "dropped_columns": [c for c in drop if c in frame.columns],
            "marked_nullable": list(dict.fromkeys(nullable)),
            "left_out": [{"name": c.name, "reason": c.reason} for c in columns if not c.used],
            "rows_without_target": len(frame) - len(y),
            "missing_share": {str(k): float(v) for k, v in X.isna().mean().items()},
            "class_distribution": _class_distribution(y_train)
            if task == "classification"
            else None,
        },
    }
    # The card's charts, drawn once here and stored (hashed) beside the model.
    from ml_api.charts import training_charts

    card["charts"], chart_files = training_charts(
        pipeline, task, target, y_train, eval_X, y_test, schema.names, card["classes"], seed
    )
    # ONNX form, served where it passed the gate on every row (ml_api.onnx_export).
    forms = export_onnx(
        pipeline, schema, X.to_numpy() if array_input else X, array_input=array_input
    ).apply(card)
    path = save_artifact(
        pipeline,
        model_root=model_root,
        name=name,
        metadata=card,
        fmt=fmt,
        forms=forms,
        files=chart_files,
        skops_trusted=list(SKOPS_NODE_TYPES),  # trees fitted here, not read from a file
    )
    return TrainResult(
        path=path,
        metrics=metrics,
        metadata=card,
        columns=tuple(columns),
        rows_without_target=len(frame) - len(y),
        code_hints=code_hints,
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


def runtime_line(card: dict[str, Any]) -> str:
    """One line saying which runtime serves a version just saved (train and import print it).

    ONNX Runtime where the ONNX form passed the acceptance gate (``ml_api.onnx_export``), else
    scikit-learn, with the gate's (or the converter's) reason.
    """
    onnx = card["onnx"]
    if onnx["passed"]:
        gate = onnx["gate"]
        return (
            f"ONNX form passed the gate on all {gate['rows']} rows (largest difference "
            f"{gate['max_abs_diff']:.1e}): served by ONNX Runtime (ML_API_RUNTIME=auto)"
        )
    return f"scikit-learn serves ({onnx['reason']})"
