"""Which scikit-learn models answer a row independently of its batch, and the one rewrite needed.

The scikit-learn runtime promises that an instance's answer (to the last bit) does not depend on
the other rows of its model call (docs/production.md, "Batch-invariant answers").
:func:`unproven_steps` names the steps of a fitted model where that is not known (known: the
steps of :data:`ROW_BY_ROW_STEPS` and scikit-learn's linear models); the runtime evaluates a
model with such a step one instance at a time and does not batch it.

Linear models with one output (a ridge regressor, a binary logistic regression: ``coef_`` of
shape ``(n_features,)`` or ``(1, n_features)``) need a rewrite. They score a batch as
``X @ coef_``, a matrix-vector product that numpy hands to BLAS's GEMV for any number of rows;
OpenBLAS's GEMV computes rows in blocks and the rows left over by another kernel that sums in
another order, so a row's last bits depended on where it sat in the batch (1,392 of about 4,100
rows in random batches of a 10-feature ridge differed from the same row alone; numpy 2.4 on
OpenBLAS 0.3.31, Haswell kernels). Making lone calls two rows (``SMALLEST_CALL_ROWS``) cannot fix
that. :func:`rowwise_linear` gives the runtime a copy of such an estimator whose ``coef_`` is a
:class:`RowwiseCoef`: the same numbers, but ``X @ coef_`` is computed by :func:`numpy.einsum`
over a C-ordered ``float64`` ``X``, whose inner loop runs along one row (the summed dimension) in
an order fixed by ``n_features`` alone. scikit-learn's own ``predict``, ``predict_proba`` and
``decision_function`` run unchanged around it; scores agree with BLAS's to a few units in the
last place. A product with more columns (a multiclass model, ``coef_`` ``(n_classes,
n_features)``) is BLAS's GEMM, whose rows are position-independent, and is left alone.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
from sklearn import ensemble, impute, preprocessing, tree
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline

try:  # the linear models whose predict is ``X @ coef_(.T) + intercept_``
    from sklearn.linear_model._base import LinearClassifierMixin, LinearModel

    _LINEAR: tuple[type, ...] = (LinearClassifierMixin, LinearModel)
except ImportError:  # pragma: no cover - a scikit-learn that moved them: nothing is rewritten
    _LINEAR = ()

ROW_BY_ROW_STEPS: tuple[type, ...] = (
    impute.SimpleImputer,
    impute.MissingIndicator,
    preprocessing.StandardScaler,
    preprocessing.MinMaxScaler,
    preprocessing.MaxAbsScaler,
    preprocessing.RobustScaler,
    preprocessing.OneHotEncoder,
    preprocessing.OrdinalEncoder,
    tree.DecisionTreeClassifier,
    tree.DecisionTreeRegressor,
    tree.ExtraTreeClassifier,
    tree.ExtraTreeRegressor,
    ensemble.RandomForestClassifier,
    ensemble.RandomForestRegressor,
    ensemble.ExtraTreesClassifier,
    ensemble.ExtraTreesRegressor,
    ensemble.GradientBoostingClassifier,
    ensemble.GradientBoostingRegressor,
    ensemble.HistGradientBoostingClassifier,
    ensemble.HistGradientBoostingRegressor,
)
"""Steps that compute each row from that row alone, element by element or by tree traversal
(scalers, imputers, encoders, trees and their ensembles); with ``ColumnTransformer``,
``Pipeline``, ``"passthrough"``/``"drop"`` and the linear models (below) they make up every model
``ml-api train`` fits. An imported model with any other step (a neural network, a one-component
PCA: matrix-vector products again) is evaluated one instance at a time."""


class RowwiseCoef(np.ndarray):
    """A linear model's coefficients whose products with a matrix are summed row by row.

    Only ``matrix @ coef`` (numpy's ``matmul`` with this array on the right) changes; every
    other operation sees a plain array.
    """

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        """Compute ``X @ coef`` row by row (see the module docstring); anything else as numpy."""
        plain = [np.asarray(a) if isinstance(a, RowwiseCoef) else a for a in inputs]
        if ufunc is np.matmul and method == "__call__" and not kwargs and len(plain) == 2:
            x, coef = plain
            if not isinstance(inputs[0], RowwiseCoef) and np.ndim(x) == 2:
                x = np.ascontiguousarray(x, dtype=np.result_type(x, coef, np.float64))
                return np.einsum("ij,j...->i...", x, coef)
        return getattr(ufunc, method)(*plain, **kwargs)


def is_gemv_linear(estimator: Any) -> bool:
    """Whether an estimator scores by a matrix-vector product (one output, dense ``coef_``).

    Args:
        estimator: A fitted estimator (a pipeline's final step).

    Returns:
        True for a dense ``coef_`` of shape ``(n_features,)`` or ``(1, n_features)``.
    """
    coef = getattr(estimator, "coef_", None)
    return isinstance(coef, np.ndarray) and (coef.ndim == 1 or coef.shape[0] == 1)


def rowwise_linear(estimator: Any) -> Any | None:
    """A copy of a one-output linear model whose scores are row-wise sums (:class:`RowwiseCoef`).

    Args:
        estimator: A fitted estimator.

    Returns:
        A shallow copy sharing everything but ``coef_`` (the same values, as
        :class:`RowwiseCoef`), for a scikit-learn linear model for which
        :func:`is_gemv_linear` holds; ``None`` for any other estimator (it is not changed).
    """
    if not (_LINEAR and isinstance(estimator, _LINEAR) and is_gemv_linear(estimator)):
        return None
    rowwise: Any = copy.copy(estimator)
    rowwise.coef_ = np.asarray(rowwise.coef_).view(RowwiseCoef)
    return rowwise


def unproven_steps(model: Any) -> list[str]:
    """The steps of a fitted model not known to compute a row independently of the other rows.

    Args:
        model: A fitted estimator, ``Pipeline`` or ``ColumnTransformer``.

    Returns:
        Class names of the steps that are not on :data:`ROW_BY_ROW_STEPS`, not
        ``"passthrough"``/``"drop"`` and not a scikit-learn linear model with dense
        coefficients (one output: rewritten by :func:`rowwise_linear`; several: BLAS's GEMM,
        whose rows are position-independent; the property test checks both); empty when the
        whole model is proven.
    """
    if isinstance(model, str):
        return [] if model in ("passthrough", "drop") else [model]
    if isinstance(model, Pipeline):
        return [name for _, step in model.steps for name in unproven_steps(step)]
    if isinstance(model, ColumnTransformer):
        return [name for _, step, _ in model.transformers_ for name in unproven_steps(step)]
    if (
        _LINEAR
        and isinstance(model, _LINEAR)
        and isinstance(getattr(model, "coef_", None), np.ndarray)
    ):
        return []
    return [] if type(model) in ROW_BY_ROW_STEPS else [type(model).__name__]
