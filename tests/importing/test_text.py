"""Free text is a feature kind, and a model's output must count one row per input row.

The textbook text model, ``Pipeline([("tfidf", TfidfVectorizer()), ("clf", LogisticRegression())])``
fitted on ``df["review"]``, once imported as a table: ``predict`` on a DataFrame iterates its
column names, so every request answered 200 with one prediction whatever the number of
instances. Now the pipeline's first step being a text vectorizer makes its column a ``text``
feature fed as 1-D (``"input": "column"``), and the same model inside a ``ColumnTransformer`` is a
``text`` feature too (not categorical over the training texts: no unknown-category 422). A
vectorizer that would still be given a table is refused at import with the likely cause and
the fix, and a version that answers another number of rows than instances is refused when
loaded, and never answers 200 (a guard in the service: V1, V2, batch scoring, both frameworks).

The reviews are generated here (no downloads): sentences from two small word lists.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest
import requests
from click.testing import CliRunner
from django.test import Client as DjangoClient
from sklearn.compose import ColumnTransformer
from sklearn.feature_extraction.text import CountVectorizer, HashingVectorizer, TfidfVectorizer
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

import ml_api
import ml_api.settings
from ml_api.api.django_app import get_wsgi_application
from ml_api.api.flask_app import create_app
from ml_api.cli import main
from ml_api.composition import build_scoring
from ml_api.core.errors import ModelOutputError
from ml_api.core.model.artifact import ArtifactError, load_artifact, save_artifact
from ml_api.core.model.card import NewCard
from ml_api.core.model.schema import TEXT_MAX_LENGTH, FeatureSchema
from ml_api.core.runtimes.predictor import PredictionResult
from ml_api.core.service import ModelCall
from ml_api.importing import ImportRefused
from tests.conftest import DJANGO_SECRET_KEY
from tests.importing.test_refusals import refused, run_import
from tests.live.server import LiveServer

POSITIVE = ["great", "lovely", "excellent", "superb", "enjoyable", "wonderful", "moving"]
NEGATIVE = ["awful", "boring", "terrible", "dull", "poor", "bad", "tedious"]
FILLER = ["the", "movie", "plot", "acting", "was", "and", "a", "film", "story", "cast", "ending"]

NEW_REVIEWS = [
    "an excellent film with a wonderful cast",
    "tedious and boring from start to end",
    "the ending was moving",
    "Nothing like anything seen in training: zebra quantum 🎬",
    "",
]
"""Sentences the model never saw (one with words outside its vocabulary, one empty)."""


def reviews(n: int = 240, seed: int = 3) -> pd.DataFrame:
    """``n`` generated reviews and a 0/1 ``liked`` label."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        liked = i % 2
        words = rng.sample(POSITIVE if liked else NEGATIVE, 2) + rng.sample(FILLER, 5)
        rng.shuffle(words)
        rows.append({"review": " ".join(words), "liked": liked})
    return pd.DataFrame(rows)


def one_dimensional(frame: pd.DataFrame, vectorizer: Any = None) -> Pipeline:
    """The textbook text model, fitted on the column itself (a Series)."""
    steps = [("tfidf", vectorizer or TfidfVectorizer()), ("clf", LogisticRegression())]
    return Pipeline(steps).fit(frame["review"], frame["liked"])


def in_column_transformer(frame: pd.DataFrame) -> Pipeline:
    """The same model with its vectorizer in a ColumnTransformer on ``review`` (plus a number)."""
    frame = frame.assign(length=frame.review.str.len().astype(float))
    ct = ColumnTransformer(
        [("text", TfidfVectorizer(), "review"), ("num", "passthrough", ["length"])]
    )
    return Pipeline([("ct", ct), ("clf", LogisticRegression())]).fit(
        frame[["review", "length"]], frame["liked"]
    )


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> tuple[pd.DataFrame, Path]:
    frame = reviews()
    path = tmp_path_factory.mktemp("reviews") / "reviews.csv"
    frame.to_csv(path, index=False)
    return frame, path


