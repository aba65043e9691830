"""The scikit-learn runtime: a fitted pipeline, batch-first, preprocessing run once per call."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from importlib import metadata as importlib_metadata
from typing import Any

import numpy as np
import pandas as pd
from sklearn.ensemble import (
    ExtraTreesClassifier,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
)
from sklearn.pipeline import Pipeline

from ml_api.core.errors import InvalidInput
from ml_api.core.model.artifact import Artifact
from ml_api.core.model.schema import CATEGORY_DTYPE, FeatureKind, native_categorical
from ml_api.core.runtimes.invariance import rowwise_linear, unproven_steps
from ml_api.core.runtimes.predictor import (
    Capabilities,
    PredictionResult,
    Runtime,
    at_least_two_rows,
    check_rows,
    concatenate,
    to_jsonable,
)


class SklearnPredictor(Runtime):
    """Runs a verified artifact's scikit-learn pipeline on validated columns.

    Columns are assembled into a float matrix for models fitted on one (``"input": "array"`` in
    the model card, all-numeric data), into the one text column as a 1-D array for a pipeline
    that starts with a text vectorizer fitted on a column (``"column"``), and into a DataFrame
    otherwise. It runs the artifact's own
    model, which every version has: the registry's fallback runtime.

    Args:
        artifact: The loaded model version (its model a fitted estimator or ``Pipeline``).
    """

    runtime = "scikit-learn"
    setting = "sklearn"
    title = "scikit-learn"
    capabilities = Capabilities(batches_across_requests=True, takes_every_batch=True)
    """Batch-invariant: a lone instance is evaluated as two rows (``SMALLEST_CALL_ROWS``), so
    every call takes BLAS's GEMM path, and a one-output linear model (whose predict is a
    matrix-vector product at any size) sums each row's score row-wise
    (:mod:`ml_api.core.runtimes.invariance`); tests/core/test_batch_invariance.py checks both. A
    model with a step not known to compute rows independently (an imported neural network, say)
    is evaluated one instance per call and declares ``batches_across_requests=False`` (``note``
    says why), so it is not batched."""

    def __init__(self, artifact: Artifact) -> None:
        self.model = artifact.model
        schema = artifact.schema
        self._schema = schema
        layouts: dict[str, Callable[[Sequence[Sequence[Any]]], Any]] = {
            "array": schema.matrix,
            "frame": self._frame,
            "column": _column,
        }
        self._assemble = layouts[artifact.card.input]
        classes = getattr(self.model, "classes_", None)
        # A classifier is a classifier because it has classes_; predict_proba may be absent
        # (LinearSVC, RidgeClassifier, SVC(probability=False)): then labels only.
        self._has_proba = classes is not None and hasattr(self.model, "predict_proba")
        # A Pipeline's preprocessing is run once and both predict and predict_proba of the final
        # estimator use it (the Pipeline's own methods would each transform again: twice the cost
        # for the same numbers).
        if isinstance(self.model, Pipeline) and len(self.model.steps) > 1:
            self._transform: Callable[[Any], Any] | None = _steps_transform(self.model)
            self._estimator = self.model[-1]
        else:
            self._transform = None
            self._estimator = self.model
        final = self.model[-1] if isinstance(self.model, Pipeline) else self.model
        rowwise = rowwise_linear(final)
        if rowwise is not None:  # one output: a GEMV, each row's sum made position-independent
            self._estimator = rowwise
        # a model with a step not known to compute rows independently: one instance per call
        unproven = unproven_steps(self.model)
        self._row_by_row = bool(unproven)
        if unproven:
            self.capabilities = Capabilities(  # type: ignore[misc]
                batches_across_requests=False,
                takes_every_batch=True,
                note=(
                    f"{', '.join(sorted(set(unproven)))} not known to compute a row "
                    "independently of the others: each instance is evaluated alone, requests "
                    "are not batched"
                ),
            )
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
        self.classes: tuple[Any, ...] = (
            tuple(to_jsonable(np.asarray(classes))) if classes is not None else ()
        )

    def _frame(self, columns: Sequence[Sequence[Any]]) -> pd.DataFrame:
        """Assemble validated columns with the dtypes the pipeline was fitted on.

        Training fits on :meth:`~ml_api.core.model.schema.FeatureSchema.coerce_training_frame`'s
        frame: ``float64`` numbers, ``object`` text (``str`` or ``NaN``), ``category`` for
        native-categorical models. ``pandas.DataFrame`` would turn ``object`` text into its own
        ``str`` dtype (pandas 3), which scikit-learn's encoders convert back to ``object``,
        value by value: twice the work for the same values and the same predictions.

        Args:
            columns: ``n_features`` sequences of ``n_instances`` validated values.

        Returns:
            Shape ``(n_instances, n_features)``, columns in schema order.
        """
        data: dict[str, Any] = {}
        for f, col in zip(self._schema.features, columns, strict=True):
            if f.kind is FeatureKind.NUMERIC:
                data[f.name] = np.asarray(col, dtype="float64")
            elif f.dtype == CATEGORY_DTYPE:
                data[f.name] = native_categorical(col, f)
            else:
                data[f.name] = pd.Series(np.asarray(col, dtype=object), dtype=object, copy=False)
        return pd.DataFrame(data, columns=list(self._schema.names), copy=False)

    @property
    def runtime_version(self) -> str:
        """The installed scikit-learn version."""
        try:
            return importlib_metadata.version("scikit-learn")
        except importlib_metadata.PackageNotFoundError:  # pragma: no cover - always installed
            return ""

    @property
    def is_classifier(self) -> bool:
        """Whether the model has classes (``classes_``)."""
        return bool(self.classes)

    @property
    def has_probabilities(self) -> bool:
        """Whether the model gives class probabilities (``predict_proba``)."""
        return self._has_proba

    def predict(self, columns: Sequence[Sequence[Any]]) -> PredictionResult:
        """Predict a batch (see :meth:`ml_api.core.runtimes.predictor.Predictor.predict`).

        Raises:
            InvalidInput: (422) the pipeline itself refused the values (a ``ValueError`` or
                ``TypeError`` from scikit-learn, e.g. a missing value for a model fitted without
                imputation); the message quotes scikit-learn's reason.
        """
        if self._row_by_row and columns and len(columns[0]) > 1:
            return concatenate(
                [self._call([[col[i]] for col in columns]) for i in range(len(columns[0]))]
            )
        return self._call(columns)

    def _call(self, columns: Sequence[Sequence[Any]]) -> PredictionResult:
        columns, padded = at_least_two_rows(columns)
        features = self._assemble(columns)
        try:
            if self._transform is not None:
                features = self._transform(features)
            if self._labels_from_proba:
                proba = self._estimator.predict_proba(features)
                labels = self._estimator.classes_.take(np.argmax(proba, axis=1), axis=0)
            else:
                labels = self._estimator.predict(features)
                proba = self._estimator.predict_proba(features) if self._has_proba else None
        except (ValueError, TypeError) as exc:
            reason = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
            raise InvalidInput(f"the model could not use these values: {reason}") from exc
        result = PredictionResult(
            labels=np.asarray(labels), probabilities=proba, classes=self.classes
        )
        check_rows(result, len(columns[0]) if columns else 0, len(self.classes))
        return result.head(1) if padded else result


def _column(columns: Sequence[Sequence[Any]]) -> np.ndarray:
    """The one validated text column, shape ``(n_instances,)``, ``object`` (a 1-D input)."""
    (values,) = columns
    return np.asarray(values, dtype=object)


def _steps_transform(pipeline: Pipeline) -> Callable[[Any], Any]:
    """Every step but the last, applied in order, as ``pipeline[:-1].transform`` would.

    Step by step rather than through the sliced pipeline: a sliced pipeline checks that its last
    step is fitted, and a stateless transformer of the user's own (``fit`` returns ``self`` and
    sets nothing) would fail that check although the whole pipeline predicts.
    """
    steps = [step for _, step in pipeline.steps[:-1] if step is not None and step != "passthrough"]

    def transform(X: Any) -> Any:
        for step in steps:
            X = step.transform(X)
        return X

    return transform
