"""The import's serve check: data rows through the server's own path, compared with the model.

Up to :data:`SERVE_CHECK_ROWS` rows of the import data are sent as a client following the schema
sends them (JSON values, schema validation, assembly, the runtime's
:class:`~ml_api.core.runtimes.predictor.Predictor`) and must give what the model's own
``predict``/``predict_proba`` give on the same rows; otherwise nothing is written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ml_api.core.errors import InvalidInput
from ml_api.core.model.artifact import Artifact
from ml_api.core.model.card import ImportedCard
from ml_api.core.model.schema import FeatureSchema
from ml_api.core.model.validation import validate_columns
from ml_api.core.runtimes.predictor import PredictionResult
from ml_api.core.runtimes.registry import load_predictor
from ml_api.core.wording import count, describe_model
from ml_api.importing import inspection
from ml_api.importing.sources import ImportRefused

SERVE_CHECK_ROWS = 1000
"""Data rows sent through the server's path before writing (all rows count for the metrics)."""


def json_rows(X: pd.DataFrame, schema: FeatureSchema) -> list[dict[str, Any]]:
    """The rows as a client following the schema sends them.

    Numbers for numeric features and numeric-coded categorical ones, strings for other
    categorical ones (a boolean column's ``True`` is ``"True"``), ``null`` for missing values.
    """
    categorical = {f.name for f in schema.features if f.kind != "numeric" and not f.is_coded}
    out: list[dict[str, Any]] = []
    for record in X.astype(object).to_dict(orient="records"):
        row: dict[str, Any] = {}
        for k, v in record.items():
            if pd.isna(v):
                row[str(k)] = None
            elif k in categorical:
                row[str(k)] = str(v)
            else:
                row[str(k)] = v.item() if isinstance(v, np.generic) else v
        out.append(row)
    return out


def serve_check(model: Any, card: ImportedCard, X: pd.DataFrame, reference: Any) -> int:
    """Predict the first rows through the server's path and compare with the model's own.

    Up to :data:`SERVE_CHECK_ROWS` rows of ``X`` go through JSON values, schema validation and
    the runtime the card chooses.

    Args:
        model: The imported model.
        card: The card being built (``task``, ``classes``, ``input``, the schema...).
        X: The data's feature columns, shape ``(n_rows, n_features)``.
        reference: What the model's own ``predict`` takes (``X``, or its array).

    Returns:
        The number of rows checked (the card's ``import_data.served_check_rows``).

    Raises:
        ImportRefused: A row the server cannot serve, or an answer that differs.
    """
    n = min(len(X), SERVE_CHECK_ROWS)
    own, own_proba = own_predictions(model, reference[:n], n, card.classes)
    artifact = Artifact(model=model, card=card.unsaved("import"), path=Path())
    schema = card.schema
    try:
        predictor = load_predictor(artifact)
        served = predictor.predict(
            validate_columns(schema, json_rows(X.iloc[:n], schema), first_index=1)
        )
    except InvalidInput as exc:
        first = exc.details[0] if exc.details else None
        where = (
            f"data row {first.instance}, column {first.field!r}: {first.problem}"
            if first
            else exc.message
        )
        raise ImportRefused(f"the server could not serve the import data ({where})") from None
    compare(served, own, own_proba if predictor.has_probabilities else None, str(card.task))
    return n


def own_predictions(model: Any, rows: Any, n: int, classes: list[Any] | None) -> tuple[Any, Any]:
    """The model's own ``predict`` (and ``predict_proba``) on ``n`` rows, one value per row.

    Raises:
        ImportRefused: The model fails on the rows, or its output is not one value per row
            (several targets, a different number of rows) or probabilities are not
            ``(n, n_classes)``.
    """
    try:
        own = model.predict(rows)
        proba = model.predict_proba(rows) if classes is not None and has_proba(model) else None
    except Exception as exc:
        raise ImportRefused(
            f"the model cannot predict on the import data: {type(exc).__name__}: {exc}"
        ) from None
    inspection.check_output_shape(model, own, n)
    if proba is not None:
        inspection.check_output_shape(model, proba, n, "predict_proba")
        if np.ndim(proba) != 2 or np.shape(proba)[1] != len(classes or ()):
            raise ImportRefused(
                f"{describe_model(model)}: predict_proba gives shape {np.shape(proba)} for "
                f"{count(len(classes or ()), 'class', 'classes')}: ml-api serves one "
                f"probability per class"
            )
    return own, proba


def has_proba(model: Any) -> bool:
    """Whether the model has ``predict_proba`` (so a classifier's answers carry probabilities)."""
    # hasattr: SVC(probability=False) and SGDClassifier(loss="hinge") hide the method
    return hasattr(model, "predict_proba")


RTOL = 1e-6
"""Relative tolerance of the served check's numbers (regression values, probabilities): ONNX
Runtime computes in float32, whose rounding is ~6e-8 relative, so 1e-6 allows a few roundings
through a pipeline and still catches a wrong column or a wrong model."""

ATOL = 1e-9
"""Absolute tolerance beside :data:`RTOL`, for numbers at or near zero."""


def compare(served: PredictionResult, own: Any, own_proba: Any, task: str) -> None:
    """Refuse the import when the served answers differ from the model's own.

    Labels compare as strings for classifiers and within :data:`RTOL` (and :data:`ATOL`) for
    regressors; probabilities within the same tolerance when both sides have them.

    Raises:
        ImportRefused: A row differs; the message names the first one (1-based).
    """
    labels = np.asarray(served.labels, dtype=object)
    own = np.asarray(own)
    if task == "regression":
        same = np.isclose(labels.astype(float), own.astype(float), rtol=RTOL, atol=ATOL)
    else:
        same = np.array([str(a) == str(b) for a, b in zip(labels, own.tolist(), strict=True)])
    if own_proba is not None and served.probabilities is not None:
        same &= np.isclose(served.probabilities, own_proba, rtol=RTOL, atol=ATOL).all(axis=1)
    if not same.all():
        row = int(np.flatnonzero(~same)[0])
        raise ImportRefused(
            f"served predictions differ from the model's own on data row {row + 1} "
            f"(served {labels[row]!r}, model {own[row]!r}): the data's column types are not the "
            f"ones the model was fitted on"
        )
