"""What a model outputs decides what ml-api serves: one value per row, classes from ``classes_``.

Multi-output models (a ``Ridge`` fitted on two target columns, ``MultiOutputRegressor``, a forest
or ``MultiOutputClassifier`` fitted on two label columns) once imported and then answered 500 on
every request, or crashed ``import`` with a traceback; a model whose output has another number of
rows than its input is the same kind. Each is refused in one line, exit status 1, nothing written,
from the CLI and from ``ml_api.save_model``.

A classifier without ``predict_proba`` (``LinearSVC``, ``SVC(probability=False)``,
``RidgeClassifier``, ``SGDClassifier(loss="hinge")``) was served as a regressor by V2 (``FP64``
labels holding strings, no classes) and counted under ``predicted_class=""``. It is a classifier
because it has ``classes_``: labels only, typed as its classes, in V1, V2, batch and the card.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from django.test import Client as DjangoClient
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import (
    LinearRegression,
    LogisticRegression,
    Ridge,
    RidgeClassifier,
    SGDClassifier,
)
from sklearn.multioutput import MultiOutputClassifier, MultiOutputRegressor
from sklearn.neighbors import KNeighborsClassifier
from sklearn.svm import SVC, LinearSVC

import ml_api
from ml_api.api.django_app import get_wsgi_application
from ml_api.api.flask_app import create_app
from ml_api.cli import main
from ml_api.composition import build_scoring
from ml_api.importing import ImportRefused
from tests.importing.conftest import json_rows
from tests.importing.test_refusals import refused, run_import

ONE_TARGET = "ml-api serves one target per model: fit one model per target and import each"


class DropsARow(Ridge):
    """A regressor whose predict loses the last row: output rows != input rows."""

    def predict(self, X: Any) -> Any:
        return super().predict(X)[:-1]


class Doubles(Ridge):
    """A regressor whose predict answers twice per row."""

    def predict(self, X: Any) -> Any:
        return np.repeat(super().predict(X), 2)


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(11)
    n = 120
    out = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n)})
    out["r1"] = 2 * out.a + rng.normal(scale=0.1, size=n)
    out["r2"] = out.b - out.a
    out["k1"] = (out.a > 0).astype(int)
    out["k2"] = (out.b > 0).astype(int)
    out["k"] = np.where(out.a > 0.5, "high", np.where(out.a < -0.5, "low", "mid"))
    return out


def _multi(frame: pd.DataFrame) -> dict[str, tuple[Any, str]]:
    X = frame[["a", "b"]]
    two_targets = frame[["r1", "r2"]]
    two_labels = frame[["k1", "k2"]]
    return {
        "Ridge on 2 target columns": (
            Ridge().fit(X, two_targets),
            f"Ridge: predict gives 2 values per row (shape (120, 2)): {ONE_TARGET}",
        ),
        "MultiOutputRegressor": (
            MultiOutputRegressor(Ridge()).fit(X, two_targets),
            "MultiOutputRegressor: predict gives 2 values per row (shape (120, 2)): " + ONE_TARGET,
        ),
        "RandomForestClassifier on 2 label columns": (
            RandomForestClassifier(n_estimators=3, random_state=0).fit(X, two_labels),
            "was fitted on 2 label columns (its classes_ is one array per column): " + ONE_TARGET,
        ),
        "MultiOutputClassifier": (
            MultiOutputClassifier(LogisticRegression()).fit(X, two_labels),
            "was fitted on 2 label columns (its classes_ is one array per column): " + ONE_TARGET,
        ),
        "KNeighborsClassifier on 2 label columns": (
            KNeighborsClassifier(3).fit(X, two_labels),
            "was fitted on 2 label columns (its classes_ is one array per column): " + ONE_TARGET,
        ),
        "LinearRegression on a one-column 2-D target": (
            LinearRegression().fit(X, frame[["r1"]]),
            "LinearRegression: predict gives a column of shape (120, 1), not one value per row: "
            "it was fitted on a 2-D target of one column (y = df[['target']], or an array of "
            "shape (n, 1)); refit it on the 1-D column (y = df['target'], or y.ravel()) and "
            "import it again",
        ),
        "fewer rows out than in": (
            DropsARow().fit(X, frame["r1"]),
            "DropsARow: predict gives 119 rows for 120 input rows: ml-api serves one "
            "prediction per input row",
        ),
        "more rows out than in": (
            Doubles().fit(X, frame["r1"]),
            "Doubles: predict gives 240 rows for 120 input rows: ml-api serves one "
            "prediction per input row",
        ),
    }


MULTI = [
    "Ridge on 2 target columns",
    "MultiOutputRegressor",
    "RandomForestClassifier on 2 label columns",
    "MultiOutputClassifier",
    "KNeighborsClassifier on 2 label columns",
    "LinearRegression on a one-column 2-D target",
    "fewer rows out than in",
    "more rows out than in",
]


@pytest.mark.parametrize("kind", MULTI)
def test_models_that_are_not_one_value_per_row_are_refused_in_one_line(tmp_path, frame, kind):
    model, message = _multi(frame)[kind]
    path = tmp_path / "model.joblib"
    joblib.dump(model, path)
    data = tmp_path / "data.csv"
    frame[["a", "b"]].to_csv(data, index=False)
    root = tmp_path / "models"
    assert message in refused(root, path, "--data", data)
    with pytest.raises(ImportRefused, match=re.escape(message)):
        ml_api.save_model(model, frame[["a", "b"]], name="m", model_root=root)
    assert not root.exists() or not any(root.iterdir())


# ---- classifiers without predict_proba -----------------------------------------------------

NO_PROBA = {
    "LinearSVC, string classes": (lambda: LinearSVC(), "k", "BYTES"),
    "SVC(probability=False), int classes": (lambda: SVC(), "k1", "INT64"),
    "RidgeClassifier, bool classes": (lambda: RidgeClassifier(), "kb", "BOOL"),
    "SGDClassifier hinge, string classes": (
        lambda: SGDClassifier(loss="hinge", random_state=0),
        "k",
        "BYTES",
    ),
}


def _labelled(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[["a", "b", "k", "k1"]].assign(kb=frame.k1 == 1)


@dataclass
class Imported:
    """A classifier without predict_proba, imported: what it was fitted on and where it is."""

    model: Any
    data: pd.DataFrame
    target: str
    datatype: str
    root: Path
    name: str


@pytest.fixture(scope="module", params=list(NO_PROBA))
def no_proba(request, frame, tmp_path_factory):
    """A classifier without predict_proba, imported with ``ml-api import`` (target included)."""
    make, target, datatype = NO_PROBA[request.param]
    data = _labelled(frame)
    model = make().fit(data[["a", "b"]], data[target])
    assert not hasattr(model, "predict_proba")
    tmp = tmp_path_factory.mktemp("noproba")
    path = tmp / "model.joblib"
    joblib.dump(model, path)
    csv = tmp / "data.csv"
    data[["a", "b", target]].to_csv(csv, index=False)
    root = tmp / "models"
    name = re.sub(r"[^a-z0-9]+", "-", request.param.lower()).strip("-")
    code, out, err = run_import(
        path, "--data", csv, "--target", target, "--name", name, "--model-root", root
    )
    assert code == 0, out + err
    return Imported(model, data, target, datatype, root, name)


@pytest.fixture
def apps(no_proba, django_settings, service):
    root, name = no_proba.root, no_proba.name
    settings = django_settings.model_copy(
        update={"model_root": root, "model_name": name, "max_instances": 1000}
    )
    imported = build_scoring(settings)
    flask = create_app(settings, imported).test_client()
    get_wsgi_application(settings, imported)
    try:
        yield imported, flask, DjangoClient()
    finally:
        get_wsgi_application(django_settings, service)


def _json(response: Any) -> Any:
    return json.loads(response.get_data() if hasattr(response, "get_data") else response.content)


def test_card_names_the_classes_and_says_probabilities_are_unavailable(no_proba):
    model, data, target = no_proba.model, no_proba.data, no_proba.target
    root, name = no_proba.root, no_proba.name
    card = json.loads((root / name / "1" / "metadata.json").read_text())
    assert card["task"] == "classification"
    assert card["classes"] == model.classes_.tolist()
    assert card["probabilities"].startswith("unavailable: the model has no predict_proba")
    assert card["provenance"]["task"] == "the model (classes_; no predict_proba, so labels only)"
    assert card["onnx"]["passed"] is False
    assert "without predict_proba" in card["onnx"]["reason"]
    assert card["runtime"] == "scikit-learn"
    from ml_api.core.model.artifact import load_artifact
    from ml_api.core.pages.card_page import CardContent

    page = CardContent.from_card(load_artifact(root, name).card, [])
    assert ("probabilities", card["probabilities"]) in page.facts
    assert card["metrics"]["accuracy"] == pytest.approx(
        float((model.predict(data[["a", "b"]]) == data[target]).mean())
    )


def test_v1_and_v2_serve_labels_typed_as_the_classes_in_both_frameworks(no_proba, apps):
    model, data, datatype, name = no_proba.model, no_proba.data, no_proba.datatype, no_proba.name
    _, flask, django = apps
    rows = data[["a", "b"]].iloc[:50]
    labels = model.predict(rows).tolist()
    instances = json_rows(rows)
    v2_body = {
        "inputs": [
            {"name": c, "datatype": "FP64", "shape": [len(rows)], "data": rows[c].tolist()}
            for c in ("a", "b")
        ]
    }
    bodies = []
    for client in (flask, django):
        r = client.post(
            "/predict", data=json.dumps({"instances": instances}), content_type="application/json"
        )
        assert r.status_code == 200
        body = _json(r)
        assert body["prediction"] == labels  # the classes' own JSON type: str, int or bool
        assert "probabilities" not in body
        meta = _json(client.get(f"/v2/models/{name}"))
        assert meta["outputs"] == [{"name": "predict", "datatype": datatype, "shape": [-1]}]
        assert meta["parameters"]["classes"] == ",".join(str(c) for c in model.classes_)
        r = client.post(
            f"/v2/models/{name}/infer", data=json.dumps(v2_body), content_type="application/json"
        )
        assert r.status_code == 200
        v2 = _json(r)
        (out,) = v2["outputs"]
        assert out["name"] == "predict" and out["datatype"] == datatype
        assert out["data"] == ([str(v) for v in labels] if datatype == "BYTES" else labels)
        asked = {**v2_body, "outputs": [{"name": "predict_proba"}]}
        r = client.post(
            f"/v2/models/{name}/infer", data=json.dumps(asked), content_type="application/json"
        )
        assert r.status_code == 400
        assert _json(r)["error"] == "unknown output 'predict_proba'; available: predict"
        bodies.append((body, v2))
        doc = _json(client.get("/openapi.json"))
        prediction = doc["components"]["schemas"]["Prediction"]["properties"]
        assert "probabilities" not in prediction
        json_type = {"BYTES": "string", "INT64": "integer", "BOOL": "boolean"}[datatype]
        assert prediction["prediction"]["items"] == {"type": json_type}
    assert bodies[0] == bodies[1]


def test_the_class_metric_counts_each_class(no_proba, apps):
    model, data, name = no_proba.model, no_proba.data, no_proba.name
    flask = apps[1]
    rows = data[["a", "b"]].iloc[:40]
    labels = model.predict(rows).tolist()

    def counts() -> dict[str, float]:
        text = flask.get("/metrics").get_data(as_text=True)
        found: dict[str, float] = {}
        for line in text.splitlines():
            if line.startswith("ml_api_predictions_total{") and f'model_name="{name}"' in line:
                cls = re.search(r'predicted_class="([^"]*)"', line).group(1)
                found[cls] = float(line.rsplit(" ", 1)[1])
        return found

    before = counts()
    r = flask.post("/predict", json={"instances": json_rows(rows)})
    assert r.status_code == 200
    after = counts()
    grown = {k: after[k] - before.get(k, 0.0) for k in after if after[k] != before.get(k, 0.0)}
    expected = pd.Series([str(v) for v in labels]).value_counts().to_dict()
    assert grown == {k: float(v) for k, v in expected.items()}
    assert "" not in after


def test_batch_predict_writes_labels_and_no_probability_columns(no_proba, tmp_path):
    model, data, root, name = no_proba.model, no_proba.data, no_proba.root, no_proba.name
    rows = data[["a", "b"]].iloc[:30]
    rows.to_csv(tmp_path / "in.csv", index=False)
    result = CliRunner().invoke(
        main,
        ["predict", "--input", str(tmp_path / "in.csv"), "--output", str(tmp_path / "out.csv"),
         "--name", name, "--model-root", str(root)],
        catch_exceptions=False,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    out = pd.read_csv(tmp_path / "out.csv", keep_default_na=False)
    assert list(out.columns) == ["a", "b", "prediction"]
    assert out["prediction"].astype(str).tolist() == [str(v) for v in model.predict(rows)]


@pytest.mark.live
@pytest.mark.parametrize("framework", ["flask", "django"])
def test_a_linear_svc_behind_a_real_server_answers_labels(tmp_path, frame, framework):
    import requests

    from tests.conftest import DJANGO_SECRET_KEY
    from tests.live.server import LiveServer

    data = _labelled(frame)
    model = LinearSVC().fit(data[["a", "b"]], data["k"])
    path = tmp_path / "svc.joblib"
    joblib.dump(model, path)
    csv = tmp_path / "data.csv"
    data[["a", "b", "k"]].to_csv(csv, index=False)
    root = tmp_path / "models"
    code, out, err = run_import(path, "--data", csv, "--name", "svc", "--model-root", root)
    assert code == 0, out + err
    rows = data[["a", "b"]].iloc[:25]
    labels = model.predict(rows).tolist()
    env = {"ML_API_SECRET_KEY": DJANGO_SECRET_KEY} if framework == "django" else {}
    with LiveServer(root, framework, workers=1, env=env, args=("--name", "svc")) as server:
        r = requests.post(server.url + "/predict", json={"instances": json_rows(rows)}, timeout=30)
        assert r.status_code == 200, r.text
        assert r.json()["prediction"] == labels and "probabilities" not in r.json()
        v2 = {
            "inputs": [
                {"name": c, "datatype": "FP64", "shape": [len(rows)], "data": rows[c].tolist()}
                for c in ("a", "b")
            ]
        }
        r = requests.post(server.url + "/v2/models/svc/infer", json=v2, timeout=30)
        assert r.status_code == 200, r.text
        assert r.json()["outputs"] == [
            {"name": "predict", "datatype": "BYTES", "shape": [25], "data": labels}
        ]
        metrics = requests.get(server.url + "/metrics", timeout=10).text
        assert 'predicted_class=""' not in metrics
        for label in set(labels):
            assert f'predicted_class="{label}"' in metrics


def test_a_multi_output_version_written_before_the_check_is_refused_when_loaded(
    tmp_path, frame, django_settings
):
    """A version the import would now refuse, already on disk: one line at load, not 500s."""
    from ml_api.core.model.artifact import load_artifact, save_artifact
    from ml_api.core.model.card import NewCard
    from ml_api.core.model.integrity import ArtifactError
    from ml_api.core.model.schema import FeatureSchema

    model = Ridge().fit(frame[["a", "b"]], frame[["r1", "r2"]])
    schema = FeatureSchema.infer(frame[["a", "b"]])
    save_artifact(
        model,
        model_root=tmp_path,
        name="two",
        card=NewCard(schema=schema, task="regression"),
    )
    settings = django_settings.model_copy(update={"model_root": tmp_path, "model_name": "two"})
    with pytest.raises(ArtifactError, match=r"answers shape \(1, 2\) for one instance"):
        build_scoring(settings, artifact=load_artifact(tmp_path, "two"))
    frame[["a", "b"]].head(3).to_csv(tmp_path / "in.csv", index=False)
    result = CliRunner().invoke(
        main,
        ["predict", "--input", str(tmp_path / "in.csv"), "--output", str(tmp_path / "out.csv"),
         "--name", "two", "--model-root", str(tmp_path)],
    )  # fmt: skip
    assert result.exit_code != 0
    assert "answers shape (1, 2) for one instance" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "out.csv").exists()
