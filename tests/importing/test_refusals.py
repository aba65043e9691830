"""Every refusal of ``ml-api import``: one line on stderr, exit status 1, no version directory."""

from __future__ import annotations

import importlib
import re
import sys
from collections.abc import Callable
from pathlib import Path

import joblib
import pandas as pd
import pytest
from click.testing import CliRunner
from sklearn.linear_model import LogisticRegression

import ml_api
from ml_api.cli import main
from ml_api.importing import ImportRefused
from tests.importing.conftest import Case


def run_import(*args: object) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["import", *map(str, args)], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def refused(root: Path, *args: object) -> str:
    """Run an import that must be refused; return its one-line message."""
    code, out, err = run_import(*args, "--name", "refused", "--model-root", root)
    assert code == 1, out + err
    lines = [line for line in err.splitlines() if line.startswith("ml-api: error: ")]
    assert len(lines) == 1, err
    assert not (root / "refused").exists(), "a refused import left a directory behind"
    assert "saved" not in out
    return lines[0].removeprefix("ml-api: error: ")


def _dumped(obj: object) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        path = tmp / "thing.joblib"
        joblib.dump(obj, path)
        return path

    return make


def _text_file(tmp: Path) -> Path:
    path = tmp / "notes.pkl"
    path.write_text("these are not the weights you are looking for\n")
    return path


NOT_MODELS = {
    "missing file": (lambda tmp: tmp / "nope.joblib", r"nope\.joblib: no such file or directory"),
    "pickled dict": (_dumped({"coef": [1, 2]}), r"holds a dict, not a fitted model"),
    "pickled DataFrame": (
        _dumped(pd.DataFrame({"a": [1.0]})),
        r"holds a DataFrame, not a fitted model \(it has no predict method\)",
    ),
    "unfitted estimator": (
        _dumped(LogisticRegression()),
        r"the LogisticRegression in .*thing\.joblib is not fitted: call fit",
    ),
    "not a pickle": (_text_file, r"notes\.pkl is not a model file ml-api can read"),
    "directory without MLmodel": (lambda tmp: tmp, r"is a directory without an MLmodel file"),
}


@pytest.mark.parametrize("kind", sorted(NOT_MODELS))
def test_not_a_model(kind, tmp_path, penguins_csv):
    make, message = NOT_MODELS[kind]
    path = make(tmp_path)
    assert re.search(message, refused(tmp_path / "models", path, "--data", penguins_csv))


def test_data_lacking_the_models_feature_names_lists_them(tmp_path, pipeline_case: Case):
    data = tmp_path / "partial.csv"
    pipeline_case.frame.drop(columns=["island", "sex"]).to_csv(data, index=False)
    message = refused(tmp_path / "models", pipeline_case.path, "--data", data)
    assert message == (
        "the data lacks 2 of the model's features (the model's feature_names_in_): island, sex"
    )


def test_column_count_that_disagrees(tmp_path, numpy_case: Case, mixed_csv):
    message = refused(tmp_path / "models", numpy_case.path, "--data", mixed_csv, "--target", "k")
    assert message.startswith(
        "the model takes 2 features but the data has 4 columns besides the target (a, b, c, r)"
    )


def test_target_column_that_does_not_exist(tmp_path, pipeline_case: Case):
    message = refused(
        tmp_path / "models", pipeline_case.path, "--data", pipeline_case.data, "--target", "nope"
    )
    assert message.startswith(
        "target column 'nope' is not in the data; its columns: species, island"
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", r"data file .*data\.csv is empty: a header and data rows are needed"),
        ("island,sex,species\n", r"the data \(data\.csv\) has no rows: sample rows are needed"),
    ],
    ids=["empty", "header only"],
)
def test_empty_or_header_only_csv(tmp_path, pipeline_case: Case, content, message):
    data = tmp_path / "data.csv"
    data.write_text(content)
    assert re.fullmatch(message, refused(tmp_path / "models", pipeline_case.path, "--data", data))


def test_skops_types_skops_does_not_trust_are_listed_then_trusted_one_by_one(
    tmp_path, mixed, mixed_csv
):
    import skops.io as sio
    import xgboost

    model = xgboost.XGBRegressor(n_estimators=3).fit(mixed[["a", "b"]], mixed["r"])
    path = tmp_path / "xgb.skops"
    sio.dump(model, path)
    root = tmp_path / "models"
    message = refused(root, path, "--data", mixed_csv)
    assert message == (
        f"{path} holds types skops does not trust: "
        f"xgboost.core.Booster, xgboost.sklearn.XGBRegressor; if you trust them, pass --trust "
        f"TYPE for each (trust=[...] in Python)"
    )
    assert "xgboost.core.Booster" in refused(
        root, path, "--data", mixed_csv, "--trust", "xgboost.sklearn.XGBRegressor"
    )
    code, out, err = run_import(
        path,
        "--data",
        mixed_csv,
        "--name",
        "xs",
        "--model-root",
        root,
        "--trust",
        "xgboost.sklearn.XGBRegressor",
        "--trust",
        "xgboost.core.Booster",
    )
    assert code == 0, out + err
    assert (root / "xs" / "1" / "metadata.json").is_file()


