"""Imported models serve like trained ones: Flask and Django, V1 and V2, the batch CLI.

Every model kind and format is imported (``ml-api import`` for files and MLflow directories,
``ml_api.save_model`` for an object), then served through both frameworks' test clients; the
predictions must equal the model's own ``predict``/``predict_proba`` on the same rows.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from django.test import Client as DjangoClient

import ml_api
from ml_api.api.django_app import get_wsgi_application
from ml_api.api.flask_app import create_app
from ml_api.cli import main
from ml_api.composition import build_scoring
from ml_api.core.model.artifact import load_artifact
from tests.importing.conftest import Case, json_rows

ROWS = 60
"""Rows sent per request: under the test settings' 64 KiB body limit for every case."""


def import_case(case: Case, root: Path, name: str) -> Path:
    """Import through the CLI (files, MLflow directories) or ml_api.save_model (objects)."""
    if case.path is None:
        return ml_api.save_model(
            case.model, case.frame, name=name, target=case.target, model_root=root
        ).path
    args = ["import", str(case.path), "--name", name, "--model-root", str(root)]
    if case.data is not None:
        args += ["--data", str(case.data)]
    if case.target is not None:
        args += ["--target", case.target]
    for type_name in case.trust:
        args += ["--trust", type_name]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "saved " in result.output and "checked: the server's predictions" in result.output
    return root / name / "1"


def expected(case: Case, rows: pd.DataFrame) -> tuple[list, np.ndarray | None]:
    own = case.model_input(rows)
    labels = case.model.predict(own).tolist()
    proba = case.model.predict_proba(own) if hasattr(case.model, "classes_") else None
    return labels, proba


def assert_v1(body: dict, labels: list, proba: np.ndarray | None, classes) -> None:
    if proba is None:
        np.testing.assert_allclose(body["prediction"], labels, rtol=1e-6, atol=1e-5)
        assert "probabilities" not in body
        return
    assert [str(p) for p in body["prediction"]] == [str(v) for v in labels]
    served = np.array([[p[str(c)] for c in classes] for p in body["probabilities"]])
    np.testing.assert_allclose(
        served, proba, rtol=1e-6, atol=1e-5
    )  # 1e-5: the ONNX gate (ONNX Runtime serves)


def v2_request(schema, rows: list[dict]) -> dict:
    return {
        "id": "import-1",
        "inputs": [
            {
                "name": f.name,
                "datatype": "BYTES" if f.kind == "categorical" else "FP64",
                "shape": [len(rows)],
                "data": [r[f.name] for r in rows],
            }
            for f in schema.features
        ],
    }


def assert_v2(body: dict, labels: list, proba: np.ndarray | None) -> None:
    outputs = {o["name"]: o for o in body["outputs"]}
    if proba is None:
        np.testing.assert_allclose(outputs["predict"]["data"], labels, rtol=1e-6, atol=1e-5)
        return
    assert [str(p) for p in outputs["predict"]["data"]] == [str(v) for v in labels]
    served = np.asarray(outputs["predict_proba"]["data"], dtype=float).reshape(proba.shape)
    np.testing.assert_allclose(
        served, proba, rtol=1e-6, atol=1e-5
    )  # 1e-5: the ONNX gate (ONNX Runtime serves)


@pytest.fixture
def served(case: Case, tmp_path: Path, django_settings, service):
    """The imported case as a service, with a Flask and a Django client around it."""
    root = tmp_path / "models"
    import_case(case, root, "imported")
    settings = django_settings.model_copy(
        update={"model_root": root, "model_name": "imported", "max_instances": 1000}
    )
    imported = build_scoring(settings)
    flask = create_app(settings, imported).test_client()
    get_wsgi_application(settings, imported)
    try:
        yield imported, flask, DjangoClient()
    finally:
        get_wsgi_application(django_settings, service)  # back to the session's penguins service


def test_flask_django_v1_and_v2_equal_the_models_own(case: Case, served):
    service, flask, django = served
    rows = case.features().iloc[:ROWS][list(service.artifact.schema.names)]
    labels, proba = expected(case, rows)
    instances = json_rows(rows)
    classes = service.artifact.classes
    v1 = json.dumps({"instances": instances})
    v2 = json.dumps(v2_request(service.artifact.schema, instances))
    for post in (
        lambda path, body: flask.post(path, data=body, content_type="application/json"),
        lambda path, body: django.post(path, data=body, content_type="application/json"),
    ):
        r = post("/predict", v1)
        assert r.status_code == 200, r.data if hasattr(r, "data") else r.content
        assert_v1(
            json.loads(r.get_data() if hasattr(r, "get_data") else r.content),
            labels,
            proba,
            classes,
        )
        r = post("/v2/models/imported/infer", v2)
        assert r.status_code == 200
        assert_v2(json.loads(r.get_data() if hasattr(r, "get_data") else r.content), labels, proba)


