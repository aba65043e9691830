"""The model card's charts, drawn once at training (matplotlib, SVG) and stored in the artifact.

:func:`training_charts` is called at the end of :func:`ml_api.train.train`; the SVG files go into
the version directory beside the model, their sha256 into the card (``files``), and their titles
into the card's ``charts`` list. Serving only reads the stored files: this module, and matplotlib,
are never imported on the request path (an import-linter contract says so).

Charts:

- ``class_balance.svg``: the training rows per class (classification), or the distribution of the
  target (regression);
- ``confusion_matrix.svg`` (classification): true vs predicted class on the held-out split;
  ``predicted_vs_actual.svg`` (regression): predictions against the held-out targets;
- ``permutation_importance.svg``: the drop of the held-out score when one feature's values are
  shuffled (``sklearn.inspection.permutation_importance``, 5 repeats; mean and standard deviation).

Bounded work: permutation importance costs one prediction of the held-out split per feature and
repeat, so on a wide file it used to dwarf the fit (240 rows x 1,500 columns: 49 s against 3 s
for 6 columns). It is computed for at most :data:`MAX_IMPORTANCE_FEATURES` features and on at most
:data:`MAX_IMPORTANCE_ROWS` held-out rows; beyond that cap the features are the ones the fitted
model weights most (``feature_importances_``, or ``|coef_|`` over standardized inputs) where it
exposes such weights, else a seeded sample. The chart's card entry says which and how many.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

CHART_DIR = "charts"
"""Folder inside the version directory holding the chart files."""

MAX_IMPORTANCE_ROWS = 2_000
"""Held-out rows used for permutation importance at most (a seeded sample beyond that)."""

MAX_IMPORTANCE_FEATURES = 30
"""Features whose permutation importance is computed at most (5 predictions of the held-out split
each): 30 keeps the extra work to 150 predictions whatever the width, and a bar chart of more
features is no longer read anyway."""


def _svg(fig: Any) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    # No date and a fixed salt for element ids: the same model gives the same bytes (and hash).
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    return buf.getvalue()


def _figure(width: float = 5.5, height: float = 3.6) -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    plt.rcParams["svg.hashsalt"] = "ml-api"
    plt.rcParams["svg.fonttype"] = "none"  # text stays text: small files, the page's font
    return plt.subplots(figsize=(width, height), layout="constrained")


def class_balance(y_train: pd.Series, task: str, target: str) -> bytes:
    """Training rows per class (classification) or the target's histogram (regression)."""
    fig, ax = _figure()
    if task == "classification":
        counts = y_train.astype(str).value_counts().sort_index()
        ax.bar(counts.index.tolist(), counts.to_numpy(), color="#4c72b0")
        for i, n in enumerate(counts.to_numpy()):
            ax.annotate(f"{n}", (i, n), ha="center", va="bottom", fontsize=9)
        ax.set_ylabel("training rows")
        ax.set_title(f"Class balance of {target} (training split)")
    else:
        ax.hist(y_train.to_numpy(dtype=float), bins=30, color="#4c72b0")
        ax.set_xlabel(target)
        ax.set_ylabel("training rows")
        ax.set_title(f"Distribution of {target} (training split)")
    return _svg(fig)


def confusion_matrix(y_true: Any, y_pred: Any, classes: Sequence[Any]) -> bytes:
    """Held-out confusion matrix, counts per (true, predicted) class."""
    from sklearn.metrics import confusion_matrix as cm

    labels = list(classes)
    matrix = cm(y_true, y_pred, labels=labels)
    size = max(3.6, 0.6 * len(labels) + 2)
    fig, ax = _figure(size + 1, size)
    image = ax.imshow(matrix, cmap="Blues")
    fig.colorbar(image, ax=ax, shrink=0.8)
    names = [str(c) for c in labels]
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(names)), names)
    threshold = matrix.max() / 2 if matrix.size else 0
    for i in range(len(names)):
        for j in range(len(names)):
            color = "white" if matrix[i, j] > threshold else "black"
            ax.text(j, i, str(matrix[i, j]), ha="center", va="center", color=color)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("Confusion matrix (held-out split)")
    return _svg(fig)