def test_mlflow_custom_pyfunc_is_refused_with_the_reason(tmp_path, penguins_csv):
    import mlflow.pyfunc

    class Echo(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input, params=None):
            return model_input

    path = tmp_path / "pyfunc"
    mlflow.pyfunc.save_model(str(path), python_model=Echo())
    message = refused(tmp_path / "models", path, "--data", penguins_csv)
    assert message.startswith(f"{path} is an MLflow model with only the python_function flavor")
    assert "a custom pyfunc is arbitrary Python code" in message
    assert "mlflow.sklearn, mlflow.xgboost or mlflow.lightgbm" in message


def test_a_module_that_is_not_installed_is_named(tmp_path, penguins_csv, monkeypatch):
    src = tmp_path / "src"
    src.mkdir()
    (src / "inhouse_features.py").write_text(
        "from sklearn.base import BaseEstimator\n"
        "class Model(BaseEstimator):\n"
        "    def fit(self, X, y=None):\n        return self\n"
        "    def predict(self, X):\n        return X\n"
    )
    monkeypatch.syspath_prepend(str(src))
    module = importlib.import_module("inhouse_features")
    path = tmp_path / "custom.joblib"
    joblib.dump(module.Model(), path)
    del sys.modules["inhouse_features"]
    (src / "inhouse_features.py").unlink()
    message = refused(tmp_path / "models", path, "--data", penguins_csv)
    assert message.startswith(
        f"cannot load {path}: unpickling it needs the module 'inhouse_features', which is not "
        f"installed here"
    )


def test_cli_says_once_that_pickles_run_code(tmp_path, pipeline_case: Case):
    code, out, err = run_import(
        pipeline_case.path, "--data", pipeline_case.data, "--name", "p", "--model-root", tmp_path
    )
    assert code == 0, out + err
    assert err.count("run code while they are loaded") == 1


def test_save_model_refuses_the_same_way(tmp_path, pipeline_case: Case):
    with pytest.raises(ImportRefused, match=r"^the LogisticRegression in the object is not fitted"):
        ml_api.save_model(LogisticRegression(), pipeline_case.frame, name="x", model_root=tmp_path)
    with pytest.raises(ImportRefused, match=r"^the data \(DataFrame\) has no rows"):
        ml_api.save_model(
            pipeline_case.model, pipeline_case.frame.iloc[:0], name="x", model_root=tmp_path
        )
    assert not (tmp_path / "x").exists()


def test_importing_ml_api_stays_cheap():
    import subprocess

    code = (
        "import sys, ml_api; heavy = [m for m in ('sklearn', 'pandas', 'flask', 'django', "
        "'ml_api.importing') if m in sys.modules]; print(heavy); "
        "assert callable(ml_api.save_model)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_served_predictions_that_differ_from_the_models_own_are_refused(tmp_path):
    """A boolean column: the schema takes it as the strings "True"/"False", but the model's
    encoder was fitted on the booleans themselves, so served predictions would differ."""
    import numpy as np
    from sklearn.compose import make_column_transformer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"flag": rng.random(200) > 0.5, "x": rng.normal(size=200)})
    y = (frame.flag & (frame.x > 0)).astype(int)
    encode = make_column_transformer(
        (OneHotEncoder(handle_unknown="ignore"), ["flag"]), remainder="passthrough"
    )
    model = make_pipeline(encode, LogisticRegression()).fit(frame, y)
    with pytest.raises(
        ImportRefused,
        match=r"^served predictions differ from the model's own on data row \d+ \(served .*, "
        r"model .*\): the data's column types are not the ones the model was fitted on$",
    ):
        ml_api.save_model(model, frame, name="flags", model_root=tmp_path)
    assert not (tmp_path / "flags").exists()


def test_skops_artifact_format_only_for_scikit_learn_types(tmp_path, pipeline_case, xgboost_case):
    root = tmp_path / "models"
    code, out, err = run_import(
        pipeline_case.path,
        "--data",
        pipeline_case.data,
        "--name",
        "p",
        "--format",
        "skops",
        "--model-root",
        root,
    )
    assert code == 0, out + err
    assert (root / "p" / "1" / "model.skops").is_file()
    message = refused(root, xgboost_case.path, "--data", xgboost_case.data, "--format", "skops")
    assert message.startswith("the skops format stores only types skops trusts")
    assert message.endswith("use the joblib format")
