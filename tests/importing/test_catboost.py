"""CatBoost's own ``.cbm`` file imports like XGBoost's and LightGBM's native files.

``model.save_model("model.cbm")`` is what CatBoost's documentation teaches; reading it runs no
code, so no pickle warning. A classifier with string labels and a CatBoost categorical feature,
and a regressor, are imported with ``ml-api import`` and served by a real server: every data row
answers what CatBoost's own model answers.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import requests

from ml_api.importing.native import INSTALL
from tests.importing.conftest import json_rows
from tests.importing.test_refusals import refused, run_import
from tests.live.server import LiveServer
from tests.tools import in_ci


def _need_catboost() -> None:
    """Skip with the install line where CatBoost is missing (fail instead under CI)."""
    if importlib.util.find_spec("catboost") is None:
        message = f"catboost is not installed: {INSTALL['catboost']}"
        if in_ci():
            pytest.fail(f"CI is set, so this must run: {message}")
        pytest.skip(message)


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(11)
    n = 240
    out = pd.DataFrame(
        {
            "size": rng.normal(size=n),
            "weight kg": rng.normal(size=n),  # a name with a space, as CatBoost allows
            "shop": rng.choice(["north", "south", "east"], n),
        }
    )
    score = out["size"] + (out["shop"] == "east") - 0.5 * out["weight kg"]
    out["grade"] = np.where(score > 0.8, "high", np.where(score > -0.3, "mid", "low"))
    out["price"] = 3 * out["size"] - out["weight kg"] + rng.normal(scale=0.1, size=n)
    return out


def _fit(frame: pd.DataFrame, tmp_path: Path, task: str) -> tuple[object, Path, Path, str]:
    import catboost as cb

    X = frame[["size", "weight kg", "shop"]]
    if task == "classification":
        model: object = cb.CatBoostClassifier(
            iterations=40, depth=3, verbose=False, allow_writing_files=False
        )
        target = "grade"
    else:
        model = cb.CatBoostRegressor(
            iterations=40, depth=3, verbose=False, allow_writing_files=False
        )
        target = "price"
    model.fit(X, frame[target], cat_features=["shop"])  # type: ignore[attr-defined]
    path = tmp_path / f"{task}.cbm"
    model.save_model(str(path))  # type: ignore[attr-defined]
    csv = tmp_path / f"{task}.csv"
    frame[["size", "weight kg", "shop", target]].to_csv(csv, index=False)
    return model, path, csv, target


@pytest.mark.live
@pytest.mark.parametrize("task", ["classification", "regression"])
def test_a_cbm_file_imports_and_serves_catboosts_own_answers(tmp_path, frame, task):
    _need_catboost()
    model, path, csv, target = _fit(frame, tmp_path, task)
    root = tmp_path / "models"
    code, out, err = run_import(
        path, "--data", csv, "--target", target, "--name", "cat", "--model-root", root
    )
    assert code == 0, out + err
    assert "run code" not in err  # no pickle warning: reading a .cbm file runs no code
    kind = "CatBoostClassifier" if task == "classification" else "CatBoostRegressor"
    assert out.startswith(f"imported {kind} ({task}) from {path}: 3 features"), out
    assert f"checked: the server's predictions on {len(frame)} data rows" in out
    card = json.loads((root / "cat" / "1" / "metadata.json").read_text())
    assert card["source"]["format"] == "catboost-cbm" and card["task"] == task
    assert "catboost" in card["versions"]  # the version gate and make image know the library
    X = frame[["size", "weight kg", "shop"]]
    with LiveServer(root, "flask", workers=1, args=("--name", "cat")) as server:
        for start in range(0, len(X), 50):  # ML_API_MAX_INSTANCES of the live server
            rows = X.iloc[start : start + 50]
            r = requests.post(
                server.url + "/predict", json={"instances": json_rows(rows)}, timeout=30
            )
            assert r.status_code == 200, r.text
            body = r.json()
            if task == "classification":
                assert card["classes"] == ["high", "low", "mid"]  # CatBoost keeps its labels
                assert "classes" not in card["provenance"]
                assert body["prediction"] == model.predict(rows).ravel().tolist()  # type: ignore[attr-defined]
                own = model.predict_proba(rows)  # type: ignore[attr-defined]
                served = [[p[c] for c in card["classes"]] for p in body["probabilities"]]
                np.testing.assert_allclose(served, own, rtol=1e-9, atol=1e-12)
            else:
                own = model.predict(rows)  # type: ignore[attr-defined]
                np.testing.assert_allclose(body["prediction"], own, rtol=1e-9, atol=1e-12)
        bad = dict(json_rows(X.iloc[:1])[0], shop="west")
        r = requests.post(server.url + "/predict", json={"instances": [bad]}, timeout=10)
        assert r.status_code == 422 and "unknown category" in r.json()["error"]
    assert server.proc.returncode == 0, server.output()


def test_a_cbm_file_that_is_no_model_is_refused_in_one_line(tmp_path, frame):
    _need_catboost()
    path = tmp_path / "model.cbm"
    path.write_bytes(b"not a model")
    csv = tmp_path / "data.csv"
    frame.to_csv(csv, index=False)
    message = refused(tmp_path / "models", path, "--data", csv)
    assert message.startswith(f"{path} is not a model file CatBoost can read ("), message
    assert "\n" not in message and "Traceback" not in message


def test_a_multi_target_catboost_model_is_refused(tmp_path, frame):
    _need_catboost()
    import catboost as cb

    X = frame[["size", "weight kg"]]
    model = cb.CatBoostRegressor(
        iterations=5, loss_function="MultiRMSE", verbose=False, allow_writing_files=False
    )
    model.fit(X, frame[["price", "size"]])
    path = tmp_path / "multi.cbm"
    model.save_model(str(path))
    csv = tmp_path / "data.csv"
    frame.to_csv(csv, index=False)
    message = refused(tmp_path / "models", path, "--data", csv)
    assert "objective is 'MultiRMSE'" in message and "classification and regression" in message
