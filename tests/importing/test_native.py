"""The boosting libraries' own model files import: XGBoost ``.json``/``.ubj``, LightGBM ``.txt``.

``model.save_model("model.json")`` is what XGBoost's documentation teaches; ml-api once refused it
as "not a model file ... KeyError: 123" after a pickle warning that did not apply. Each file is
read by its library (no code runs), given its scikit-learn interface, checked against the
library's own booster and the server's path, and served with the same answers as the booster.
A missing library is refused with the line that installs it.
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ml_api.cli import main
from ml_api.composition import build_scoring
from ml_api.importing.native import INSTALL
from ml_api.settings import Settings
from tests.importing.test_refusals import refused, run_import


def _need(library: str) -> None:
    """Skip with the install line where the library is missing (never under CI)."""
    if importlib.util.find_spec(library) is None:
        if os.environ.get("CI"):
            pytest.fail(f"{library} is part of the test extra; CI must have it")
        pytest.skip(f"{library} is not installed: {INSTALL[library]}")


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(5)
    n = 300
    out = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n)})
    out["k"] = (out.a > 0).astype(int) + (out.b > 0.8).astype(int)  # three classes
    out["r"] = 3 * out.a - out.b + rng.normal(scale=0.1, size=n)
    return out


def _booster_xgboost(path: Path, X: pd.DataFrame, task: str) -> np.ndarray:
    import xgboost as xgb

    return xgb.Booster(model_file=str(path)).predict(xgb.DMatrix(X))


def _booster_lightgbm(path: Path, X: pd.DataFrame, task: str) -> np.ndarray:
    import lightgbm as lgb

    return lgb.Booster(model_file=str(path)).predict(X)


def _save(library: str, suffix: str, task: str, frame: pd.DataFrame, path: Path) -> None:
    X = frame[["a", "b"]]
    if library == "xgboost":
        import xgboost as xgb

        cls = xgb.XGBClassifier if task == "classification" else xgb.XGBRegressor
        model = cls(n_estimators=8, max_depth=3).fit(
            X, frame["k" if task == "classification" else "r"]
        )
        model.get_booster().save_model(str(path))  # the Booster's own file, as the docs teach
    else:
        import lightgbm as lgb

        cls = lgb.LGBMClassifier if task == "classification" else lgb.LGBMRegressor
        model = cls(n_estimators=8, verbose=-1).fit(
            X, frame["k" if task == "classification" else "r"]
        )
        model.booster_.save_model(str(path))


CASES = [
    ("xgboost", ".json", "classification"),
    ("xgboost", ".ubj", "classification"),
    ("xgboost", ".json", "regression"),
    ("lightgbm", ".txt", "classification"),
    ("lightgbm", ".txt", "regression"),
]


@pytest.mark.parametrize(("library", "suffix", "task"), CASES)
def test_a_native_model_file_imports_and_serves_the_boosters_answers(
    tmp_path, frame, library, suffix, task
):
    _need(library)
    path = tmp_path / f"model{suffix}"
    _save(library, suffix, task, frame, path)
    csv = tmp_path / "data.csv"
    target = "k" if task == "classification" else "r"
    frame[["a", "b", target]].to_csv(csv, index=False)
    root = tmp_path / "models"
    code, out, err = run_import(
        path, "--data", csv, "--target", target, "--name", "native", "--model-root", root
    )
    assert code == 0, out + err
    assert "run code" not in err  # no pickle warning: reading a native file runs no code
    card = json.loads((root / "native" / "1" / "metadata.json").read_text())
    assert card["source"]["format"] == f"{library}-{suffix[1:]}"
    assert card["task"] == task
    assert library in card["versions"]  # the version gate and make image know the library
    scoring = build_scoring(Settings(model_root=root, model_name="native"))
    rows = frame[["a", "b"]].iloc[:50]
    result = scoring.predict_rows(rows.to_dict(orient="records"))
    booster = (_booster_xgboost if library == "xgboost" else _booster_lightgbm)(path, rows, task)
    if task == "classification":
        assert card["classes"] == [0, 1, 2]
        assert "class indices" in card["provenance"]["classes"]
        np.testing.assert_allclose(result.probabilities, booster, rtol=1e-5, atol=1e-6)
    else:
        np.testing.assert_allclose(result.labels, booster, rtol=1e-5, atol=1e-5)


def test_a_json_file_that_is_no_model_is_refused_in_one_line(tmp_path, frame):
    _need("xgboost")
    path = tmp_path / "model.json"
    path.write_text('{"hello": 123}')
    csv = tmp_path / "data.csv"
    frame.to_csv(csv, index=False)
    message = refused(tmp_path / "models", path, "--data", csv)
    assert message.startswith(f"{path} is not a model file XGBoost can read (")
    assert "KeyError" not in message and "/workspace" not in message


def test_a_ranking_objective_is_refused(tmp_path, frame):
    _need("xgboost")
    import xgboost as xgb

    ranker = xgb.XGBRanker(n_estimators=2).fit(frame[["a", "b"]], frame["k"], qid=np.zeros(300))
    path = tmp_path / "rank.json"
    ranker.save_model(str(path))
    csv = tmp_path / "data.csv"
    frame.to_csv(csv, index=False)
    message = refused(tmp_path / "models", path, "--data", csv)
    assert "objective is 'rank:" in message and "classification and regression" in message


def test_the_cli_names_native_files(tmp_path):
    from click.testing import CliRunner

    result = CliRunner().invoke(main, ["import", "--help"])
    assert (
        "XGBoost's own model file (.json, .ubj), LightGBM's (.txt) or CatBoost's (.cbm)"
        in " ".join(result.output.split())
    )


def test_an_mlflow_import_without_data_says_where_its_ranges_come_from(tmp_path, mlflow_case):
    code, out, err = run_import(mlflow_case.path, "--name", "m", "--model-root", tmp_path)
    assert code == 0, out + err
    assert (
        "note: no --data: kinds, ranges and nullability come from the MLflow input example "
        "(5 rows)" in out
    )
