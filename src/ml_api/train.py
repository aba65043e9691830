"""Training: CSV in, a verified, versioned model artifact out.

``train()`` reads a CSV, infers the feature schema and the task, fits a pipeline (preprocessing plus
estimator) on a seeded stratified split, evaluates it on the held-out part and saves both as a new
artifact version. The same data and options give the same metrics.
"""

from __future__ import annotations

from dataclasses import dataclass
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

from ml_api.core.artifact import Format, save_artifact, sha256_file
from ml_api.core.schema import FeatureSchema
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

Task = Literal["classification", "regression"]
ESTIMATORS = ("linear", "random_forest", "hist_gradient_boosting")
"""``linear`` is logistic regression for classification and ridge regression for regression."""

MAX_CLASSES_FOR_NUMERIC_TARGET = 20
"""A numeric target with at most this many distinct integer values is taken as classes."""


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


def _class_distribution(y: pd.Series) -> dict[str, float]:
    """Share of each class among the training rows, keyed by the label as a string."""
    shares = y.value_counts(normalize=True).sort_index()
    return {str(label): float(share) for label, share in shares.items()}


@dataclass(frozen=True)
class TrainResult:
    """What :func:`train` produced.

    Attributes:
        path: The new artifact version directory.
        metrics: Held-out metrics.
        metadata: The full model card written to ``metadata.json``'s inputs.
        columns: What happened to each input column except the target (kind or reason left out).
        rows_without_target: Rows dropped because their target cell was empty.
    """

    path: Path
    metrics: dict[str, float]
    metadata: dict[str, Any]
    columns: tuple[ColumnDecision, ...] = ()
    rows_without_target: int = 0


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
    test_size: float = 0.2,
    seed: int = 42,
    fmt: Format = "joblib",
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
        test_size: Held-out fraction (0 < test_size < 1), stratified for classification.
        seed: Seed for the split and the estimator: the same inputs give the same metrics.
        fmt: Artifact format (``joblib`` or ``skops``).

    Returns:
        The artifact path and metrics.

    Raises:
        FileNotFoundError: ``data`` does not exist.
        KeyError: ``target`` is not a column.
        ValueError: Unknown estimator, too few rows or classes to split and fit, an option naming
            no column, or no column left to use as a feature.
    """
    frame = load_csv(data)
    X, y = split_features_target(frame, target)
    columns = infer_columns(X, drop=drop, keep=keep, categorical=categorical, numeric=numeric)
    if not any(c.used for c in columns):
        left = "; ".join(f"{c.name}: {c.reason}" for c in columns)
        raise ValueError(f"no feature left to train on ({left})")
    X, y = typed_frame(X, columns), typed_target(y)
    schema = FeatureSchema.infer(X)
    X = schema.coerce_training_frame(X)
    task = task or infer_task(y)
    if task == "classification":
        y = y.astype(str) if not pd.api.types.is_numeric_dtype(y) else y
    model, scale = make_estimator(task, estimator, seed)
    stratify = y if task == "classification" and y.value_counts().min() >= 2 else None
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=test_size, random_state=seed, stratify=stratify
    )
    pipeline = Pipeline([("preprocess", build_preprocessor(schema, scale=scale)), ("model", model)])
    # All-numeric data is fitted on a float matrix, so serving can skip building a DataFrame and
    # the column selection (several times faster per call; see ml_api.core.predictor).
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
        "training": {
            "data_file": Path(data).name,
            "data_sha256": sha256_file(Path(data)),
            "rows": len(X),
            "train_rows": len(X_train),
            "test_rows": len(X_test),
            "test_size": test_size,
            "seed": seed,
            "dropped_columns": [c for c in drop if c in frame.columns],
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
    path = save_artifact(
        pipeline, model_root=model_root, name=name, metadata=card, fmt=fmt, files=chart_files
    )
    return TrainResult(
        path=path,
        metrics=metrics,
        metadata=card,
        columns=tuple(columns),
        rows_without_target=len(frame) - len(y),
    )