@pytest.fixture(scope="module")
def imported(tmp_path_factory, data) -> tuple[Path, Pipeline, Pipeline]:
    """Both forms imported with ``ml-api import`` (``reviews``: 1-D; ``tabular``: in a CT)."""
    frame, csv = data
    tmp = tmp_path_factory.mktemp("text")
    root = tmp / "models"
    plain = one_dimensional(frame)
    joblib.dump(plain, tmp / "plain.joblib")
    code, out, err = run_import(
        tmp / "plain.joblib", "--data", csv, "--target", "liked", "--name", "reviews",
        "--model-root", root,
    )  # fmt: skip
    assert code == 0, out + err
    assert "checked: the server's predictions on 240 data rows" in out
    tabular = in_column_transformer(frame)
    with_length = frame.assign(length=frame.review.str.len().astype(float))
    ml_api.save_model(tabular, with_length, name="tabular", target="liked", model_root=root)
    return root, plain, tabular


def _card(root: Path, name: str) -> dict[str, Any]:
    return json.loads((root / name / "1" / "metadata.json").read_text())


def test_a_vectorized_column_is_a_text_feature_in_the_card(imported):
    root, _, _ = imported
    card = _card(root, "reviews")
    assert card["input"] == "column"
    assert card["features"] == [
        {
            "name": "review",
            "kind": "text",
            "dtype": card["features"][0]["dtype"],
            "nullable": False,
            "max_length": TEXT_MAX_LENGTH,
        }
    ]
    assert "TfidfVectorizer" in card["provenance"]["text"]["review"]
    tabular = _card(root, "tabular")
    assert tabular["input"] == "frame"
    kinds = {f["name"]: f["kind"] for f in tabular["features"]}
    assert kinds == {"review": "text", "length": "numeric"}
    assert "categories" not in json.dumps(tabular["features"])
    assert "ColumnTransformer 'text'" in tabular["provenance"]["text"]["review"]


@pytest.mark.parametrize(
    "vectorizer", [CountVectorizer(), HashingVectorizer(n_features=256)], ids=type
)
def test_every_text_vectorizer_makes_a_text_feature(tmp_path, data, vectorizer):
    frame, _ = data
    result = ml_api.save_model(
        one_dimensional(frame, vectorizer), frame, name="v", target="liked", model_root=tmp_path
    )
    assert result.metadata["input"] == "column"
    assert result.metadata["features"][0]["kind"] == "text"


@pytest.fixture
def apps(imported, django_settings, service):
    root, _, _ = imported
    settings = django_settings.model_copy(update={"model_root": root, "model_name": "reviews"})
    scoring = build_scoring(settings)
    flask = create_app(settings, scoring).test_client()
    get_wsgi_application(settings, scoring)
    try:
        yield flask, DjangoClient()
    finally:
        get_wsgi_application(django_settings, service)


def _post(client: Any, path: str, body: Any) -> tuple[int, Any]:
    r = client.post(path, data=json.dumps(body), content_type="application/json")
    raw = r.get_data() if hasattr(r, "get_data") else r.content
    return r.status_code, json.loads(raw)


@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_new_sentences_get_one_answer_each_equal_to_the_models_own(imported, apps, n):
    _, plain, _ = imported
    texts = NEW_REVIEWS[:n]
    own = plain.predict_proba(pd.Series(texts))
    bodies = []
    for client in apps:
        status, body = _post(client, "/predict", {"instances": [{"review": t} for t in texts]})
        assert status == 200, body
        assert len(body["prediction"]) == n
        served = np.array([[p["0"], p["1"]] for p in body["probabilities"]])
        np.testing.assert_allclose(served, own, rtol=1e-9, atol=1e-12)
        bodies.append(body)
    assert bodies[0] == bodies[1]  # Flask and Django: the same answer


