"""A model's own code (``--code-path nb_transforms.py``) travels inside its version.

A pipeline with a transformer class from a notebook's ``nb_transforms.py`` was refused with
"install the package that provides it"; with ``PYTHONPATH`` it imported, but the image built and
then failed at start. Now the file is copied into the version (``code/``), hashed like the model,
named in the card, and importable only while that version loads: a server started anywhere
(a real gunicorn here) serves it, and a modified file is refused at load.
"""

from __future__ import annotations

import importlib
import json
import sys

import joblib
import numpy as np
import pandas as pd
import pytest
import requests
from click.testing import CliRunner
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

import ml_api
from ml_api.cli import main
from ml_api.composition import build_scoring
from ml_api.core.model.artifact import ArtifactError, load_artifact
from ml_api.importing import ImportRefused
from ml_api.settings import Settings
from tests.importing.test_refusals import refused, run_import
from tests.live.server import LiveServer

MODULE = '''
import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin


class LogAmount(BaseEstimator, TransformerMixin):
    """log1p of every column (stateless: fit sets nothing)."""

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        return np.log1p(np.asarray(X, dtype=float))
'''


@pytest.fixture
def notebook(tmp_path, penguins):
    """A notebook folder: nb_transforms.py, a model using it, its data; the module forgotten."""
    folder = tmp_path / "notebook"
    folder.mkdir()
    (folder / "nb_transforms.py").write_text(MODULE)
    sys.path.insert(0, str(folder))
    try:
        log_amount = importlib.import_module("nb_transforms").LogAmount
        data = penguins.dropna()[["bill_length_mm", "body_mass_g", "species"]]
        X, y = data[["bill_length_mm", "body_mass_g"]], data["species"]
        model = Pipeline([("log", log_amount()), ("clf", LogisticRegression())]).fit(X, y)
        joblib.dump(model, folder / "custom.joblib")
        data.to_csv(folder / "data.csv", index=False)
    finally:
        sys.path.remove(str(folder))
        sys.modules.pop("nb_transforms", None)  # as in a fresh process: not importable
    return folder, model, data


def test_without_its_code_the_import_says_how_to_pass_it(tmp_path, notebook):
    folder, _, _ = notebook
    message = refused(tmp_path / "models", folder / "custom.joblib", "--data", folder / "data.csv")
    assert "needs the module 'nb_transforms'" in message
    assert "--code-path nb_transforms.py" in message


def test_the_code_goes_into_the_version_and_serves_from_there(tmp_path, notebook):
    folder, model, data = notebook
    root = tmp_path / "models"
    code, out, err = run_import(
        folder / "custom.joblib", "--code-path", folder / "nb_transforms.py",
        "--data", folder / "data.csv", "--target", "species", "--name", "custom",
        "--model-root", root,
    )  # fmt: skip
    assert code == 0, out + err
    assert "its own code: nb_transforms" in out
    assert "--code-path" in err  # the trust warning names it
    version = root / "custom" / "1"
    card = json.loads((version / "metadata.json").read_text())
    assert card["code"] == {"modules": ["nb_transforms"], "directory": "code"}
    assert (version / "code" / "nb_transforms.py").read_text() == MODULE
    assert "code/nb_transforms.py" in card["files"]
    sys.modules.pop("nb_transforms", None)
    path_before = list(sys.path)
    scoring = build_scoring(Settings(model_root=root, model_name="custom"))
    assert sys.path == path_before  # on the path only while the model loaded
    rows = data.drop(columns=["species"]).iloc[:30]
    result = scoring.predict_rows(rows.to_dict(orient="records"))
    np.testing.assert_allclose(result.probabilities, model.predict_proba(rows), rtol=1e-9)

    # batch scoring from another folder: the code comes from the version
    rows.to_csv(tmp_path / "in.csv", index=False)
    sys.modules.pop("nb_transforms", None)
    scored = CliRunner().invoke(
        main,
        ["predict", "--input", str(tmp_path / "in.csv"), "--output", str(tmp_path / "out.csv"),
         "--name", "custom", "--model-root", str(root)],
    )  # fmt: skip
    assert scored.exit_code == 0, scored.output
    assert pd.read_csv(tmp_path / "out.csv")["prediction"].tolist() == model.predict(rows).tolist()

    # a modified code file is refused at load, like a modified model file
    (version / "code" / "nb_transforms.py").write_text(MODULE + "\nprint('changed')\n")
    with pytest.raises(ArtifactError, match="does not match its card"):
        load_artifact(root, "custom")


@pytest.mark.live
def test_a_real_server_started_elsewhere_serves_a_model_with_its_own_code(tmp_path, notebook):
    folder, model, data = notebook
    root = tmp_path / "models"
    code, out, err = run_import(
        folder / "custom.joblib", "--code-path", folder / "nb_transforms.py",
        "--data", folder / "data.csv", "--target", "species", "--name", "custom",
        "--model-root", root,
    )  # fmt: skip
    assert code == 0, out + err
    rows = data.drop(columns=["species"]).iloc[:10]
    with LiveServer(root, "flask", workers=1, args=("--name", "custom")) as server:
        body = {"instances": rows.to_dict(orient="records")}
        r = requests.post(server.url + "/predict", json=body, timeout=30)
        assert r.status_code == 200, r.text
        assert r.json()["prediction"] == model.predict(rows).tolist()
        page = requests.get(server.url + "/model", timeout=10).text
        assert "nb_transforms (in code/, sha256-checked; runs on load)" in page


def test_a_notebook_module_not_given_is_refused_by_save_model(tmp_path, notebook):
    folder, _, data = notebook
    sys.path.insert(0, str(folder))
    try:
        model = joblib.load(folder / "custom.joblib")  # imports nb_transforms from the folder
        with pytest.raises(ImportRefused, match="not an installed package: the server could not"):
            ml_api.save_model(model, data, name="c", target="species", model_root=tmp_path)
        result = ml_api.save_model(
            model, data, name="c", target="species", model_root=tmp_path,
            code_paths=[folder / "nb_transforms.py"],
        )  # fmt: skip
        assert result.metadata["code"]["modules"] == ["nb_transforms"]
    finally:
        sys.path.remove(str(folder))
        sys.modules.pop("nb_transforms", None)


@pytest.mark.parametrize(
    ("name", "problem"),
    [("json.py", "a module named 'json' is already installed"), ("my-code.py", "not a Python")],
)
def test_a_code_path_that_cannot_be_a_module_is_refused(tmp_path, notebook, name, problem):
    folder, _, _ = notebook
    (folder / name).write_text(MODULE)
    message = refused(
        tmp_path / "models", folder / "custom.joblib", "--code-path", folder / name,
        "--data", folder / "data.csv",
    )  # fmt: skip
    assert problem in message
