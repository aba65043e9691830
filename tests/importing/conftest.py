"""Tiny real models of every kind ``ml-api import`` takes, fitted (and saved) into tmp paths.

Each fixture gives a :class:`Case`: the fitted model, the frame its rows come from, and how to
import it (a file or directory path, or ``None`` for ``ml_api.save_model``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestRegressor
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from ml_api import preprocess

SKOPS_TREE = "sklearn.tree._tree.Tree"
"""A forest's node storage, which skops does not trust (crafted node indices crash predict)."""

NUMERIC = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]
CATEGORICAL = ["island", "sex"]


@dataclass
class Case:
    """One model to import.

    Attributes:
        model: The fitted model (what its own predict/predict_proba are compared with).
        frame: Rows with the features (and the target, if any), as read from ``data``.
        data: The CSV path handed to the importer (``None``: an MLflow input example).
        target: Target column in ``data``, or ``None``.
        path: The model file or directory (``None``: imported from Python).
        own_input: Turns rows of ``frame`` into what the model itself takes.
        trust: Types a skops file holds that skops does not trust (``--trust`` each).
    """

    model: Any
    frame: pd.DataFrame
    data: Path | None
    target: str | None
    path: Path | None
    own_input: Any = None
    trust: tuple[str, ...] = ()

    def features(self) -> pd.DataFrame:
        return self.frame.drop(columns=[self.target]) if self.target else self.frame

    def model_input(self, rows: pd.DataFrame) -> Any:
        return self.own_input(rows) if self.own_input else rows


def json_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as a client sends them: JSON numbers and strings, null for missing values."""
    return [
        {
            k: (None if pd.isna(v) else (v.item() if isinstance(v, np.generic) else v))
            for k, v in r.items()
        }
        for r in frame.astype(object).to_dict(orient="records")
    ]


@pytest.fixture(scope="session")
def penguins() -> pd.DataFrame:
    return pd.read_csv(preprocess.PENGUINS_CSV).drop(columns=["year"])


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fitted")


@pytest.fixture(scope="session")
def penguins_csv(models_dir: Path, penguins: pd.DataFrame) -> Path:
    path = models_dir / "penguins.csv"
    penguins.to_csv(path, index=False)
    return path


@pytest.fixture(scope="session")
def mixed() -> pd.DataFrame:
    """300 rows: two numeric features, one string category, a regression and a class target."""
    rng = np.random.default_rng(7)
    n = 300
    frame = pd.DataFrame(
        {
            "a": rng.normal(size=n),
            "b": rng.integers(0, 5, n).astype(float),
            "c": rng.choice(["x", "y", "z"], n),
        }
    )
    frame["r"] = 2 * frame.a + (frame.c == "y") + rng.normal(scale=0.1, size=n)
    frame["k"] = ((frame.a > 0).astype(int) + (frame.c == "z")).astype(int)
    return frame


@pytest.fixture(scope="session")
def mixed_csv(models_dir: Path, mixed: pd.DataFrame) -> Path:
    path = models_dir / "mixed.csv"
    mixed.to_csv(path, index=False)
    return path


def as_category(rows: pd.DataFrame) -> pd.DataFrame:
    """The frame LightGBM/XGBoost were fitted on: ``c`` as a pandas category column."""
    return rows[["a", "b", "c"]].assign(c=pd.Categorical(rows["c"], categories=["x", "y", "z"]))


def fit_pipeline(directory: Path, penguins: pd.DataFrame, penguins_csv: Path) -> Case:
    """The seed guide's notebook: a Pipeline with a ColumnTransformer, joblib.dump'ed."""
    X, y = penguins.drop(columns="species"), penguins["species"]
    pre = ColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(), StandardScaler()), NUMERIC),
            (
                "cat",
                make_pipeline(
                    SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")
                ),
                CATEGORICAL,
            ),
        ]
    )
    model = Pipeline([("pre", pre), ("clf", LogisticRegression(max_iter=1000))]).fit(X, y)
    path = directory / "pipeline.joblib"
    joblib.dump(model, path)
    return Case(model, penguins, penguins_csv, "species", path)


@pytest.fixture(scope="session")
def pipeline_case(models_dir: Path, penguins: pd.DataFrame, penguins_csv: Path) -> Case:
    return fit_pipeline(models_dir, penguins, penguins_csv)


@pytest.fixture(scope="session")
def numpy_case(models_dir: Path, mixed: pd.DataFrame) -> Case:
    """An estimator fitted on a bare array: no feature_names_in_; names come from the CSV."""
    frame = mixed[["a", "b", "k"]]
    model = LogisticRegression().fit(frame[["a", "b"]].to_numpy(), frame["k"])
    path = models_dir / "numpy.pkl"
    joblib.dump(model, path)
    data = models_dir / "numeric.csv"
    frame.to_csv(data, index=False)
    return Case(model, frame, data, "k", path, own_input=lambda rows: rows[["a", "b"]].to_numpy())


@pytest.fixture(scope="session")
def xgboost_case(models_dir: Path, mixed: pd.DataFrame, mixed_csv: Path) -> Case:
    import xgboost

    model = xgboost.XGBClassifier(
        n_estimators=10, max_depth=3, enable_categorical=True, tree_method="hist"
    ).fit(as_category(mixed), mixed["k"])
    path = models_dir / "xgb.joblib"
    joblib.dump(model, path)
    frame = mixed.drop(columns=["r"])
    return Case(model, frame, mixed_csv, "k", path, own_input=as_category)


@pytest.fixture(scope="session")
def lightgbm_case(models_dir: Path, mixed: pd.DataFrame, mixed_csv: Path) -> Case:
    import lightgbm

    model = lightgbm.LGBMRegressor(n_estimators=10, min_child_samples=5, verbose=-1).fit(
        as_category(mixed), mixed["r"]
    )
    path = models_dir / "lgbm.joblib"
    joblib.dump(model, path)
    frame = mixed.drop(columns=["k"])
    return Case(model, frame, mixed_csv, "r", path, own_input=as_category)


@pytest.fixture(scope="session")
def mlflow_case(models_dir: Path, pipeline_case: Case) -> Case:
    """The pipeline logged with MLflow's sklearn flavor, with a signature and an input example."""
    import mlflow.sklearn
    from mlflow.models import infer_signature

    X = pipeline_case.features()
    path = models_dir / "mlflow_sklearn"
    mlflow.sklearn.save_model(
        pipeline_case.model,
        str(path),
        signature=infer_signature(X, pipeline_case.model.predict(X)),
        input_example=X.head(5),
        skops_trusted_types=["numpy.dtype"],
    )
    return Case(pipeline_case.model, X.head(5), None, None, path)


