"""Feature names ONNX cannot take as input names keep ONNX Runtime (scikit-learn's own data sets).

``load_wine`` has ``od280/od315_of_diluted_wines``, ``load_breast_cancer`` has ``mean radius``:
skl2onnx rewrites such names, so the runtime once failed on them and scikit-learn served. The
ONNX graph now takes internal names (``input_<position>``); the card, the API and the errors keep
the real ones. Each model is imported with ``ml-api import`` and served by a real server.
"""

from __future__ import annotations

import json
from pathlib import Path

import joblib
import numpy as np
import pytest
import requests
from click.testing import CliRunner
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.datasets import load_breast_cancer, load_wine
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ml_api.cli import main
from ml_api.core.model.schema import FeatureSchema
from ml_api.core.runtimes.onnx_runtime import onnx_input_names
from ml_api.core.wording import describe_model
from ml_api.onnx_export import convert
from tests.conftest import DJANGO_SECRET_KEY
from tests.importing.conftest import json_rows
from tests.live.server import LiveServer

LOADERS = {"wine": load_wine, "cancer": load_breast_cancer}
ODD_NAME = {"wine": "od280/od315_of_diluted_wines", "cancer": "mean radius"}


def test_plain_names_are_kept_and_others_get_unique_positions():
    names = ["alcohol", "od280/od315", "mean radius", "input_1", "café", "_x9"]
    got = onnx_input_names(names)
    assert got[0] == "alcohol" and got[3] == "input_1" and got[5] == "_x9"
    assert got[1] == "input_1_" and got[2] == "input_2" and got[4] == "input_4"
    assert len(set(got)) == len(got)


def _import(tmp_path: Path, name: str):
    data = LOADERS[name](as_frame=True)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))
    model.fit(data.data, data.target)
    joblib.dump(model, tmp_path / f"{name}.joblib")
    data.frame.to_csv(tmp_path / f"{name}.csv", index=False)
    args = [f"{name}.joblib", "--data", f"{name}.csv", "--target", "target", "--name", name]
    args = ["import", *(str(tmp_path / a) if a.endswith((".joblib", ".csv")) else a for a in args)]
    r = CliRunner().invoke(main, [*args, "--model-root", str(tmp_path / "models")])
    return model, data.frame, r


@pytest.mark.live
@pytest.mark.parametrize(("name", "framework"), [("wine", "flask"), ("cancer", "django")])
def test_odd_feature_names_are_served_by_onnx_runtime_with_the_models_answers(
    tmp_path, name, framework
):
    model, frame, r = _import(tmp_path, name)
    assert r.exit_code == 0, r.output
    assert "served by ONNX Runtime" in r.output, r.output
    assert "ONNXRuntimeError" not in r.output and "np.float" not in r.output
    assert "imported a Pipeline ending in LogisticRegression (classification)" in r.output
    card = json.loads((tmp_path / "models" / name / "1" / "metadata.json").read_text())
    assert card["onnx"]["passed"] is True
    assert ODD_NAME[name] in [f["name"] for f in card["features"]]

    env = {"ML_API_SECRET_KEY": DJANGO_SECRET_KEY} if framework == "django" else {}
    with LiveServer(tmp_path / "models", framework, workers=1, env=env, args=("--name", name)) as s:
        meta = requests.get(s.url + "/metadata", timeout=10).json()
        assert meta["runtime"] == "onnxruntime"
        assert [f["name"] for f in meta["features"]] == list(model.feature_names_in_)
        X = frame.drop(columns=["target"])
        labels = model.predict(X)
        proba = model.predict_proba(X)
        for start in range(0, len(X), 50):  # ML_API_MAX_INSTANCES of the live server
            rows = X.iloc[start : start + 50]
            got = requests.post(s.url + "/predict", json={"instances": json_rows(rows)}, timeout=30)
            assert got.status_code == 200, got.text
            body = got.json()
            assert body["prediction"] == labels[start : start + 50].tolist()
            served = [[p[str(c)] for c in model.classes_] for p in body["probabilities"]]
            np.testing.assert_allclose(served, proba[start : start + 50], atol=1e-5)  # the gate
        bad = dict(json_rows(X.iloc[:1])[0], **{ODD_NAME[name]: "high"})
        r = requests.post(s.url + "/predict", json={"instances": [bad]}, timeout=10)
        assert r.status_code == 422
        assert r.json()["details"][0]["field"] == ODD_NAME[name]
        openapi = requests.get(s.url + "/openapi.json", timeout=10).text
        assert json.dumps(ODD_NAME[name]) in openapi and "input_" not in openapi
    assert s.proc.returncode == 0, s.output()


class Doubler(BaseEstimator, TransformerMixin):
    """A user's own transformer: skl2onnx has no converter for it."""

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        return np.asarray(X) * 2


def test_a_step_without_converter_is_named_not_the_final_estimator():
    data = load_wine(as_frame=True)
    model = make_pipeline(StandardScaler(), Doubler(), LogisticRegression(max_iter=5000))
    model.fit(data.data, data.target)
    schema = FeatureSchema.from_list(
        [
            {"name": n, "kind": "numeric", "dtype": "float64", "nullable": False}
            for n in data.data.columns
        ]
    )
    with pytest.raises(Exception) as raised:
        convert(model, schema, array_input=False)
    text = str(raised.value)
    assert text == (
        "skl2onnx has no converter for Doubler (step 'doubler', class "
        "tests.importing.test_onnx_names.Doubler)"
    )
    assert "LogisticRegression" not in text
    assert describe_model(model) == "a Pipeline ending in LogisticRegression"
    assert describe_model(model[-1]) == "LogisticRegression"


def test_runtime_errors_name_the_features_not_the_internal_inputs(tmp_path):
    from ml_api.core.runtimes.onnx_runtime import OnnxSession

    _, _, r = _import(tmp_path, "wine")
    assert r.exit_code == 0, r.output
    version = tmp_path / "models" / "wine" / "1"
    card = json.loads((version / "metadata.json").read_text())
    schema = FeatureSchema.from_list(card["features"])
    session = OnnxSession(
        (version / "model.onnx").read_bytes(), schema, array_input=False, classes=[0, 1, 2]
    )
    wrong = next(i for i, n in enumerate(schema.names) if n == ODD_NAME["wine"])
    feed = session.feed_columns([[1.0]] * len(schema))
    feed[f"input_{wrong}"] = np.zeros((1, 2), dtype=np.float32)  # a shape it refuses
    with pytest.raises(session.errors) as raised:
        session.run(feed)
    reason = session.reason(raised.value)
    assert ODD_NAME["wine"] in reason and "input_" not in reason
    assert not reason.startswith("[ONNXRuntimeError]")
