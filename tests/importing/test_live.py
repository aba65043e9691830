"""Imported models behind real gunicorn servers (``ml-api serve --name``), over HTTP on loopback.

A joblib'd ``Pipeline`` with a ``ColumnTransformer`` and an ``XGBClassifier`` with a native
categorical feature, each served by Flask and by Django: ``/predict`` and V2 ``infer`` answer
what the model's own ``predict_proba`` says for the same rows.
"""

from __future__ import annotations

import numpy as np
import pytest
import requests

from ml_api.core.model.schema import FeatureSchema
from tests.conftest import DJANGO_SECRET_KEY
from tests.importing.conftest import Case, json_rows
from tests.importing.test_serving import expected, import_case, v2_request
from tests.live.server import LiveServer

pytestmark = pytest.mark.live


@pytest.fixture(scope="module")
def root(tmp_path_factory, pipeline_case: Case, xgboost_case: Case):
    root = tmp_path_factory.mktemp("imported")
    import_case(pipeline_case, root, "notebook")
    import_case(xgboost_case, root, "boosted")
    return root


@pytest.mark.parametrize("framework", ["flask", "django"])
@pytest.mark.parametrize("name", ["notebook", "boosted"])
def test_served_over_http_equals_the_models_own(root, framework, name, request):
    case: Case = request.getfixturevalue("pipeline_case" if name == "notebook" else "xgboost_case")
    env = {"ML_API_SECRET_KEY": DJANGO_SECRET_KEY} if framework == "django" else {}
    server = LiveServer(root, framework, workers=1, env=env, args=("--name", name))
    with server:
        meta = requests.get(server.url + "/metadata", timeout=10).json()
        names = [f["name"] for f in meta["features"]]
        rows = case.features().iloc[:40][names]
        labels, proba = expected(case, rows)
        instances = json_rows(rows)
        r = requests.post(server.url + "/predict", json={"instances": instances}, timeout=30)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["model"] == {"name": name, "version": "1"}
        assert [str(p) for p in body["prediction"]] == [str(v) for v in labels]
        classes = meta["classes"]
        served = np.array([[p[str(c)] for c in classes] for p in body["probabilities"]])
        np.testing.assert_allclose(
            served, proba, rtol=1e-6, atol=1e-5
        )  # 1e-5: the ONNX gate (ONNX Runtime serves)
        schema = FeatureSchema.from_list(meta["features"])
        r = requests.post(
            f"{server.url}/v2/models/{name}/infer", json=v2_request(schema, instances), timeout=30
        )
        assert r.status_code == 200, r.text
        outputs = {o["name"]: o for o in r.json()["outputs"]}
        assert [str(p) for p in outputs["predict"]["data"]] == [str(v) for v in labels]
        v2_proba = np.asarray(outputs["predict_proba"]["data"], dtype=float).reshape(proba.shape)
        np.testing.assert_allclose(
            v2_proba, proba, rtol=1e-6, atol=1e-5
        )  # 1e-5: the ONNX gate (ONNX Runtime serves)

        bad = dict(instances[0], **({"island": "Atlantis"} if name == "notebook" else {"c": "w"}))
        r = requests.post(server.url + "/predict", json={"instances": [bad]}, timeout=10)
        assert r.status_code == 422 and "unknown category" in r.json()["error"]
    assert server.proc.returncode == 0, server.output()
