"""The benchmark's models, fitted into the work directory at the start of every run.

- ``lr``: logistic regression (median imputation, standard scaling) on scikit-learn's bundled
  breast-cancer data (569 rows, 30 float features, classes 0/1);
- ``rf``: a 100-tree random forest (``n_jobs=1``) on the same data;
- ``penguins``: ml-api's default model (logistic regression on Palmer penguins, mixed types).

``lr`` and ``rf`` exist twice: as ml-api artifacts (``ml_api.train.train`` on a CSV written from
``load_breast_cancer``) and as plain scikit-learn pipelines on numpy arrays, fitted on the same
training split with the same hyperparameters, pickled for the seed app (``model.pkl``) and dumped
with joblib for MLServer (``model.joblib``). The two agree on every held-out row (checked here and
recorded in the results). ``penguins`` has string columns, which neither the seed app
(``model.predict([features])`` on a plain list) nor MLServer's default numpy codec can feed to a
column-name pipeline, so it is served by ml-api only. No model file is ever committed.
"""

from __future__ import annotations

import json
import pickle
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from ml_api import preprocess
from ml_api.core.model.artifact import load_artifact
from ml_api.train import TrainingOptions, train

SEED = 42
TEST_SIZE = 0.2
NUMERIC_MODELS = ("lr", "rf")
ALL_MODELS = ("lr", "rf", "penguins")
PENGUINS_ROW = ["Biscoe", 50.0, 15.0, 220.0, 5500.0, "male"]


@dataclass
class BenchModel:
    """One model as every target needs it.

    Attributes:
        key: ``lr``, ``rf`` or ``penguins``.
        name: The served model name (ml-api artifact name, MLServer model name, V2 URL).
        model_root: ml-api model root holding ``<name>/1/``.
        seed_dir: ``<dir>/models/model.pkl`` for the seed app (``None``: ml-api only).
        joblib_path: The numpy pipeline for MLServer (``None``: ml-api only).
        row: One instance, positional, in feature order (the seed's ``features`` list).
        columns: Feature names in order.
        kinds: ``"numeric"`` or ``"categorical"`` per feature.
        agreement: Held-out rows on which the numpy pipeline and the artifact agree, ``[n, of]``.
    """

    key: str
    name: str
    model_root: Path
    seed_dir: Path | None
    joblib_path: Path | None
    row: list[Any]
    columns: list[str]
    kinds: list[str]
    agreement: list[int] | None = None
    bodies: dict[str, bytes] = field(default_factory=dict)

    def body(self, kind: str) -> bytes | None:
        """The request body of a kind (``seed`` or ``v2``), ``None`` when there is none."""
        return self.bodies.get(kind)


def seed_body(row: list[Any]) -> bytes:
    """``{"features": [...]}``: the seed app's body, which ml-api's ``/predict`` also takes."""
    return json.dumps({"features": row}).encode()


def v2_body(row: list[Any], columns: list[str], kinds: list[str]) -> bytes:
    """An Open Inference Protocol (V2) infer request for one instance.

    All-numeric models get one ``FP64`` tensor of shape ``[1, n_features]`` (what MLServer's
    scikit-learn runtime decodes with its numpy codec). Mixed-type models get one input per column
    (``BYTES`` for categorical, ``FP64`` for numeric, shape ``[1]``), the layout ml-api's V2
    endpoint takes for mixed-type models.
    """
    if all(k == "numeric" for k in kinds):
        tensor = {"name": "input-0", "shape": [1, len(row)], "datatype": "FP64", "data": row}
        return json.dumps({"inputs": [tensor]}).encode()
    inputs = [
        {"name": c, "shape": [1], "datatype": "FP64" if k == "numeric" else "BYTES", "data": [v]}
        for c, v, k in zip(columns, row, kinds, strict=True)
    ]
    return json.dumps({"inputs": inputs}).encode()