def predicted_vs_actual(y_true: Any, y_pred: Any, target: str) -> bytes:
    """Held-out predictions against the true targets, with the diagonal."""
    fig, ax = _figure(4.8, 4.4)
    actual = np.asarray(y_true, dtype=float)
    predicted = np.asarray(y_pred, dtype=float)
    ax.scatter(actual, predicted, s=12, alpha=0.7, color="#4c72b0")
    lo = float(min(actual.min(), predicted.min()))
    hi = float(max(actual.max(), predicted.max()))
    ax.plot([lo, hi], [lo, hi], color="#c44e52", linewidth=1, label="predicted = actual")
    ax.set_xlabel(f"actual {target}")
    ax.set_ylabel(f"predicted {target}")
    ax.legend(loc="upper left")
    ax.set_title("Predicted vs actual (held-out split)")
    return _svg(fig)


def model_weights(model: Any, n_features: int) -> np.ndarray | None:
    """The fitted model's own weight of each input feature, where it exposes one.

    ``feature_importances_`` (forests), or ``|coef_|`` summed over classes (linear models, whose
    numeric inputs training standardizes), mapped back from the preprocessed columns to the input
    features (one-hot columns summed per feature).

    Args:
        model: The fitted pipeline (:func:`ml_api.train.train`'s: preprocessing, estimator).
        n_features: Number of input features.

    Returns:
        Shape ``(n_features,)``, in input order; ``None`` when the estimator has no such weights
        or its columns cannot be traced back to the inputs.
    """
    steps = getattr(model, "steps", None)
    estimator = steps[-1][1] if steps else model
    weights = getattr(estimator, "feature_importances_", None)
    if weights is None and getattr(estimator, "coef_", None) is not None:
        weights = np.abs(np.atleast_2d(np.asarray(estimator.coef_, dtype=float))).sum(axis=0)
    if weights is None or not steps or len(steps) != 2:
        return None
    widths = _output_widths(steps[0][1], n_features)
    weights = np.asarray(weights, dtype=float).ravel()
    if widths is None or sum(widths) != len(weights):
        return None
    return np.add.reduceat(weights, np.cumsum([0, *widths[:-1]])) if widths else None


def _output_widths(preprocess: Any, n_features: int) -> list[int] | None:
    """Preprocessed columns per input feature (in input order), or ``None`` when not traceable."""
    out = len(preprocess.get_feature_names_out()) if hasattr(preprocess, "steps") else None
    if out is not None:  # an all-numeric imputer (+ scaler): one column each, unless one dropped
        return [1] * n_features if out == n_features else None
    indices = getattr(preprocess, "output_indices_", None)
    if indices is None:
        return None
    widths: list[int] = []
    for name, _transformer, columns in preprocess.transformers_:
        if name == "remainder":
            continue
        span = indices[name]
        width = span.stop - span.start
        if width == len(columns):
            widths += [1] * len(columns)
            continue
        onehot = preprocess.named_transformers_[name][-1]
        sizes = [len(c) for c in getattr(onehot, "categories_", [])]
        if sum(sizes) != width or len(sizes) != len(columns):
            return None
        widths += sizes
    return widths if len(widths) == n_features else None


def importance_features(model: Any, names: Sequence[str], seed: int) -> tuple[list[int], str]:
    """Which features permutation importance is computed for, and how they were chosen.

    Args:
        model: The fitted pipeline.
        names: Feature names in column order.
        seed: Seed of the sample when the model exposes no weights.

    Returns:
        ``(indices, how)``: at most :data:`MAX_IMPORTANCE_FEATURES` column indices in column
        order, and ``"all"``, ``"largest model weights"`` or ``"seeded sample"``.
    """
    n = len(names)
    if n <= MAX_IMPORTANCE_FEATURES:
        return list(range(n)), "all"
    weights = model_weights(model, n)
    if weights is not None:
        top = np.argsort(-weights, kind="stable")[:MAX_IMPORTANCE_FEATURES]
        return sorted(int(i) for i in top), "largest model weights"
    pick = np.random.default_rng(seed).choice(n, MAX_IMPORTANCE_FEATURES, replace=False)
    return sorted(int(i) for i in pick), "seeded sample"


class _Columns(BaseEstimator):
    """The model seen through some of its input columns; the others keep their held-out values.

    ``sklearn.inspection.permutation_importance`` shuffles every column it is given; this lets it
    shuffle only the chosen ones.
    """

    def __init__(self, model: Any, X: Any, chosen: list[int]) -> None:
        self.model, self.X, self.chosen = model, X, chosen

    def fit(self, X: Any, y: Any) -> _Columns:  # pragma: no cover - never fitted
        return self

    def predict(self, part: Any) -> Any:
        if hasattr(self.X, "iloc"):
            full = self.X.copy()
            for name in part.columns:
                full[name] = part[name].to_numpy()
        else:
            full = np.array(self.X, copy=True)
            full[:, self.chosen] = part
        return self.model.predict(full)


