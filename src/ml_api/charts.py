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
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

CHART_DIR = "charts"
"""Folder inside the version directory holding the chart files."""

MAX_IMPORTANCE_ROWS = 2_000
"""Held-out rows used for permutation importance at most (a seeded sample beyond that)."""


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


def permutation_importance(
    model: Any, X_test: Any, y_test: Any, names: Sequence[str], task: str, seed: int
) -> bytes:
    """Permutation feature importance on the held-out split (mean and std of 5 repeats)."""
    from sklearn.inspection import permutation_importance as importance

    n = len(y_test)
    if n > MAX_IMPORTANCE_ROWS:
        pick = np.random.default_rng(seed).choice(n, MAX_IMPORTANCE_ROWS, replace=False)
        X_test = X_test.iloc[pick] if hasattr(X_test, "iloc") else X_test[pick]
        y_test = y_test.iloc[pick] if hasattr(y_test, "iloc") else np.asarray(y_test)[pick]
    scoring = "accuracy" if task == "classification" else "r2"
    result = importance(model, X_test, y_test, scoring=scoring, n_repeats=5, random_state=seed)
    order = np.argsort(result.importances_mean)
    fig, ax = _figure(5.5, max(2.4, 0.35 * len(names) + 1.2))
    ax.barh(
        [names[i] for i in order],
        result.importances_mean[order],
        xerr=result.importances_std[order],
        color="#4c72b0",
    )
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_xlabel(f"drop in held-out {scoring} when the feature is shuffled")
    ax.set_title("Permutation feature importance (held-out split)")
    return _svg(fig)


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
    drawn.append(
        (
            "permutation_importance.svg",
            "Permutation feature importance",
            "drop of the held-out score when one feature is shuffled (5 repeats)",
            permutation_importance(model, X_test, y_test, names, task, seed),
        )
    )
    charts = [
        {"file": f"{CHART_DIR}/{name}", "title": title, "description": description}
        for name, title, description, _ in drawn
    ]
    files = {f"{CHART_DIR}/{name}": svg for name, _, _, svg in drawn}
    return charts, files
