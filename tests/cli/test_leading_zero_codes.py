"""Digit-only category codes with a leading zero (zip codes) stay text in every CSV reader.

A model trained on ``02134`` takes the string ``"02134"``: ``ml-api drift`` on its own training
file finds no drift, ``ml-api predict`` writes the column as text in CSV and Parquet (Arrow and
pandas readers) and scores its own Parquet again, and ``ml-api import --data`` reads the column
as the text its encoder was fitted on. Each runs the real command on real files.
"""

from __future__ import annotations

import json
import lzma
import os
import subprocess
import sys
from pathlib import Path

import joblib
import pandas as pd
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from ml_api.core.model.schema import Feature, FeatureKind
from ml_api.drift_report import _read_one
from ml_api.importing.sample_data import _read_csv
from ml_api.scoring.cells import NA_CELLS

ZIPS = ("02134", "02139", "10001", "94105")


def cli(model_root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ml_api.cli", *args],
        env={**os.environ, "ML_API_MODEL_ROOT": str(model_root)},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@pytest.fixture(scope="module")
def houses(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A houses.csv with zip codes and a model 'houses' trained on it: (csv, model root)."""
    folder = tmp_path_factory.mktemp("zips")
    sqft = [500 + (i * 37) % 2500 for i in range(120)]
    rows = [(ZIPS[i % 4], s, 100 * s + 1000 * (i % 4) + (i * 7) % 50) for i, s in enumerate(sqft)]
    csv = folder / "houses.csv"
    csv.write_text("zip,sqft,price\n" + "".join(f"{z},{s},{p}\n" for z, s, p in rows))
    root = folder / "models"
    proc = cli(root, "train", "--data", str(csv), "--target", "price", "--name", "houses")
    assert proc.returncode == 0, proc.stderr
    return csv, root


def zip_psi(root: Path, data: Path, tmp_path: Path) -> float:
    report = tmp_path / f"{data.name}.json"
    proc = cli(root, "drift", "--input", str(data), "--name", "houses", "--json", str(report))
    assert proc.returncode == 0, proc.stderr
    features = json.loads(report.read_text())["features"]
    (zip_drift,) = [f for f in features if f["feature"] == "zip"]
    return float(zip_drift["score"])


def test_drift_on_the_training_file_is_zero(houses: tuple[Path, Path], tmp_path: Path) -> None:
    csv, root = houses
    assert zip_psi(root, csv, tmp_path) == 0.0


@pytest.mark.parametrize("suffix", [".csv", ".csv.xz"])  # Arrow's reader; pandas' reader
def test_predict_parquet_keeps_codes_as_text_and_scores_again(
    houses: tuple[Path, Path], tmp_path: Path, suffix: str
) -> None:
    csv, root = houses
    data = tmp_path / f"houses{suffix}"
    raw = csv.read_bytes()
    data.write_bytes(lzma.compress(raw) if suffix.endswith(".xz") else raw)
    out = tmp_path / "houses.parquet"
    proc = cli(root, "predict", "--input", str(data), "--output", str(out), "--name", "houses")
    assert proc.returncode == 0, proc.stderr
    table = pq.read_table(out)
    assert str(table.schema.field("zip").type) in {"string", "large_string"}
    assert table.column("zip").to_pylist()[:4] == list(ZIPS)
    assert zip_psi(root, out, tmp_path) == 0.0
    again = tmp_path / "again.csv"
    proc = cli(root, "predict", "--input", str(out), "--output", str(again), "--name", "houses")
    assert proc.returncode == 0, proc.stderr
    rescored = pd.read_csv(again, dtype={"zip": str})
    assert rescored["zip"].tolist()[:4] == list(ZIPS)
    assert rescored["prediction"].tolist() == pytest.approx(table.column("prediction").to_pylist())


def test_predict_csv_keeps_the_leading_zero(houses: tuple[Path, Path], tmp_path: Path) -> None:
    csv, root = houses
    out = tmp_path / "houses-out.csv"
    proc = cli(root, "predict", "--input", str(csv), "--output", str(out), "--name", "houses")
    assert proc.returncode == 0, proc.stderr
    lines = out.read_text().splitlines()
    assert [line.split(",")[0] for line in lines[1:5]] == list(ZIPS)


def test_import_reads_the_encoders_string_column_as_text(
    houses: tuple[Path, Path], tmp_path: Path
) -> None:
    csv, _ = houses
    frame = pd.read_csv(csv, dtype={"zip": str})
    encode = ColumnTransformer([("oh", OneHotEncoder(), ["zip"])], remainder="passthrough")
    model = Pipeline([("pre", encode), ("fit", Ridge())])
    model.fit(frame[["zip", "sqft"]], frame["price"])
    path = tmp_path / "houses_model.joblib"
    joblib.dump(model, path)
    root = tmp_path / "models"
    args = ["import", str(path), "--data", str(csv), "--target", "price", "--name", "houses-imp"]
    proc = cli(root, *args)
    assert proc.returncode == 0, proc.stderr
    drift = tmp_path / "imp.json"
    proc = cli(root, "drift", "--input", str(csv), "--name", "houses-imp", "--json", str(drift))
    assert proc.returncode == 0, proc.stderr
    features = json.loads(drift.read_text())["features"]
    (zip_drift,) = [f for f in features if f["feature"] == "zip"]
    assert zip_drift["score"] == 0.0
    observed = {b["bin"]: b["observed"] for b in zip_drift["bins"]}
    assert all(observed[code] > 0 for code in ZIPS), observed


DIGIT_CODES = st.lists(
    st.from_regex(r"0[0-9]{1,6}", fullmatch=True), min_size=1, max_size=8, unique=True
)


@settings(max_examples=40, deadline=None)
@given(codes=DIGIT_CODES)
def test_every_csv_reader_keeps_digit_codes_with_leading_zeros(
    codes: list[str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    path = tmp_path_factory.mktemp("codes") / "codes.csv"
    path.write_text("code,x\n" + "".join(f"{c},{i}\n" for i, c in enumerate(codes)))
    feature = Feature("code", FeatureKind.CATEGORICAL, "object", False, tuple(sorted(codes)))
    assert _read_one(path, None, "m", [feature])["code"].tolist() == codes
    assert _read_csv(path, NA_CELLS, lambda header: [feature])["code"].tolist() == codes
