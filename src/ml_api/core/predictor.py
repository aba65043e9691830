"""The predictor: one fitted pipeline, batch-first, results as plain JSON types."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.ensemble import (
    ExtraTreesClassifier,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
)
from sklearn.pipeline import Pipeline

from ml_api.core.artifact import Artifact
from ml_api.core.codecs import to_jsonable
from ml_api.core.errors import InvalidInput


@dataclass(frozen=True, slots=True)
class Prediction:
    """Results for a batch.

    Attributes:
        labels: One prediction per instance (class label or regression value), JSON types.
        probabilities: For classifiers, one ``{class label: probability}`` per instance (labels as
            strings, in the model's class order); ``None`` for regressors.
    """

    labels: list[Any]
    probabilities: list[dict[str, float | None]] | None


class Predictor:
    """Runs a verified artifact's pipeline on validated frames (the scikit-learn runtime).

    The ONNX Runtime predictor (:class:`ml_api.core.onnx_runtime.OnnxPredictor`) has the same
    interface: ``runtime``, ``schema``, ``class_keys``, ``is_classifier``, ``assemble`` and
    ``predict``.

    Args:
        artifact: The loaded model version.
    """

    runtime = "sklearn"

    def __init__(self, artifact: Artifact) -> None:
        self.artifact = artifact
        self.model = artifact.model
        self.schema = artifact.schema
        self._assemble = (
            self.schema.matrix if artifact.metadata.get("input") == "array" else self.schema.frame
        )
        classes = getattr(self.model, "classes_", None)
        self._has_proba = classes is not None and hasattr(self.model, "predict_proba")
        # A Pipeline's preprocessing is run once and both predict and predict_proba of the final
        # estimator use it (the Pipeline's own methods would each transform again: twice the cost
        # for the same numbers).
        if isinstance(self.model, Pipeline) and len(self.model.steps) > 1:
            self._transform = self.model[:-1].transform
            self._estimator = self.model[-1]
        else:
            self._transform = None
            self._estimator = self.model
        # For these, scikit-learn's own predict() is classes_.take(argmax(predict_proba(X))):
        # taking the labels from the probabilities already computed gives the same labels for
        # half the work (a forest's predict would run every tree again).
        self._labels_from_proba = (
            self._has_proba
            and isinstance(
                self._estimator,
                RandomForestClassifier | ExtraTreesClassifier | HistGradientBoostingClassifier,
            )
            and getattr(self._estimator, "n_outputs_", 1) == 1
        )
        self.class_keys: list[str] = (
            [str(c) for c in to_jsonable(np.asarray(classes))] if self._has_proba else []
        )

    @property
    def is_classifier(self) -> bool:
        """Whether the model has classes and class probabilities."""
        return self._has_proba

    def assemble(self, columns: Sequence[Sequence[Any]]) -> pd.DataFrame | np.ndarray:
        """Turn validated columns into what the pipeline takes.

        Args:
            columns: ``n_features`` lists of ``n_instances`` values (``validate_columns``).

        Returns:
            A float matrix ``(n_instances, n_features)`` for models fitted on one (``"input":
            "array"`` in the card), else the frame (:meth:`FeatureSchema.frame`).
        """
        return self._assemble(columns)

    def predict(self, frame: pd.DataFrame | np.ndarray) -> Prediction:
        """Predict a batch.

        Args:
            frame: Validated instances, shape ``(n_instances, n_features)``, in schema order: a
                DataFrame, or a float matrix for models fitted on one (``"input": "array"`` in the
                model card).

        Returns:
            ``n_instances`` labels and, for classifiers, probabilities.

        Raises:
            InvalidInput: (422) the pipeline itself refused the values (a ``ValueError`` or
                ``TypeError`` from scikit-learn, e.g. a missing value for a model fitted without
                imputation); the message quotes scikit-learn's reason.
        """
        try:
            features = self._transform(frame) if self._transform is not None else frame
            if self._labels_from_proba:
                proba = self._estimator.predict_proba(features)
                labels = self._estimator.classes_.take(np.argmax(proba, axis=1), axis=0)
            else:
                labels = self._estimator.predict(features)
                proba = self._estimator.predict_proba(features) if self._has_proba else None
        except (ValueError, TypeError) as exc:
            reason = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
            raise InvalidInput(f"the model could not use these values: {reason}") from exc
        probabilities = None
        if proba is not None:
            keys = self.class_keys
            probabilities = [dict(zip(keys, to_jsonable(row), strict=True)) for row in proba]
        return Prediction(labels=to_jsonable(np.asarray(labels)), probabilities=probabilities)