def _numpy_pipeline(estimator: str) -> Pipeline:
    if estimator == "linear":
        return Pipeline(
            [
                ("impute", SimpleImputer(strategy="median")),
                ("scale", StandardScaler()),
                ("model", LogisticRegression(max_iter=1000)),
            ]
        )
    return Pipeline(
        [
            ("impute", SimpleImputer(strategy="median")),
            ("model", RandomForestClassifier(n_estimators=100, random_state=SEED, n_jobs=1)),
        ]
    )


def _breast_cancer(workdir: Path, key: str, estimator: str, csv: Path) -> BenchModel:
    name = f"breast-cancer-{key}"
    model_root = workdir / "models"
    train(
        TrainingOptions(csv, "target", estimator=estimator, seed=SEED),
        model_root=model_root,
        name=name,
    )
    frame = pd.read_csv(csv)
    X = frame.drop(columns=["target"])
    y = frame["target"]
    X_train, X_test, y_train, _ = train_test_split(
        X, y, test_size=TEST_SIZE, random_state=SEED, stratify=y
    )
    plain = _numpy_pipeline(estimator).fit(X_train.to_numpy(dtype=float), y_train.to_numpy())
    artifact = load_artifact(model_root, name, None)
    agree = int(
        np.sum(plain.predict(X_test.to_numpy(dtype=float)) == artifact.model.predict(X_test))
    )
    seed_dir = workdir / "seed" / key
    (seed_dir / "models").mkdir(parents=True, exist_ok=True)
    (seed_dir / "api").mkdir(exist_ok=True)
    with open(seed_dir / "models" / "model.pkl", "wb") as fh:
        pickle.dump(plain, fh)
    joblib_path = workdir / "mlserver-models" / key / "model.joblib"
    joblib_path.parent.mkdir(parents=True, exist_ok=True)
    joblib.dump(plain, joblib_path)
    row = [float(v) for v in X_test.iloc[0]]
    return BenchModel(
        key=key,
        name=name,
        model_root=model_root,
        seed_dir=seed_dir,
        joblib_path=joblib_path,
        row=row,
        columns=list(X.columns),
        kinds=["numeric"] * X.shape[1],
        agreement=[agree, len(X_test)],
    )


def _penguins(workdir: Path) -> BenchModel:
    model_root = workdir / "models"
    train(
        TrainingOptions(
            preprocess.PENGUINS_CSV,
            preprocess.PENGUINS_TARGET,
            drop=preprocess.PENGUINS_DROP,
            seed=SEED,
        ),
        model_root=model_root,
        name="penguins",
    )
    artifact = load_artifact(model_root, "penguins", None)
    features = artifact.metadata["features"]
    return BenchModel(
        key="penguins",
        name="penguins",
        model_root=model_root,
        seed_dir=None,
        joblib_path=None,
        row=list(PENGUINS_ROW),
        columns=[f["name"] for f in features],
        kinds=[f["kind"] for f in features],
    )


def prepare_models(workdir: Path, keys: tuple[str, ...]) -> dict[str, BenchModel]:
    """Fit the requested models into ``workdir`` (its ``models/`` is emptied first).

    Args:
        workdir: The run's scratch directory (``tmp/bench`` of the checkout by default).
        keys: A subset of :data:`ALL_MODELS`.

    Returns:
        ``{key: BenchModel}`` with request bodies filled in.
    """
    for sub in ("models", "seed", "mlserver-models"):
        shutil.rmtree(workdir / sub, ignore_errors=True)
    workdir.mkdir(parents=True, exist_ok=True)
    csv = workdir / "breast_cancer.csv"
    load_breast_cancer(as_frame=True).frame.to_csv(csv, index=False)
    out: dict[str, BenchModel] = {}
    for key in keys:
        if key == "penguins":
            model = _penguins(workdir)
        else:
            model = _breast_cancer(workdir, key, "linear" if key == "lr" else "random_forest", csv)
        model.bodies = {
            "seed": seed_body(model.row),
            "v2": v2_body(model.row, model.columns, model.kinds),
        }
        out[key] = model
    return out
