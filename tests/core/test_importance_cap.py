"""Training extras are bounded: permutation importance covers at most 30 features, however wide.

Before the cap, 240 rows x 1,500 numeric columns trained in 49 s against 3 s for 6 columns: one
prediction of the held-out split per feature and repeat, and a bar per feature in the chart.
No timing here: the work itself (predictions made) is counted.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator
from sklearn.linear_model import LogisticRegression

from ml_api.charts import MAX_IMPORTANCE_FEATURES, importance_features, permutation_importance
from ml_api.train import TrainingOptions, train


def _wide(columns: int, rows: int = 240) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(rows, columns))
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(columns)])
    # only x3 and x7 carry the signal
    frame["label"] = np.where(
        X[:, 3] + 0.8 * X[:, 7] + rng.normal(scale=0.3, size=rows) > 0, "a", "b"
    )
    return frame


class _Counting(BaseEstimator):
    """A classifier without weights of its own that counts its predictions."""

    def __init__(self, model=None):
        self.model = model
        self.calls = 0

    def fit(self, X, y):  # pragma: no cover - never fitted here
        return self

    def predict(self, X):
        self.calls += 1
        return self.model.predict(X)


@pytest.mark.parametrize("columns", [10, 30, 31, 400])
def test_predictions_are_bounded_whatever_the_width(columns):
    frame = _wide(columns)
    X, y = frame.drop(columns="label").to_numpy(), frame["label"]
    counting = _Counting(LogisticRegression().fit(X, y))
    names = [f"x{i}" for i in range(columns)]
    svg, note = permutation_importance(counting, X[:48], y[:48], names, "classification", 42)
    covered = min(columns, MAX_IMPORTANCE_FEATURES)
    assert counting.calls == 1 + 5 * covered  # the baseline, then 5 repeats per covered feature
    assert svg.startswith(b"<?xml")
    if columns <= MAX_IMPORTANCE_FEATURES:
        assert note == f"all {columns} features"
    else:  # no weights to rank by: a seeded sample, said so
        assert note == f"30 of {columns} features (seeded sample; at most 30)"
        assert importance_features(counting, names, 42) == importance_features(counting, names, 42)


@pytest.mark.parametrize(
    ("estimator", "how"),
    [("linear", "largest model weights"), ("random_forest", "largest model weights"),
     ("hist_gradient_boosting", "seeded sample")],
)  # fmt: skip
def test_a_wide_file_trains_with_the_cap_stated_in_the_card(tmp_path, estimator, how):
    data = tmp_path / "wide.csv"
    _wide(120).to_csv(data, index=False)
    result = train(
        TrainingOptions(data, "label", estimator=estimator),
        model_root=tmp_path / "models",
        name="wide",
    )
    chart = next(c for c in result.metadata["charts"] if "importance" in c["file"])
    assert f"30 of 120 features ({how}; at most 30)" in chart["description"]
    svg = (result.path / chart["file"]).read_text()
    assert svg.count('<g id="patch_') <= 40  # about one bar per covered feature, not 120
    if how == "largest model weights":  # the features that carry the signal are covered
        assert ">x3<" in svg and ">x7<" in svg
