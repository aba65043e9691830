"""A CatBoost model read from its own ``.cbm`` file, with scikit-learn's interface.

CatBoost's own classes are close to scikit-learn's but not the same: a multi-class
``CatBoostClassifier.predict`` answers a ``(n, 1)`` column, and the feature names are
``feature_names_``, not ``feature_names_in_``. :class:`CatBoostModel` wraps the library's
``CatBoostClassifier``/``CatBoostRegressor`` so that the import, the serving runtime and the
version gate see an ordinary estimator: ``predict`` gives ``(n_instances,)``, ``predict_proba``
``(n_instances, n_classes)`` in ``classes_`` order. It is what ``model.joblib`` holds for such an
import (the version records CatBoost's version; loading needs the ``catboost`` extra).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin


class CatBoostModel(BaseEstimator):
    """scikit-learn's interface over a loaded CatBoost model (base of the two below).

    Args:
        booster: A fitted ``catboost.CatBoostRegressor`` (:class:`CatBoostRegressorModel`) or
            ``catboost.CatBoostClassifier`` (:class:`CatBoostClassifierModel`).
    """

    def __init__(self, booster: Any = None) -> None:
        self.booster = booster

    @property
    def wraps(self) -> Any:
        """The CatBoost object itself (what the import line and the card page name)."""
        return self.booster

    def __sklearn_is_fitted__(self) -> bool:
        return self.booster is not None and bool(self.booster.is_fitted())

    @property
    def feature_names_in_(self) -> np.ndarray:
        """The feature names stored in the file, shape ``(n_features,)``."""
        return np.asarray(self.booster.feature_names_, dtype=object)

    @property
    def n_features_in_(self) -> int:
        """How many features the model takes."""
        return len(self.booster.feature_names_)

    def fit(self, X: Any, y: Any, **kwargs: Any) -> CatBoostModel:
        """Fit the wrapped model again (``booster.fit``); returns ``self``."""
        self.booster.fit(X, y, **kwargs)
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Labels (or values) for ``X`` ``(n_instances, n_features)``: ``(n_instances,)``."""
        return np.asarray(self.booster.predict(X)).reshape(len(X))


class CatBoostRegressorModel(RegressorMixin, CatBoostModel):
    """scikit-learn's interface over a loaded ``catboost.CatBoostRegressor``."""


class CatBoostClassifierModel(ClassifierMixin, CatBoostModel):
    """scikit-learn's interface over a loaded ``catboost.CatBoostClassifier``."""

    @property
    def classes_(self) -> np.ndarray:
        """The class labels the file stores, in probability-column order."""
        return np.asarray(self.booster.classes_)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, ``(n_instances, n_classes)`` in :attr:`classes_` order."""
        return np.asarray(self.booster.predict_proba(X))