def permutation_importance(
    model: Any, X_test: Any, y_test: Any, names: Sequence[str], task: str, seed: int
) -> tuple[bytes, str]:
    """Permutation feature importance on the held-out split (mean and std of 5 repeats).

    Computed for the features :func:`importance_features` chooses (all of them up to
    :data:`MAX_IMPORTANCE_FEATURES`).

    Returns:
        ``(svg, note)``: the chart, and what it covers (for the card's chart description).
    """
    from sklearn.inspection import permutation_importance as importance

    n = len(y_test)
    if n > MAX_IMPORTANCE_ROWS:
        pick = np.random.default_rng(seed).choice(n, MAX_IMPORTANCE_ROWS, replace=False)
        X_test = X_test.iloc[pick] if hasattr(X_test, "iloc") else X_test[pick]
        y_test = y_test.iloc[pick] if hasattr(y_test, "iloc") else np.asarray(y_test)[pick]
    chosen, how = importance_features(model, names, seed)
    scoring = "accuracy" if task == "classification" else "r2"
    if how == "all":
        result = importance(model, X_test, y_test, scoring=scoring, n_repeats=5, random_state=seed)
        note = f"all {len(names)} features"
    else:
        part = X_test.iloc[:, chosen] if hasattr(X_test, "iloc") else np.asarray(X_test)[:, chosen]
        view = _Columns(model, X_test, chosen)
        result = importance(view, part, y_test, scoring=scoring, n_repeats=5, random_state=seed)
        note = f"{len(chosen)} of {len(names)} features ({how}; at most {MAX_IMPORTANCE_FEATURES})"
    shown = [names[i] for i in chosen]
    order = np.argsort(result.importances_mean)
    fig, ax = _figure(5.5, max(2.4, 0.35 * len(shown) + 1.2))
    ax.barh(
        [shown[i] for i in order],
        result.importances_mean[order],
        xerr=result.importances_std[order],
        color="#4c72b0",
    )
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_xlabel(f"drop in held-out {scoring} when the feature is shuffled")
    title = "Permutation feature importance (held-out split)"
    ax.set_title(title if how == "all" else f"{title}\n{note}")
    return _svg(fig), note


def training_charts(
    model: Any,
    task: str,
    target: str,
    y_train: pd.Series,
    X_test: Any,
    y_test: pd.Series,
    names: Sequence[str],
    classes: Sequence[Any] | None,
    seed: int,
) -> tuple[list[dict[str, str]], dict[str, bytes]]:
    """Draw the card's charts for a freshly fitted model.

    Args:
        model: The fitted pipeline.
        task: ``"classification"`` or ``"regression"``.
        target: The target column's name (axis labels).
        y_train: Training targets, shape ``(n_train,)``.
        X_test: Held-out features as the pipeline takes them, shape ``(n_test, n_features)``.
        y_test: Held-out targets, shape ``(n_test,)``.
        names: Feature names in column order.
        classes: The classifier's classes, in ``predict_proba`` order (``None`` for regressors).
        seed: Seed for permutation importance (and its row sample).

    Returns:
        ``(charts, files)``: the card's ``charts`` entries (``file``, ``title``, ``description``)
        and the SVG bytes by file path relative to the version directory.
    """
    predicted = model.predict(X_test)
    drawn: list[tuple[str, str, str, bytes]] = [
        (
            "class_balance.svg",
            "Class balance" if task == "classification" else "Target distribution",
            "training rows per class" if task == "classification" else "training targets",
            class_balance(y_train, task, target),
        )
    ]
    if task == "classification":
        drawn.append(
            (
                "confusion_matrix.svg",
                "Confusion matrix",
                "true vs predicted class on the held-out split",
                confusion_matrix(y_test, predicted, classes if classes is not None else []),
            )
        )
    else:
        drawn.append(
            (
                "predicted_vs_actual.svg",
                "Predicted vs actual",
                "predictions against the true targets on the held-out split",
                predicted_vs_actual(y_test, predicted, target),
            )
        )
    importance_svg, covered = permutation_importance(model, X_test, y_test, names, task, seed)
    drawn.append(
        (
            "permutation_importance.svg",
            "Permutation feature importance",
            f"drop of the held-out score when one feature is shuffled (5 repeats; {covered})",
            importance_svg,
        )
    )
    charts = [
        {"file": f"{CHART_DIR}/{name}", "title": title, "description": description}
        for name, title, description, _ in drawn
    ]
    files = {f"{CHART_DIR}/{name}": svg for name, _, _, svg in drawn}
    return charts, files