def test_text_values_are_checked_in_v1_and_v2(apps):
    long = "word " * (TEXT_MAX_LENGTH // 5 + 1)
    for client in apps:
        status, body = _post(client, "/predict", {"instances": [{"review": long}]})
        assert status == 422, body
        assert body["details"] == [
            {
                "instance": 0,
                "field": "review",
                "problem": f"text of {len(long)} characters; at most {TEXT_MAX_LENGTH} are "
                "accepted",
            }
        ]
        status, body = _post(client, "/predict", {"instances": [{"review": 5}]})
        assert status == 422 and "expected a string (free text), got a number" in body["error"]
        status, body = _post(client, "/predict", {"features": ["a brand new sentence"]})
        assert status == 200, body
        v2 = {
            "inputs": [
                {"name": "review", "datatype": "BYTES", "shape": [3], "data": NEW_REVIEWS[:3]}
            ]
        }
        status, body = _post(client, "/v2/models/reviews/infer", v2)
        assert status == 200, body
        assert body["outputs"][0]["shape"] == [3]
        v2["inputs"][0].update(datatype="FP64", data=[1.0, 2.0, 3.0])
        status, body = _post(client, "/v2/models/reviews/infer", v2)
        assert status == 400 and "this feature takes BYTES" in body["error"]


def test_openapi_and_card_page_describe_text(apps):
    flask, _ = apps
    doc = flask.get("/openapi.json")
    assert len(doc.get_data()) < 60_000
    assert json.dumps(
        {"type": "string", "maxLength": TEXT_MAX_LENGTH, "description": "free text, up to "
         f"{TEXT_MAX_LENGTH} characters"}
    ) in json.dumps(doc.get_json())  # fmt: skip
    page = flask.get("/model").get_data(as_text=True)
    assert f"any text up to {TEXT_MAX_LENGTH} characters" in page


def test_batch_scoring_a_text_column(imported, tmp_path):
    root, plain, tabular = imported
    frame = pd.DataFrame({"review": NEW_REVIEWS[:4]})
    frame["length"] = frame.review.str.len().astype(float)
    frame.to_csv(tmp_path / "in.csv", index=False)
    expected = {
        "reviews": plain.predict_proba(frame["review"])[:, 1],
        "tabular": tabular.predict_proba(frame)[:, 1],
    }
    for name, own in expected.items():
        out = tmp_path / f"{name}.csv"
        result = CliRunner().invoke(
            main,
            ["predict", "--input", str(tmp_path / "in.csv"), "--output", str(out),
             "--name", name, "--model-root", str(root)],
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        scored = pd.read_csv(out, keep_default_na=False)
        assert scored["review"].tolist() == NEW_REVIEWS[:4]
        np.testing.assert_allclose(scored["probability_1"], own, rtol=1e-9)


@pytest.mark.live
@pytest.mark.parametrize("framework", ["flask", "django"])
def test_text_model_behind_a_real_server(imported, framework):
    root, plain, _ = imported
    env = {"ML_API_SECRET_KEY": DJANGO_SECRET_KEY} if framework == "django" else {}
    with LiveServer(root, framework, workers=1, env=env, args=("--name", "reviews")) as server:
        body = {"instances": [{"review": t} for t in NEW_REVIEWS]}
        r = requests.post(server.url + "/predict", json=body, timeout=30)
        assert r.status_code == 200, r.text
        assert r.json()["prediction"] == plain.predict(pd.Series(NEW_REVIEWS)).tolist()


# ---- refusals: the row count ----------------------------------------------------------------


def test_a_text_model_fitted_on_a_one_column_target_is_refused_naming_the_pipeline(tmp_path, data):
    frame, csv = data
    target = frame[["liked"]].astype(float)  # a DataFrame of one column: predict gives (n, 1)
    steps = [("tfidf", TfidfVectorizer()), ("reg", LinearRegression())]
    model = Pipeline(steps).fit(frame["review"], target)
    path = tmp_path / "m.joblib"
    joblib.dump(model, path)
    message = refused(tmp_path / "models", path, "--data", csv, "--target", "liked")
    assert message.startswith(
        "a Pipeline ending in LinearRegression: predict gives a column of shape (240, 1), not "
        "one value per row: it was fitted on a 2-D target of one column"
    ), message
    assert "refit it on the 1-D column (y = df['target'], or y.ravel())" in message
    assert "Likely cause" not in message and "TfidfVectorizer was given a table" not in message


def test_a_vectorizer_given_a_table_is_refused_with_the_cause(tmp_path, data):
    """A cleaning step before the vectorizer hides it; given the data's table it answers once."""
    frame, csv = data
    steps = [("clean", FunctionTransformer()), ("tfidf", TfidfVectorizer())]
    model = Pipeline([*steps, ("clf", LogisticRegression())]).fit(frame["review"], frame["liked"])
    path = tmp_path / "m.joblib"
    joblib.dump(model, path)
    message = refused(tmp_path / "models", path, "--data", csv, "--target", "liked")
    assert "a Pipeline ending in LogisticRegression: predict gives 1 row for 240 input rows" in (
        message
    )
    assert "Likely cause: the TfidfVectorizer was given a table" in message
    assert "ColumnTransformer([('text', TfidfVectorizer(), 'review')])" in message
    with pytest.raises(ImportRefused, match="Likely cause"):
        ml_api.save_model(model, frame, name="m", target="liked", model_root=tmp_path)


def test_a_one_column_text_model_with_other_columns_is_refused_in_one_line(tmp_path, data):
    frame, csv = data
    path = tmp_path / "m.joblib"
    joblib.dump(one_dimensional(frame), path)
    message = refused(tmp_path / "models", path, "--data", csv)
    assert message == (
        "the model's first step is a TfidfVectorizer, which reads one column of text (the "
        "pipeline was fitted on a column such as df['review']), but the data has 2 columns (no "
        "--target named): review, liked; give data with the text column and name the target "
        "with --target"
    )


def _legacy_version(root: Path, frame: pd.DataFrame) -> None:
    """The 1-D text model saved as a table-input version, as the import once wrote it."""
    schema = FeatureSchema.infer(frame[["review"]])
    save_artifact(
        one_dimensional(frame),
        model_root=root,
        name="legacy",
        card=NewCard(schema=schema, task="classification", classes=[0, 1]),
    )


def test_a_version_answering_one_row_for_many_is_refused_when_loaded(
    tmp_path, data, django_settings
):
    frame, _ = data
    _legacy_version(tmp_path, frame)
    settings = django_settings.model_copy(update={"model_root": tmp_path, "model_name": "legacy"})
    # each call is checked: a lone instance is padded to two rows, so the first call tells
    with pytest.raises(ArtifactError, match=r"answered labels of shape \(1,\) for 2 instances"):
        build_scoring(settings, artifact=load_artifact(tmp_path, "legacy"))
    frame[["review"]].head(3).to_csv(tmp_path / "in.csv", index=False)
    result = CliRunner().invoke(
        main,
        ["predict", "--input", str(tmp_path / "in.csv"), "--output", str(tmp_path / "out.csv"),
         "--name", "legacy", "--model-root", str(tmp_path)],
    )  # fmt: skip
    assert result.exit_code != 0
    assert "answered labels of shape (1,) for 2 instances" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "out.csv").exists()


class _Counted:
    """A predictor answering ``answer`` rows for any call (a broken model's runtime)."""

    runtime = "scikit-learn"
    classes = (0, 1)

    def __init__(self, answer: int) -> None:
        self.answer = answer

    def predict(self, columns: Any) -> PredictionResult:
        n = self.answer
        return PredictionResult(
            labels=np.zeros(n, dtype=int), probabilities=np.full((n, 2), 0.5), classes=(0, 1)
        )


@pytest.mark.parametrize(("answer", "sizes"), [(1, [3]), (4, [3]), (3, [1, 1])])
def test_the_model_call_never_splits_a_count_that_differs(answer, sizes):
    call = ModelCall(_Counted(answer), ("m", "1", "scikit-learn"))  # type: ignore[arg-type]
    with pytest.raises(ModelOutputError, match=re.escape(f"for {sum(sizes)} instances")) as info:
        call([[0.0] * sum(sizes)], sizes)
    assert info.value.status == 500


def test_a_count_that_differs_at_request_time_is_a_500_never_a_200(
    tmp_path, data, django_settings, service
):
    """A model right on the warm-up's 3 rows but not on 5: each framework answers the same 500."""
    frame, _ = data
    frame = frame.assign(x=np.arange(len(frame), dtype=float))
    model = _DropsPastThree().fit(frame[["x"]], frame["liked"].astype(float))
    schema = FeatureSchema.infer(frame[["x"]])
    save_artifact(
        model,
        model_root=tmp_path,
        name="drops",
        card=NewCard(schema=schema, task="regression"),
    )
    settings = django_settings.model_copy(update={"model_root": tmp_path, "model_name": "drops"})
    scoring = build_scoring(settings, artifact=load_artifact(tmp_path, "drops"))
    flask = create_app(settings, scoring).test_client()
    get_wsgi_application(settings, scoring)
    try:
        answers = []
        for client in (flask, DjangoClient()):
            status, body = _post(client, "/predict", {"features": [[1.0]] * 3})
            assert status == 200 and len(body["prediction"]) == 3
            status, body = _post(client, "/predict", {"features": [[1.0]] * 5})
            assert status == 500, body
            assert "answered labels of shape (4,) for 5 instances" in body["error"]
            v2 = {"inputs": [{"name": "x", "datatype": "FP64", "shape": [5], "data": [1.0] * 5}]}
            status, v2_body = _post(client, "/v2/models/drops/infer", v2)
            assert status == 500 and "for 5 instances" in v2_body["error"]
            answers.append({k: v for k, v in body.items() if k != "request_id"})
        assert answers[0] == answers[1]
    finally:
        get_wsgi_application(django_settings, service)


class _DropsPastThree(Ridge):
    """A regressor that loses a row when given more than three (four after padding)."""

    def predict(self, X: Any) -> Any:
        out = super().predict(X)
        return out[:-1] if len(out) > 4 else out


# ---- ml-api train --text ---------------------------------------------------------------------


def test_train_text_makes_a_text_feature_that_serves_new_sentences(tmp_path, data):
    frame, _ = data
    frame = frame.assign(shown=np.arange(len(frame)) % 7)
    frame.loc[3, "review"] = None  # an empty cell trains as an empty text
    frame.to_csv(tmp_path / "reviews.csv", index=False)
    root = tmp_path / "models"
    args = ["train", "--data", str(tmp_path / "reviews.csv"), "--target", "liked",
            "--text", "review", "--name", "trained", "--model-root", str(root)]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    # every cell of a text column is text, as the API reads it (core/model/columns.missing_cells):
    # the empty cell is the empty text, so nothing is missing
    assert re.search(r"review\s+text\s+0\.0%\s+free text, up to 10000 characters", result.output)
    card = _card(root, "trained")
    assert card["training"]["missing_share"]["review"] == 0
    assert card["features"][0] == {
        "name": "review", "kind": "text", "dtype": "object", "nullable": False,
        "max_length": TEXT_MAX_LENGTH,
    }  # fmt: skip
    scoring = build_scoring(ml_api.settings.Settings(model_root=root, model_name="trained"))
    rows = [{"review": t, "shown": 2} for t in NEW_REVIEWS]
    assert len(scoring.predict_rows(rows)) == len(NEW_REVIEWS)
    good, bad = scoring.predict_rows(rows[:2]).labels.tolist()
    assert (good, bad) == (1, 0)

    hgb = CliRunner().invoke(main, [*args, "--estimator", "hist_gradient_boosting"])
    assert hgb.exit_code == 2  # a usage error, as the other option refusals
    assert "--text needs --estimator linear or random_forest" in hgb.output
