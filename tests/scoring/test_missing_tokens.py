"""A missing-value token never decides what a cell means where it is a value: one rule for all.

A model fitted on ``region`` in ``{"NA", "EU", "AS"}`` (``NA``: North America) with a few truly
missing cells, saved by ``ml_api.save_model`` from a DataFrame: the API scores ``"NA"`` as North
America, and so must ``ml-api predict`` (Arrow and pandas readers, CSV and Parquet output),
``ml-api import --data`` (its served check and metrics), and ``ml-api drift`` (the model's own
data shows no drift). A text column's ``NA``, ``None`` and ``""`` (quoted or not) are text, as
the API reads them. Then a property: category values drawn from pandas' default missing tokens,
``ml-api predict`` on a CSV answers what a live server answers for the same rows.
"""

from __future__ import annotations

import csv
import io
import json
import lzma

import joblib
import numpy as np
import pandas as pd
import pytest
import requests
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.compose import ColumnTransformer
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

import ml_api
from ml_api.cli import main
from ml_api.scoring.cells import NA_CELLS
from tests.live.server import LiveServer


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def region_frame(n=300):
    rng = np.random.default_rng(0)
    region = rng.choice(["NA", "EU", "AS"], n).astype(object)
    qty = rng.integers(1, 10, n)
    base = np.select([region == "NA", region == "EU"], [1000, 500], 0)
    revenue = qty * 10 + base + rng.normal(0, 1, n)
    region[:5] = None  # truly missing: an empty cell in the CSV
    return pd.DataFrame({"region": region, "qty": qty, "revenue": revenue})


def region_pipeline():
    category = make_pipeline(
        SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")
    )
    columns = ColumnTransformer([("c", category, ["region"])], remainder="passthrough")
    return make_pipeline(columns, LinearRegression())


@pytest.fixture(scope="module")
def region(tmp_path_factory):
    """The user's model, saved from the DataFrame; its data as a CSV; its joblib file."""
    where = tmp_path_factory.mktemp("region")
    frame = region_frame()
    model = region_pipeline().fit(frame[["region", "qty"]], frame["revenue"])
    root = where / "models"
    ml_api.save_model(model, frame, name="region", target="revenue", model_root=root)
    frame.to_csv(where / "region.csv", index=False)
    joblib.dump(model, where / "region.joblib")
    return {"root": root, "dir": where, "model": model, "frame": frame}


@pytest.fixture(scope="module")
def live(region):
    with LiveServer(region["root"], env={"ML_API_MODEL_NAME": "region"}) as server:
        yield server


