"""A value the model itself refuses is named by instance (and field): API (both frameworks, V1, V2)
and ``ml-api predict``.

A pipeline with a user's ``log1p`` transformer, given a negative ``bill_length_mm``, makes a NaN
the classifier refuses ("Input X contains NaN"). That used to come back with empty ``details`` (and
no row from ``ml-api predict``); now the instances that fail are found (evaluated apart, bounded)
and named, with the field when swapping in one known-good value clears them.
"""

from __future__ import annotations

import importlib
import sys

import joblib
import pandas as pd
import pytest
import requests
from click.testing import CliRunner
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from ml_api.cli import main
from ml_api.composition import build_scoring
from ml_api.core.errors import InvalidInput
from ml_api.core.runtimes import failures
from ml_api.settings import Settings
from tests.conftest import DJANGO_SECRET_KEY
from tests.importing.test_custom_code import MODULE
from tests.importing.test_refusals import run_import
from tests.live.server import LiveServer

GOOD = {"bill_length_mm": 39.1, "body_mass_g": 3750.0}
BAD = {"bill_length_mm": -5.0, "body_mass_g": 3750.0}
BATCH = [GOOD, BAD, GOOD]


@pytest.fixture(scope="module")
def root(tmp_path_factory, penguins):
    """A model root holding ``logged``: log1p of both features, then a logistic regression."""
    folder = tmp_path_factory.mktemp("refusal")
    (folder / "nb_transforms.py").write_text(MODULE)
    sys.path.insert(0, str(folder))
    try:
        log_amount = importlib.import_module("nb_transforms").LogAmount
        data = penguins.dropna()[["bill_length_mm", "body_mass_g", "species"]]
        X, y = data[["bill_length_mm", "body_mass_g"]], data["species"]
        model = Pipeline([("log", log_amount()), ("clf", LogisticRegression())]).fit(X, y)
        joblib.dump(model, folder / "logged.joblib")
        data.to_csv(folder / "data.csv", index=False)
    finally:
        sys.path.remove(str(folder))
        sys.modules.pop("nb_transforms", None)
    root = folder / "models"
    code, out, err = run_import(
        folder / "logged.joblib", "--code-path", folder / "nb_transforms.py",
        "--data", folder / "data.csv", "--target", "species", "--name", "logged",
        "--model-root", root,
    )  # fmt: skip
    assert code == 0, out + err
    return root


def _named(details, instance):
    assert details == [
        {
            "instance": instance,
            "field": "bill_length_mm",
            "problem": "the model could not use this value: Input X contains NaN.",
        }
    ]


def test_the_service_names_the_instance_and_field(root):
    scoring = build_scoring(Settings(model_root=root, model_name="logged"))
    with pytest.raises(InvalidInput) as caught:
        scoring.predict_rows(BATCH)
    _named([p.as_dict() for p in caught.value.details], 1)
    assert caught.value.message.startswith("invalid instance: instance 1, field 'bill_length_mm'")
    # the good instances alone still answer
    assert len(scoring.predict_rows([GOOD, GOOD])) == 2


def test_every_bad_instance_is_named_and_the_search_is_bounded(root, monkeypatch):
    scoring = build_scoring(Settings(model_root=root, model_name="logged"))
    rows = [GOOD] * 40
    rows[3], rows[30] = BAD, {"bill_length_mm": -7.0, "body_mass_g": -9.0}
    with pytest.raises(InvalidInput) as caught:
        scoring.predict_rows(rows)
    got = [(p.instance, p.field) for p in caught.value.details]
    # both fields of instance 30 are bad: one swap clears neither, so no field is claimed
    assert got == [(3, "bill_length_mm"), (30, None)]
    assert caught.value.details[1].problem.startswith("the model failed on this instance: ")
    assert caught.value.message.startswith("2 instances the model could not use")
    # a spent budget is said ("+"), never a wrong "all found"
    monkeypatch.setattr(failures, "MAX_CALLS", 10)
    with pytest.raises(InvalidInput) as caught:
        scoring.predict_rows(rows)
    assert caught.value.message.startswith("1+ instances the model could not use")
    assert caught.value.details[0].instance == 3
    monkeypatch.setattr(failures, "MAX_CALLS", 3)
    with pytest.raises(InvalidInput) as caught:
        scoring.predict_rows(rows)
    assert caught.value.message.endswith("(not traced to an instance within 3 model calls)")
    assert caught.value.details == []


@pytest.mark.live
@pytest.mark.parametrize("framework", ["flask", "django"])
def test_over_http_v1_and_v2_name_the_instance(root, framework):
    env = {"ML_API_SECRET_KEY": DJANGO_SECRET_KEY} if framework == "django" else {}
    with LiveServer(root, framework, workers=1, env=env, args=("--name", "logged")) as server:
        one = requests.post(server.url + "/predict", json={"instances": [BAD]}, timeout=30)
        assert one.status_code == 422, one.text
        _named(one.json()["details"], 0)
        r = requests.post(server.url + "/predict", json={"instances": BATCH}, timeout=30)
        assert r.status_code == 422, r.text
        body = r.json()
        assert set(body) == {"error", "details", "request_id"}
        _named(body["details"], 1)
        inputs = [
            {"name": name, "shape": [3], "datatype": "FP64", "data": [row[name] for row in BATCH]}
            for name in ("bill_length_mm", "body_mass_g")
        ]
        v2 = requests.post(
            server.url + "/v2/models/logged/infer", json={"inputs": inputs}, timeout=30
        )
        assert v2.status_code == 400, v2.text
        _named(v2.json()["details"], 1)


def test_ml_api_predict_names_the_row(root, tmp_path):
    pd.DataFrame(BATCH).to_csv(tmp_path / "in.csv", index=False)
    result = CliRunner().invoke(
        main,
        ["predict", "--input", str(tmp_path / "in.csv"), "--output", str(tmp_path / "out.csv"),
         "--name", "logged", "--model-root", str(root)],
    )  # fmt: skip
    assert result.exit_code != 0
    assert "row 2" in result.stderr, result.stderr
    assert "bill_length_mm" in result.stderr
    assert not (tmp_path / "out.csv").exists()
