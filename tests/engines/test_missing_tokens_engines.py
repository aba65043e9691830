"""Spark and Dask read a category that is a missing-value token as ``ml-api predict`` does.

The region model (``NA``: North America, a few truly missing cells) and a text model (``NA``,
``None`` and an empty review are text): each engine's part files, end to end, are
``ml-api predict``'s CSV byte for byte, and the Parquet output keeps ``NA`` as text.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.dataset as ds
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline

import ml_api
from ml_api.engines import dask as dask_engine
from tests.engines.conftest import csv_lines, predict
from tests.scoring.test_missing_tokens import region_frame, region_pipeline

ENGINES = [
    pytest.param("dask", id="dask"),
    pytest.param("spark", id="spark", marks=pytest.mark.spark),
]


@pytest.fixture
def engine(request, monkeypatch):
    name = request.param
    if name == "spark":
        request.getfixturevalue("spark")
    monkeypatch.setattr(dask_engine, "BLOCK_BYTES", 1 << 12)  # several partitions
    return name


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    where = tmp_path_factory.mktemp("tokens-engines")
    root = where / "models"
    frame = region_frame()
    model = region_pipeline().fit(frame[["region", "qty"]], frame["revenue"])
    ml_api.save_model(model, frame, name="region", target="revenue", model_root=root)
    texts = ["great", "bad", "NA", "None", "", "works well", "broken", "fine"] * 5
    reviews = make_pipeline(TfidfVectorizer(), Ridge()).fit(texts, np.arange(40) % 7)
    ml_api.save_model(reviews, pd.DataFrame({"review": texts}), name="reviews", model_root=root)
    region_csv = where / "region.csv"
    rows = ["NA,5", ",5", "EU,5", "AS,7", '"NA",2', '"",1'] * 200
    region_csv.write_text("region,qty\n" + "\n".join(rows) + "\n")
    reviews_csv = where / "reviews.csv"
    reviews_csv.write_text(
        "review\n" + "\n".join(["NA", "None", '""', "null", "great"] * 200) + "\n"
    )
    return {"root": root, "region": region_csv, "reviews": reviews_csv}


@pytest.mark.parametrize("name", ["region", "reviews"])
@pytest.mark.parametrize("engine", ENGINES, indirect=True)
def test_an_engine_reads_token_categories_as_ml_api_predict(engine, models, tmp_path, name):
    reference = tmp_path / "cli.csv"
    args = ("--name", name, "--input", models[name])
    result = predict(models["root"], *args, "--output", reference, "--quiet")
    assert result.exit_code == 0, result.output
    out = tmp_path / "scored.csv"
    result = predict(models["root"], *args, "--output", out, "--engine", engine)
    assert result.exit_code == 0, result.output
    assert csv_lines(out) == reference.read_text().splitlines()
    if name == "region":
        first = pd.read_csv(reference, keep_default_na=False)["prediction"].tolist()[:2]
        assert first[0] > 1000 > first[1]  # North America, then the imputed empty cell
        parquet = tmp_path / "scored.parquet"
        result = predict(models["root"], *args, "--output", parquet, "--engine", engine)
        assert result.exit_code == 0, result.output
        table = ds.dataset(parquet, format="parquet").to_table()
        assert "NA" in table.column("region").to_pylist()