def api_predictions(server, instances, name=None):
    """The live server's answers for JSON instances (``None``: null)."""
    path = "/predict" if name is None else f"/models/{name}/predict"
    r = requests.post(server.url + path, json={"instances": instances}, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()["prediction"]


def scored(path):
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def test_the_card_lists_na_as_a_category_and_records_the_tokens(region):
    card = json.loads((region["root"] / "region" / "1" / "metadata.json").read_text())
    (feature,) = [f for f in card["features"] if f["name"] == "region"]
    assert "NA" in feature["categories"]
    assert card["missing_values"]["tokens"] == sorted(NA_CELLS)


@pytest.mark.parametrize("name", ["score.csv", "score.csv.xz", "score.parquet.csv"])
@pytest.mark.parametrize("out_name", ["out.csv", "out.parquet"])
def test_predict_reads_na_as_north_america_as_the_api_does(region, live, tmp_path, name, out_name):
    """Arrow (``.csv``), pandas (``.csv.xz``) and a CSV written as Parquet: NA is a category."""
    text = "region,qty\nNA,5\n,5\nEU,5\nAS,7\n"
    path = tmp_path / name
    path.write_bytes(lzma.compress(text.encode()) if name.endswith(".xz") else text.encode())
    out = tmp_path / out_name
    r = run("predict", "--input", path, "--output", out, "--name", "region",
            "--model-root", region["root"])  # fmt: skip
    assert r.exit_code == 0, r.output
    expected = api_predictions(
        live,
        [{"region": "NA", "qty": 5}, {"region": None, "qty": 5},
         {"region": "EU", "qty": 5}, {"region": "AS", "qty": 7}],
    )  # fmt: skip
    got = scored(out)
    assert [float(v) for v in got["prediction"]] == pytest.approx(expected, rel=1e-9)
    assert float(got["prediction"][0]) > 1000  # North America, not the imputed empty row
    if out_name == "out.parquet":  # the region column keeps NA as text, the empty cell as null
        assert got["region"].tolist()[0] == "NA" and pd.isna(got["region"].tolist()[1])


def test_import_reads_na_as_the_encoder_category_and_records_its_tokens(region):
    root = region["dir"] / "imported"
    r = run("import", region["dir"] / "region.joblib", "--data", region["dir"] / "region.csv",
            "--target", "revenue", "--name", "region-cli", "--model-root", root)  # fmt: skip
    assert r.exit_code == 0, r.output
    card = json.loads((root / "region-cli" / "1" / "metadata.json").read_text())
    assert card["missing_values"] == {"tokens": sorted(NA_CELLS), "cells": {"region": {"": 5}}}
    # said as training says it: the cells read as missing, per column, and the option
    assert "warning: region: 5 cells read as missing ('': 5), not as a category" in r.output
    assert "import again with --na-values ''" in r.output
    saved = json.loads((region["root"] / "region" / "1" / "metadata.json").read_text())
    assert card["metrics"] == pytest.approx(saved["metrics"], rel=1e-12)  # NA read as NA


def test_import_na_values_option_is_recorded_and_read_by_predict(region, tmp_path):
    root = tmp_path / "models"
    data = tmp_path / "region.csv"
    frame = region["frame"].copy()
    frame["region"] = frame["region"].fillna("?")  # this file says missing with "?"
    frame.to_csv(data, index=False)
    r = run("import", region["dir"] / "region.joblib", "--data", data, "--target", "revenue",
            "--name", "q", "--na-values", "?", "--model-root", root)  # fmt: skip
    assert r.exit_code == 0, r.output
    card = json.loads((root / "q" / "1" / "metadata.json").read_text())
    assert card["missing_values"] == {"tokens": ["?"], "cells": {"region": {"?": 5}}}
    score = tmp_path / "score.csv"
    score.write_text("region,qty\n?,5\nNA,5\n")
    r = run("predict", "--input", score, "--output", tmp_path / "out.csv", "--name", "q",
            "--model-root", root)  # fmt: skip
    assert r.exit_code == 0, r.output
    got = scored(tmp_path / "out.csv")["prediction"].astype(float).tolist()
    expected = region["model"].predict(pd.DataFrame({"region": [None, "NA"], "qty": [5, 5]}))
    assert got == pytest.approx(expected.tolist(), rel=1e-9)


def test_drift_on_the_models_own_data_is_none(region):
    r = run("drift", "--input", region["dir"] / "region.csv", "--name", "region",
            "--model-root", region["root"], "--json", "-")  # fmt: skip
    assert r.exit_code == 0, r.output
    report, _ = json.JSONDecoder().raw_decode(r.output[r.output.index("{") :])
    scores = {f["feature"]: f["score"] for f in report["features"]}
    assert scores["region"] == pytest.approx(0.0, abs=1e-9)


# ---- a text column: every cell is text, an empty review included ------------------------------


@pytest.fixture(scope="module")
def reviews(tmp_path_factory):
    where = tmp_path_factory.mktemp("reviews")
    texts = ["great product", "bad", "NA", "None", "", "works well", "broken", "fine"] * 5
    y = np.arange(len(texts), dtype=float) % 7
    model = make_pipeline(TfidfVectorizer(), Ridge()).fit(texts, y)
    root = where / "models"
    ml_api.save_model(model, pd.DataFrame({"review": texts}), name="reviews", model_root=root)
    return {"root": root, "model": model}


@pytest.mark.parametrize("suffix", [".csv", ".csv.xz"])
def test_a_text_columns_na_none_and_empty_cells_are_text(reviews, tmp_path, suffix):
    text = 'review\nNA\nNone\n""\nnull\ngreat product\n'
    path = tmp_path / f"in{suffix}"
    path.write_bytes(lzma.compress(text.encode()) if suffix == ".csv.xz" else text.encode())
    r = run("predict", "--input", path, "--output", tmp_path / "out.csv", "--name", "reviews",
            "--model-root", reviews["root"])  # fmt: skip
    assert r.exit_code == 0, r.output
    got = scored(tmp_path / "out.csv")["prediction"].astype(float).tolist()
    expected = reviews["model"].predict(["NA", "None", "", "null", "great product"])
    assert got == pytest.approx(expected.tolist(), rel=1e-9)


def test_train_reads_a_text_columns_na_as_text(tmp_path):
    data = tmp_path / "tickets.csv"
    rows = [("NA", "no"), ("printer broken", "yes"), ("", "no"), ("screen broken", "yes")] * 15
    pd.DataFrame(rows, columns=["ticket", "urgent"]).to_csv(data, index=False)
    root = tmp_path / "models"
    r = run("train", "--data", data, "--target", "urgent", "--text", "ticket",
            "--estimator", "linear", "--model-root", root)  # fmt: skip
    assert r.exit_code == 0, r.output
    card = json.loads((root / "tickets" / "1" / "metadata.json").read_text())
    assert "ticket" not in card["missing_values"]["cells"]  # no cell of a text column missing


# ---- the rest of the kind: categories drawn from pandas' default missing tokens --------------

TOKENS = sorted(NA_CELLS - {""})
"""Every default token but the empty cell, which stays the one way to write a missing cell."""


@pytest.fixture(scope="module")
def tokens_model(tmp_path_factory):
    """A model whose categories are every default missing token (``kind``, nullable) and some of
    them plus the empty text (``code``: there an empty cell is the category ``""``)."""
    where = tmp_path_factory.mktemp("tokens")
    rng = np.random.default_rng(1)
    n = 400
    kind = rng.choice([*TOKENS, "x"], n).astype(object)
    kind[:7] = None
    code = rng.choice(["", "NA", "None", "ok"], n).astype(object)
    qty = rng.integers(0, 20, n).astype(float)
    lookup = {v: i for i, v in enumerate([*TOKENS, "x"])}
    y = [lookup.get(k, -5) * 3.0 + len(c) * 11 + q for k, c, q in zip(kind, code, qty, strict=True)]
    frame = pd.DataFrame({"kind": kind, "code": code, "qty": qty, "y": y})
    category = make_pipeline(
        SimpleImputer(strategy="constant", fill_value="?"), OneHotEncoder(handle_unknown="ignore")
    )
    columns = ColumnTransformer(
        [("k", category, ["kind"]), ("c", OneHotEncoder(), ["code"])], remainder="passthrough"
    )
    model = make_pipeline(columns, LinearRegression()).fit(frame[["kind", "code", "qty"]], y)
    root = where / "models"
    ml_api.save_model(model, frame, name="tokens", target="y", model_root=root)
    with LiveServer(root, env={"ML_API_MODEL_NAME": "tokens"}) as server:
        yield {"root": root, "server": server}


row = st.fixed_dictionaries(
    {
        "kind": st.one_of(st.none(), st.sampled_from([*TOKENS, "x"])),
        "code": st.sampled_from(["", "NA", "None", "ok"]),
        "qty": st.integers(0, 19),
    }
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=st.lists(row, min_size=1, max_size=8), quote=st.booleans(), pandas=st.booleans())
def test_cli_predict_answers_what_the_api_answers(tokens_model, tmp_path_factory, rows, quote,
                                                  pandas):  # fmt: skip
    where = tmp_path_factory.mktemp("p")
    buffer = io.StringIO()
    quoting = csv.QUOTE_ALL if quote else csv.QUOTE_MINIMAL
    writer = csv.writer(buffer, lineterminator="\n", quoting=quoting)
    writer.writerow(["kind", "code", "qty"])
    for r in rows:  # a missing kind is an empty cell (quoted or not)
        writer.writerow(["" if r["kind"] is None else r["kind"], r["code"], r["qty"]])
    path = where / ("in.csv.xz" if pandas else "in.csv")
    data = buffer.getvalue().encode()
    path.write_bytes(lzma.compress(data) if pandas else data)
    out = where / "out.csv"
    r = run("predict", "--input", path, "--output", out, "--name", "tokens",
            "--model-root", tokens_model["root"])  # fmt: skip
    assert r.exit_code == 0, r.output
    expected = api_predictions(tokens_model["server"], rows)
    got = scored(out)["prediction"].astype(float).tolist()
    assert got == pytest.approx(expected, rel=1e-9, abs=1e-9)


# ---- --na-values on predict and drift: this file's tokens instead of the card's ---------------


def question_marks(region, path):
    frame = region["frame"].copy()
    frame["region"] = frame["region"].fillna("?")  # this file writes a missing cell as "?"
    frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("suffix", [".csv", ".csv.xz"])
def test_predict_na_values_reads_this_files_tokens(region, live, tmp_path, suffix):
    path = tmp_path / f"in{suffix}"
    text = "region,qty\n?,5\nNA,5\nNone,3\n"
    path.write_bytes(lzma.compress(text.encode()) if suffix == ".csv.xz" else text.encode())
    r = run("predict", "--input", path, "--output", tmp_path / "out.csv", "--name", "region",
            "--na-values", "?", "--na-values", "None", "--model-root", region["root"])  # fmt: skip
    assert r.exit_code == 0, r.output
    got = scored(tmp_path / "out.csv")["prediction"].astype(float).tolist()
    expected = api_predictions(
        live, [{"region": None, "qty": 5}, {"region": "NA", "qty": 5}, {"region": None, "qty": 3}]
    )
    assert got == pytest.approx(expected, rel=1e-9)


def test_predict_na_values_with_an_engine_is_refused_not_ignored(region, tmp_path):
    path = tmp_path / "in.csv"
    path.write_text("region,qty\n?,5\n")
    r = run("predict", "--input", path, "--output", tmp_path / "out", "--name", "region",
            "--engine", "dask", "--na-values", "?", "--model-root", region["root"])  # fmt: skip
    assert r.exit_code == 2
    assert "--na-values is read by the local engine only" in r.output
    assert not (tmp_path / "out").exists()


def test_drift_na_values_reads_this_files_tokens(region, tmp_path):
    path = question_marks(region, tmp_path / "q.csv")
    args = ["drift", "--input", path, "--name", "region", "--model-root", region["root"]]
    r = run(*args, "--na-values", "?", "--json", "-")
    assert r.exit_code == 0, r.output
    report, _ = json.JSONDecoder().raw_decode(r.output[r.output.index("{") :])
    assert {f["feature"]: f["score"] for f in report["features"]}["region"] == pytest.approx(0.0)
    r = run(*args, "--json", "-")  # without it, "?" is an unknown category: drift shows it
    report, _ = json.JSONDecoder().raw_decode(r.output[r.output.index("{") :])
    assert {f["feature"]: f["score"] for f in report["features"]}["region"] > 0
