"""Files real users train and score on (issue 12): column types, empty files, degenerate data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from django.test import Client

from ml_api.cli import main
from ml_api.composition import build_scoring
from ml_api.settings import Settings
from ml_api.train import TrainingOptions, train
from tests.clients import django_call, flask_call

CODES = ["10115", "01067", "80331", "SW1A"]


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def members_csv(tmp_path_factory) -> Path:
    """Booleans written as True/False, postcodes that are digit-only codes (one with a leading
    zero) beside one that is not, so training sees text; 48 rows, 2 classes."""
    rows = []
    for i in range(48):
        code = CODES[i % 4]
        member = i % 3 != 0
        rows.append(
            {
                "postcode": code,
                "member": member,
                "spend": float(10 + (i * 7) % 50),
                "churn": "yes" if (not member) or code == "01067" else "no",
            }
        )
    path = tmp_path_factory.mktemp("members") / "members.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def members_root(members_csv, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("members-models")
    train(
        TrainingOptions(members_csv, "churn", estimator="random_forest"),
        model_root=root,
        name="members",
    )
    return root


def test_the_training_schema_has_a_boolean_and_a_text_code(members_root):
    meta = json.loads((members_root / "members" / "1" / "metadata.json").read_text())
    kinds = {f["name"]: (f["kind"], f.get("categories")) for f in meta["features"]}
    assert kinds["member"] == ("categorical", ["False", "True"])
    assert kinds["postcode"] == ("categorical", sorted(CODES))


@pytest.mark.parametrize("chunk_rows", [5000, 3])  # chunks of digit-only codes too
def test_the_training_file_scores_with_its_model(members_csv, members_root, tmp_path, chunk_rows):
    out = tmp_path / "scored.csv"
    r = run("predict", "--input", members_csv, "--output", out, "--name", "members",
            "--model-root", members_root, "--chunk-rows", chunk_rows)  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "scored 48 rows" in r.output
    scored = pd.read_csv(out, dtype={"postcode": str})
    assert list(scored["postcode"][:4]) == CODES  # the leading zero is kept
    assert set(scored["prediction"]) <= {"yes", "no"}
    accuracy = (scored["prediction"] == scored["churn"]).mean()
    assert accuracy > 0.9  # a random forest reproduces its own training data


@pytest.mark.parametrize("spelling", ["true", "TRUE", "True"])
def test_booleans_in_any_pandas_spelling_score(members_root, tmp_path, spelling):
    path = tmp_path / "one.csv"
    path.write_text(f"postcode,member,spend\n01067,{spelling},20.0\n")
    out = tmp_path / "out.csv"
    r = run("predict", "--input", path, "--output", out, "--name", "members",
            "--model-root", members_root)  # fmt: skip
    assert r.exit_code == 0, r.output
    assert pd.read_csv(out)["prediction"].tolist() == ["yes"]


def test_a_header_only_file_writes_a_header_only_output(members_root, tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("postcode,member,spend\n")
    out = tmp_path / "out.csv"
    r = run("predict", "--input", path, "--output", out, "--name", "members",
            "--model-root", members_root)  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "scored 0 rows" in r.output
    assert out.read_text().splitlines() == [
        "postcode,member,spend,prediction,probability_no,probability_yes"
    ]


# ---- over HTTP, the boolean feature takes JSON true/false (and V2 BOOL), like the CSV ---------


@pytest.fixture(scope="module")
def members_apps(members_root, django_settings, service, django_app):
    from ml_api.api.django_app import get_wsgi_application
    from ml_api.api.flask_app import create_app

    settings = Settings(model_root=members_root, model_name="members")
    svc = build_scoring(settings)
    get_wsgi_application(django_settings, svc)
    try:
        yield {
            "flask": lambda *a: flask_call(create_app(settings, svc).test_client(), *a),
            "django": lambda *a: django_call(Client(), *a),
        }
    finally:
        get_wsgi_application(django_settings, service)


@pytest.mark.parametrize("framework", ["flask", "django"])
@pytest.mark.parametrize(
    ("member", "status", "prediction"),
    [(True, 200, "yes"), ("True", 200, "yes"), (False, 200, "yes"), (1, 422, None),
     ("yes", 422, None)],
)  # fmt: skip
def test_a_boolean_feature_takes_json_booleans(members_apps, framework, member, status, prediction):
    body = json.dumps({"features": {"postcode": "01067", "member": member, "spend": 20.0}})
    r = members_apps[framework]("POST", "/predict", body.encode(), "application/json")
    assert r.status == status, r.body
    if prediction:
        assert r.json()["prediction"] == [prediction]
    else:
        assert r.json()["details"][0]["field"] == "member"


@pytest.mark.parametrize("framework", ["flask", "django"])
@pytest.mark.parametrize(
    ("datatype", "data"), [("BOOL", [True, False]), ("BYTES", ["True", "False"])]
)
def test_a_boolean_feature_takes_v2_bool(members_apps, framework, datatype, data):
    body = {
        "inputs": [
            {"name": "postcode", "datatype": "BYTES", "shape": [2], "data": ["10115", "10115"]},
            {"name": "member", "datatype": datatype, "shape": [2], "data": data},
            {"name": "spend", "datatype": "FP64", "shape": [2], "data": [20.0, 20.0]},
        ]
    }
    r = members_apps[framework](
        "POST", "/v2/models/members/infer", json.dumps(body).encode(), "application/json"
    )
    assert r.status == 200, r.body
    assert r.json()["outputs"][0]["data"] == ["no", "yes"]


def test_v2_metadata_advertises_bool(members_apps):
    r = members_apps["flask"]("GET", "/v2/models/members", b"", None)
    inputs = {i["name"]: i["datatype"] for i in r.json()["inputs"]}
    assert inputs == {"postcode": "BYTES", "member": "BOOL", "spend": "FP64"}


# ---- 5. degenerate training data: one line, nothing written ---------------------------------


def _write(tmp_path, frame) -> Path:
    path = tmp_path / "data.csv"
    frame.to_csv(path, index=False)
    return path


X30 = [i % 7 for i in range(30)]  # a feature, not an identifier (range(30) would be one)

DEGENERATE = {
    "one class": (
        pd.DataFrame({"x": X30, "y": ["a"] * 30}),
        "has a single class ('a')",
    ),
    "a class of one row": (
        pd.DataFrame({"x": X30, "y": ["a"] * 15 + ["b"] * 14 + ["c"]}),
        "class 'c' of 'y' has 1 row",
    ),
    "target entirely missing": (
        pd.DataFrame({"x": X30, "y": [None] * 30}),
        "target column 'y' has no values",
    ),
    "no usable feature": (
        pd.DataFrame({"x": [None] * 30, "y": ["a", "b"] * 15}),
        "no usable feature columns",
    ),
}


@pytest.mark.parametrize("estimator", ["linear", "random_forest", "hist_gradient_boosting"])
@pytest.mark.parametrize("name", sorted(DEGENERATE))
def test_degenerate_training_data_is_refused(tmp_path, name, estimator):
    frame, expected = DEGENERATE[name]
    data = _write(tmp_path, frame)
    root = tmp_path / "models"
    r = run("train", "--data", data, "--target", "y", "--name", "degenerate",
            "--estimator", estimator, "--model-root", root)  # fmt: skip
    assert r.exit_code == 2, r.output
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], r.output
    assert "Traceback" not in r.output
    assert not root.exists() or not any(root.rglob("*"))


# ---- 5. a model that loads but is malformed: one line naming the path, exit 1 -----------------


@pytest.fixture
def malformed_root(tmp_path, members_root) -> Path:
    """A copy of the members model whose card lists features in another order than the model."""
    import shutil

    root = tmp_path / "models"
    shutil.copytree(members_root, root)
    version = root / "members" / "1"
    meta_path = version / "metadata.json"
    meta = json.loads(meta_path.read_text())
    for feature in meta["features"]:
        if feature["name"] == "spend":  # the model needs a number here; the card now says text
            feature.update(kind="categorical", categories=["a"])
            feature.pop("minimum", None)
            feature.pop("maximum", None)
    meta_path.write_text(json.dumps(meta))  # the card is not hashed; the model file is intact
    return root


@pytest.mark.parametrize("command", ["info", "predict", "serve"])
def test_a_malformed_model_is_one_line(malformed_root, tmp_path, command, members_csv):
    args = ["--name", "members", "--model-root", malformed_root]
    if command == "predict":
        args += ["--input", members_csv, "--output", tmp_path / "o.csv"]
    if command == "serve":
        args += ["--port", "1"]
    r = subprocess.run(
        [sys.executable, "-m", "ml_api.cli", command, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "ML_API_SECRET_KEY": "x" * 60},
    )
    output = r.stdout + r.stderr
    assert r.returncode == 1, output
    assert "Traceback" not in output
    lines = [line for line in output.splitlines() if str(malformed_root / "members") in line]
    assert len(lines) == 1, output


# ---- found by fuzzing the CSV reader: files the CLI could not report in one line -------------


@pytest.mark.parametrize(
    ("content", "output", "expected"),
    [(b"", "out.csv", "the file is empty"), (b"\xef\xbb\xbf", "out.csv", "the file is empty"),
     (b"island\n", "missing-folder/out.csv", "cannot write")],
)  # fmt: skip
def test_files_the_cli_reports_in_one_line(model_root, tmp_path, content, output, expected):
    _reported_in_one_line(model_root, tmp_path, "in.csv", content, output, expected)


PARQUET_MAGIC = b"PAR1"
FUZZ_SEEDS = Path(__file__).resolve().parents[1] / "fuzz" / "corpus" / "parquet"


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"island,sex\nBiscoe,male\n",
        PARQUET_MAGIC + b"\0" * 40 + PARQUET_MAGIC,
        b"\x00" * 100,
        (FUZZ_SEEDS / "found-bad-pandas-metadata.parquet").read_bytes(),
    ],
    ids=["empty", "a csv", "magic without a footer", "zeros", "pandas metadata without numpy_type"],
)
def test_a_corrupt_parquet_input_is_reported_in_one_line(model_root, tmp_path, content):
    # found by the coverage-guided fuzzing of the batch readers: these were tracebacks
    _reported_in_one_line(model_root, tmp_path, "in.parquet", content, "out.csv", "cannot read")


def _reported_in_one_line(model_root, tmp_path, name, content, output, expected):
    path = tmp_path / name
    path.write_bytes(content)
    r = run("predict", "--input", path, "--output", tmp_path / output, "--model-root", model_root)
    assert r.exit_code == 1, r.output
    assert r.exception is None or isinstance(r.exception, SystemExit)
    errors = [line for line in r.output.splitlines() if line.startswith("ml-api: error:")]
    assert len(errors) == 1 and expected in errors[0]