@pytest.fixture(scope="session")
def mlflow_xgboost_case(models_dir: Path, xgboost_case: Case) -> Case:
    """The XGBoost classifier saved with MLflow's xgboost flavor (no signature, no example)."""
    import mlflow.xgboost

    path = models_dir / "mlflow_xgboost"
    mlflow.xgboost.save_model(xgboost_case.model, str(path))
    return Case(xgboost_case.model, xgboost_case.frame, xgboost_case.data, "k", path, as_category)


@pytest.fixture(scope="session")
def skops_case(models_dir: Path, mixed: pd.DataFrame, mixed_csv: Path) -> Case:
    import skops.io as sio

    model = RandomForestRegressor(n_estimators=5, random_state=0).fit(mixed[["a", "b"]], mixed["r"])
    path = models_dir / "forest.skops"
    sio.dump(model, path)
    return Case(model, mixed.drop(columns=["k", "c"]), mixed_csv, "r", path, trust=(SKOPS_TREE,))


@pytest.fixture(scope="session")
def python_case(mixed: pd.DataFrame) -> Case:
    """A fitted object handed to ml_api.save_model with a DataFrame (category dtype kept)."""
    import lightgbm

    frame = as_category(mixed).assign(k=mixed["k"])
    model = lightgbm.LGBMClassifier(n_estimators=10, min_child_samples=5, verbose=-1).fit(
        frame[["a", "b", "c"]], frame["k"]
    )
    return Case(model, frame, None, "k", None)


CASES = ["pipeline", "numpy", "xgboost", "lightgbm", "mlflow", "mlflow_xgboost", "skops", "python"]


@pytest.fixture(params=CASES)
def case(request: pytest.FixtureRequest) -> Case:
    return request.getfixturevalue(f"{request.param}_case")