def test_metadata_says_where_it_came_from(case: Case, served):
    service, flask, django = served
    flask_body = flask.get("/metadata").get_json()
    assert flask_body == json.loads(django.get("/metadata").content)
    formats = {".pkl": "pickle", ".joblib": "joblib", ".skops": "skops"}
    fmt = "python" if case.path is None else formats.get(case.path.suffix, "mlflow")
    assert flask_body["source"]["format"] == fmt
    assert set(flask_body["provenance"]) >= {"feature_names_and_order", "categories"}
    assert flask_body["task"] == (
        "classification" if hasattr(case.model, "classes_") else "regression"
    )
    if case.target is not None:
        assert flask_body["metrics"] and flask_body["metrics_on"].startswith("the import data")
    v2 = flask.get("/v2/models/imported").get_json()
    names = list(service.artifact.schema.names)
    all_numeric = all(f.kind == "numeric" for f in service.artifact.schema.features)
    assert [i["name"] for i in v2["inputs"]] == (["input-0"] if all_numeric else names)


def test_batch_cli_scores_an_imported_model(tmp_path: Path, xgboost_case: Case):
    root = tmp_path / "models"
    import_case(xgboost_case, root, "xgb")
    rows = xgboost_case.features().iloc[:25]
    rows.to_csv(tmp_path / "in.csv", index=False)
    result = CliRunner().invoke(
        main,
        [
            "predict",
            "--input",
            str(tmp_path / "in.csv"),
            "--output",
            str(tmp_path / "out.csv"),
            "--name",
            "xgb",
            "--model-root",
            str(root),
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    out = pd.read_csv(tmp_path / "out.csv")
    labels, proba = expected(xgboost_case, rows)
    assert out["prediction"].tolist() == labels
    np.testing.assert_allclose(
        out[[f"probability_{c}" for c in (0, 1, 2)]].to_numpy(), proba, rtol=1e-6, atol=1e-5
    )


def test_card_records_provenance_and_model_libraries(
    tmp_path: Path, pipeline_case: Case, xgboost_case: Case, lightgbm_case: Case, numpy_case: Case
):
    root = tmp_path / "models"
    cards = {}
    for name, case in [
        ("p", pipeline_case),
        ("x", xgboost_case),
        ("l", lightgbm_case),
        ("n", numpy_case),
    ]:
        cards[name] = load_artifact(root, name) if import_case(case, root, name) else None
    p = cards["p"].metadata
    assert p["provenance"]["feature_names_and_order"] == "the model's feature_names_in_"
    assert p["provenance"]["categories"]["island"].startswith("OneHotEncoder in the model")
    assert "ColumnTransformer 'cat'" in p["provenance"]["categories"]["island"]
    assert p["source"]["sha256"] and p["import_data"]["sha256"] and p["input"] == "frame"
    assert "xgboost" not in p["versions"] and "lightgbm" not in p["versions"]
    x, lg = cards["x"].metadata, cards["l"].metadata
    assert x["versions"]["xgboost"] and lg["versions"]["lightgbm"]
    for card in (x, lg):
        c = next(f for f in card["features"] if f["name"] == "c")
        assert c["dtype"] == "category" and c["categories"] == ["x", "y", "z"]
    assert "native categorical" in x["provenance"]["categories"]["c"]
    assert "pandas_categorical" in lg["provenance"]["categories"]["c"]
    n = cards["n"].metadata
    assert n["input"] == "array" and [f["name"] for f in n["features"]] == ["a", "b"]
    assert n["provenance"]["feature_names_and_order"].startswith("the data's columns")


def test_the_version_gate_covers_the_models_own_library(tmp_path: Path, xgboost_case: Case):
    from ml_api.core.model.integrity import ArtifactError

    root = tmp_path / "models"
    path = import_case(xgboost_case, root, "xgb")
    card = json.loads((path / "metadata.json").read_text())
    card["versions"]["xgboost"] = "0.90.0"
    (path / "metadata.json").write_text(json.dumps(card))
    with pytest.raises(ArtifactError, match=r"fitted with xgboost 0\.90\.0 but .* is installed"):
        load_artifact(root, "xgb")
    assert load_artifact(root, "xgb", allow_version_mismatch=True).card.library_versions


def test_mlflow_input_example_and_signature_make_the_schema(tmp_path: Path, mlflow_case: Case):
    root = tmp_path / "models"
    import_case(mlflow_case, root, "mlf")  # no --data: the 5-row input example is the sample
    card = load_artifact(root, "mlf").metadata
    by_name = {f["name"]: f for f in card["features"]}
    assert (
        card["import_data"]["file"] == "MLflow input example" and card["import_data"]["rows"] == 5
    )
    assert card["source"]["format"] == "mlflow" and card["source"]["flavor"] == "sklearn"
    # not null in the 5 rows, but optional in the signature: null is accepted (the pipeline imputes)
    assert by_name["bill_length_mm"]["nullable"] and not by_name["island"]["nullable"]
    assert "signature" in card["provenance"]["kinds_ranges_nullability"]
    assert by_name["island"]["categories"] == ["Biscoe", "Dream", "Torgersen"]  # the encoder's
    assert card["metrics"] is None and card["metrics_on"] is None
