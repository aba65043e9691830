"""Encoders fitted on integer codes (issue 10): the feature is categorical over those numbers.

A zip code kept as the integer ``2134``, a store id or a ``cylinders`` code, one-hot or ordinal
encoded by the model itself, must not be served as a plain number: an unseen code would be scored
as "no category" (``handle_unknown="ignore"``) or crash the encoder. Imported, such a feature
takes JSON numbers equal to one of the encoder's codes and refuses the rest with the normal 422,
in V1 and V2, Flask and Django, and in ``ml-api predict``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import requests
from click.testing import CliRunner
from django.test import Client as DjangoClient
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

import ml_api
from ml_api.api.django_app import get_wsgi_application
from ml_api.api.flask_app import create_app
from ml_api.cli import main
from ml_api.composition import build_scoring
from ml_api.core.errors import InvalidInput
from ml_api.core.model.schema import FeatureSchema
from ml_api.core.model.validation import validate_columns
from ml_api.settings import Settings
from tests.conftest import DJANGO_SECRET_KEY
from tests.importing.conftest import json_rows
from tests.live.server import LiveServer

ZIPS = [2134, 2138, 2139, 2215]
CYLINDERS = [4, 6, 8]
UNSEEN_ZIP = 2116


@pytest.fixture(scope="module")
def coded() -> pd.DataFrame:
    """200 rows: a float, a zip code and a cylinders code (both int64), a class target."""
    rng = np.random.default_rng(3)
    n = 200
    frame = pd.DataFrame(
        {
            "a": rng.normal(size=n),
            "zip": rng.choice(ZIPS, n),
            "cylinders": rng.choice(CYLINDERS, n),
        }
    )
    frame["k"] = ((frame.a > 0) ^ frame.zip.isin([2138, 2215]) | (frame.cylinders == 8)).astype(int)
    return frame


def _fit(kind: str, frame: pd.DataFrame) -> Pipeline:
    X, y = frame[["a", "zip", "cylinders"]], frame["k"]
    if kind == "onehot_ignore":
        pre = ColumnTransformer(
            [
                ("num", StandardScaler(), ["a"]),
                ("codes", OneHotEncoder(handle_unknown="ignore"), ["zip", "cylinders"]),
            ]
        )
        return Pipeline([("pre", pre), ("clf", LogisticRegression())]).fit(X, y)
    if kind == "onehot_error":  # cylinders passes through as a number: it stays numeric
        pre = ColumnTransformer([("zip", OneHotEncoder(), ["zip"])], remainder="passthrough")
        return Pipeline([("pre", pre), ("clf", LogisticRegression())]).fit(X, y)
    pre = ColumnTransformer(
        [("codes", OrdinalEncoder(), ["zip", "cylinders"])], remainder="passthrough"
    )
    forest = RandomForestClassifier(n_estimators=5, random_state=0)
    return Pipeline([("pre", pre), ("clf", forest)]).fit(X, y)


KINDS = ["onehot_ignore", "onehot_error", "ordinal"]


@pytest.fixture(scope="module")
def imported(tmp_path_factory, coded: pd.DataFrame) -> tuple[Path, dict[str, Pipeline]]:
    """The three pipelines imported (``ml_api.save_model``) into one model root."""
    root = tmp_path_factory.mktemp("coded")
    models = {}
    for kind in KINDS:
        models[kind] = _fit(kind, coded)
        ml_api.save_model(models[kind], coded, name=kind, target="k", model_root=root)
    return root, models


def _card(root: Path, kind: str) -> dict[str, Any]:
    return json.loads((root / kind / "1" / "metadata.json").read_text())


@pytest.mark.parametrize("kind", KINDS)
def test_encoded_integer_columns_become_categorical_over_the_encoders_codes(imported, kind):
    root, _ = imported
    card = _card(root, kind)
    by_name = {f["name"]: f for f in card["features"]}
    assert by_name["zip"]["kind"] == "categorical"
    assert by_name["zip"]["categories"] == ZIPS  # numbers, in the encoder's order
    assert by_name["zip"]["dtype"] == "int64"
    encoder = "OrdinalEncoder" if kind == "ordinal" else "OneHotEncoder"
    assert card["provenance"]["categories"]["zip"].startswith(f"{encoder} in the model")
    assert "numeric codes" in card["provenance"]["categories"]["zip"]
    if kind == "onehot_error":
        assert by_name["cylinders"]["kind"] == "numeric"  # no encoder sees it
    else:
        assert by_name["cylinders"]["categories"] == CYLINDERS
    assert by_name["a"]["kind"] == "numeric"
    # the ONNX form either passed the gate or says why not
    onnx = card["onnx"]
    assert (card["runtime"] == "onnxruntime") == onnx["passed"]
    assert onnx["passed"] or onnx["reason"]


@pytest.fixture
def clients(imported, django_settings, service, request):
    """Flask and Django test clients for one imported kind, and the service behind them."""
    root, models = imported
    kind = request.param
    settings = django_settings.model_copy(
        update={"model_root": root, "model_name": kind, "max_instances": 1000}
    )
    served = build_scoring(settings)
    flask = create_app(settings, served).test_client()
    get_wsgi_application(settings, served)
    try:
        yield kind, models[kind], served, flask, DjangoClient()
    finally:
        get_wsgi_application(django_settings, service)  # back to the session's penguins service


def _post(client: Any, path: str, body: Any) -> tuple[int, Any]:
    r = client.post(path, data=json.dumps(body), content_type="application/json")
    raw = r.get_data() if hasattr(r, "get_data") else r.content
    return r.status_code, json.loads(raw)


def _v2_request(schema: FeatureSchema, rows: list[dict[str, Any]]) -> dict[str, Any]:
    inputs = []
    for f in schema.features:
        datatype = "FP64" if f.kind == "numeric" else "INT64" if f.is_coded else "BYTES"
        data = [r[f.name] for r in rows]
        inputs.append({"name": f.name, "datatype": datatype, "shape": [len(rows)], "data": data})
    return {"inputs": inputs}


@pytest.mark.parametrize("clients", KINDS, indirect=True)
def test_known_codes_are_predicted_as_the_model_does_and_unseen_ones_refused(
    clients, coded: pd.DataFrame
):
    kind, model, served, flask, django = clients
    rows = coded.iloc[:50][["a", "zip", "cylinders"]]
    instances = json_rows(rows)
    labels = model.predict(rows).tolist()
    proba = model.predict_proba(rows)
    schema = served.artifact.schema
    unseen = dict(instances[0], zip=UNSEEN_ZIP)
    quoted = dict(instances[0], zip=str(instances[0]["zip"]))
    answers = {}
    for framework, client in (("flask", flask), ("django", django)):
        status, body = _post(client, "/predict", {"instances": instances})
        assert status == 200, body
        assert body["prediction"] == labels
        got = np.array([[p[str(c)] for c in (0, 1)] for p in body["probabilities"]])
        np.testing.assert_allclose(got, proba, rtol=1e-6, atol=1e-5)  # 1e-5: the ONNX gate

        status, body = _post(client, f"/v2/models/{kind}/infer", _v2_request(schema, instances))
        assert status == 200, body
        outputs = {o["name"]: o for o in body["outputs"]}
        assert outputs["predict"]["data"] == labels
        v2_proba = np.asarray(outputs["predict_proba"]["data"]).reshape(proba.shape)
        np.testing.assert_allclose(v2_proba, proba, rtol=1e-6, atol=1e-5)

        status, refused = _post(client, "/predict", {"instances": [instances[0], unseen]})
        assert status == 422
        assert refused["details"] == [
            {
                "instance": 1,
                "field": "zip",
                "problem": f"unknown category {UNSEEN_ZIP}; allowed: 2134, 2138, 2139, 2215",
            }
        ]
        status, as_text = _post(client, "/predict", {"instances": [quoted]})
        assert status == 422
        assert as_text["details"][0]["field"] == "zip"
        assert "expected a number" in as_text["details"][0]["problem"]
        assert "send the number without quotes" in as_text["details"][0]["problem"]

        status, v2_refused = _post(
            client, f"/v2/models/{kind}/infer", _v2_request(schema, [unseen])
        )
        assert status == 400 and "unknown category 2116" in v2_refused["error"]
        as_bytes = _v2_request(schema, [quoted])
        for tensor in as_bytes["inputs"]:
            if tensor["name"] == "zip":
                tensor["datatype"] = "BYTES"
        status, wrong_type = _post(client, f"/v2/models/{kind}/infer", as_bytes)
        assert status == 400 and "datatype BYTES" in wrong_type["error"]
        bodies = (refused, as_text, v2_refused, wrong_type)
        answers[framework] = [{k: v for k, v in b.items() if k != "request_id"} for b in bodies]
    assert answers["flask"] == answers["django"]


@pytest.mark.parametrize("clients", ["onehot_ignore"], indirect=True)
def test_metadata_describes_the_codes_as_numbers(clients):
    kind, _, _, flask, django = clients
    v1 = flask.get("/metadata").get_json()
    assert v1 == json.loads(django.get("/metadata").content)
    assert next(f for f in v1["features"] if f["name"] == "zip")["categories"] == ZIPS
    v2 = flask.get(f"/v2/models/{kind}").get_json()
    datatypes = {i["name"]: i["datatype"] for i in v2["inputs"]}
    assert datatypes == {"a": "FP64", "zip": "INT64", "cylinders": "INT64"}
    schema = flask.get("/openapi.json").get_json()
    text = json.dumps(schema)
    assert '"enum": [2134, 2138, 2139, 2215]' in text


def test_float_codes_accept_the_same_number_written_either_way(tmp_path: Path, coded):
    """Codes the encoder saw as floats (4.0) take 4 and 4.0; 4.5 is refused."""
    frame = coded.assign(cylinders=coded.cylinders.astype(float))
    model = _fit("onehot_ignore", frame)
    ml_api.save_model(model, frame, name="floats", target="k", model_root=tmp_path)
    card = _card(tmp_path, "floats")
    cyl = next(f for f in card["features"] if f["name"] == "cylinders")
    assert cyl["categories"] == [4, 6, 8] and cyl["dtype"] == "float64"
    schema = FeatureSchema.from_list(card["features"])
    row = {"a": 0.5, "zip": 2134}
    columns = validate_columns(schema, [dict(row, cylinders=4), dict(row, cylinders=6.0)])
    assert columns[2] == [4, 6]
    served = build_scoring(Settings(model_root=tmp_path, model_name="floats"))
    own = pd.DataFrame({"a": [0.5, 0.5], "zip": [2134, 2134], "cylinders": [4.0, 6.0]})
    got = served.predictor.predict(columns)
    np.testing.assert_allclose(got.probabilities, model.predict_proba(own), rtol=1e-6, atol=1e-5)
    with pytest.raises(InvalidInput, match=r"unknown category 4\.5; allowed: 4, 6, 8"):
        validate_columns(schema, [dict(row, cylinders=4.5)])


def _predict_cli(root: Path, kind: str, rows: pd.DataFrame, tmp_path: Path) -> Any:
    source = tmp_path / "in.csv"
    rows.to_csv(source, index=False)
    args = ["predict", "--input", str(source), "--output", str(tmp_path / "out.csv")]
    args += ["--name", kind, "--model-root", str(root)]
    return CliRunner().invoke(main, args, catch_exceptions=False)


def test_cli_predict_reads_code_cells_as_numbers(imported, coded, tmp_path: Path):
    root, models = imported
    rows = coded.iloc[:30]
    result = _predict_cli(root, "onehot_ignore", rows, tmp_path)
    assert result.exit_code == 0, result.output
    out = pd.read_csv(tmp_path / "out.csv")
    model = models["onehot_ignore"]
    features = rows[["a", "zip", "cylinders"]]
    assert out["prediction"].tolist() == model.predict(features).tolist()
    np.testing.assert_allclose(
        out[["probability_0", "probability_1"]].to_numpy(),
        model.predict_proba(features),
        rtol=1e-6,
        atol=1e-5,
    )


def test_cli_predict_refuses_an_unseen_code(imported, coded, tmp_path: Path):
    root, _ = imported
    rows = coded.iloc[:5].copy()
    rows.loc[rows.index[3], "zip"] = UNSEEN_ZIP
    result = _predict_cli(root, "onehot_ignore", rows, tmp_path)
    assert result.exit_code != 0
    assert "row 4, column zip: unknown category 2116;" in result.output
    assert f"unknown category {UNSEEN_ZIP}; allowed: 2134, 2138, 2139, 2215" in result.output
    assert not (tmp_path / "out.csv").exists()


@pytest.mark.live
@pytest.mark.parametrize("framework", ["flask", "django"])
def test_served_over_http_by_gunicorn(imported, coded, framework):
    root, models = imported
    env = {"ML_API_SECRET_KEY": DJANGO_SECRET_KEY} if framework == "django" else {}
    server = LiveServer(root, framework, workers=1, env=env, args=("--name", "onehot_ignore"))
    rows = coded.iloc[:40][["a", "zip", "cylinders"]]
    model = models["onehot_ignore"]
    with server:
        r = requests.post(server.url + "/predict", json={"instances": json_rows(rows)}, timeout=30)
        assert r.status_code == 200, r.text
        assert r.json()["prediction"] == model.predict(rows).tolist()
        got = np.array([[p["0"], p["1"]] for p in r.json()["probabilities"]])
        np.testing.assert_allclose(got, model.predict_proba(rows), rtol=1e-6, atol=1e-5)
        unseen = dict(json_rows(rows.iloc[:1])[0], zip=UNSEEN_ZIP)
        r = requests.post(server.url + "/predict", json={"instances": [unseen]}, timeout=10)
        assert r.status_code == 422
        assert r.json()["details"][0]["field"] == "zip"
        assert "unknown category 2116" in r.json()["error"]
    assert server.proc.returncode == 0, server.output()


@pytest.mark.parametrize("library", ["lightgbm", "xgboost"])
def test_native_categories_over_integers_take_numbers(tmp_path: Path, coded, library):
    """A pandas category column of store ids, LightGBM's/XGBoost's native categorical support."""
    if library == "lightgbm":
        import lightgbm

        model: Any = lightgbm.LGBMClassifier(n_estimators=10, min_child_samples=5, verbose=-1)
    else:
        import xgboost

        model = xgboost.XGBClassifier(n_estimators=10, enable_categorical=True, tree_method="hist")
    X = coded[["a", "zip"]].assign(zip=pd.Categorical(coded.zip, categories=ZIPS))
    model.fit(X, coded["k"])
    ml_api.save_model(model, X.assign(k=coded["k"]), name="native", target="k", model_root=tmp_path)
    card = _card(tmp_path, "native")
    zip_feature = next(f for f in card["features"] if f["name"] == "zip")
    assert zip_feature["categories"] == ZIPS and zip_feature["dtype"] == "category"
    assert "native categorical" in card["provenance"]["categories"]["zip"]
    settings = Settings(model_root=tmp_path, model_name="native", max_instances=1000)
    flask = create_app(settings, build_scoring(settings)).test_client()
    rows = X.iloc[:60]
    r = flask.post("/predict", json={"instances": json_rows(rows)})
    assert r.status_code == 200, r.get_data()
    assert r.get_json()["prediction"] == model.predict(rows).tolist()
    got = np.array([[p["0"], p["1"]] for p in r.get_json()["probabilities"]])
    np.testing.assert_allclose(got, model.predict_proba(rows), rtol=1e-6, atol=1e-9)
    r = flask.post("/predict", json={"instances": [{"a": 0.1, "zip": UNSEEN_ZIP}]})
    assert r.status_code == 422
    assert r.get_json()["details"][0]["problem"].startswith("unknown category 2116; allowed: ")


def test_ml_api_import_of_a_joblib_file_with_a_csv(tmp_path: Path, coded):
    """The CLI path: joblib file plus a CSV (pandas reads the zip column as int64)."""
    import joblib

    model = _fit("onehot_error", coded)
    joblib.dump(model, tmp_path / "model.joblib")
    coded.to_csv(tmp_path / "data.csv", index=False)
    args = ["import", str(tmp_path / "model.joblib"), "--data", str(tmp_path / "data.csv")]
    args += ["--target", "k", "--name", "zips", "--model-root", str(tmp_path / "models")]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    card = _card(tmp_path / "models", "zips")
    assert next(f for f in card["features"] if f["name"] == "zip")["categories"] == ZIPS
