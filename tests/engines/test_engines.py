"""One file scored by ``ml-api predict``, by Spark and by Dask: the same bytes, the same refusals.

``--engine spark`` and ``--engine dask`` write a directory of part files; put end to end (one
header) they are ``ml-api predict``'s CSV byte for byte, and a Parquet output holds the same
values. A file with refused rows fails with ``ml-api predict``'s message (rows numbered in the
file, across partitions), or with ``--refused`` writes the other rows and puts the refused ones,
numbered and with their problems, in the side output.
"""

from __future__ import annotations

import json

import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from ml_api.engines import dask as dask_engine
from tests.engines.conftest import csv_lines, predict

ENGINES = [
    pytest.param("dask", id="dask"),
    pytest.param("spark", id="spark", marks=pytest.mark.spark),
]

REFUSED = [
    (3, [("island", "unknown category 'Atlantis'; allowed: 'Biscoe', 'Dream', 'Torgersen'")]),
    (60001, [("bill_length_mm", "expected a number, got a string '5O'"),
             ("sex", "unknown category 'robot'; allowed: 'female', 'male'")]),
    (99999, [("body_mass_g", "expected a finite number")]),
]  # fmt: skip


@pytest.fixture
def engine(request, monkeypatch):
    """The engine's name; Spark's session started (once), Dask's CSV read in several blocks."""
    name = request.param
    if name == "spark":
        request.getfixturevalue("spark")
    monkeypatch.setattr(dask_engine, "BLOCK_BYTES", 1 << 20)  # several partitions, numbered
    return name


@pytest.mark.parametrize("engine", ENGINES, indirect=True)
def test_csv_scored_by_an_engine_is_ml_api_predicts_csv_byte_for_byte(
    engine, big_csv, big_cli_csv, model_root, tmp_path
):
    out = tmp_path / "scored.csv"
    result = predict(model_root, "--engine", engine, "--input", big_csv, "--output", out)
    assert result.exit_code == 0, result.output
    assert f"scored 100000 rows with penguins version 1 on {engine}" in result.output
    assert out.is_dir() and len(list(out.glob("part-*.csv"))) > 1  # several partitions
    assert csv_lines(out) == big_cli_csv.read_text().splitlines()


@pytest.mark.parametrize("engine", ENGINES, indirect=True)
def test_parquet_scored_by_an_engine_holds_ml_api_predicts_values(
    engine, big_csv, model_root, tmp_path
):
    source = tmp_path / "in.parquet"
    assert predict(model_root, "--input", big_csv, "--output", tmp_path / "typed.parquet",
                   "--quiet").exit_code == 0  # fmt: skip
    pq.write_table(pq.read_table(tmp_path / "typed.parquet").drop_columns(
        ["prediction", "probability_Adelie", "probability_Chinstrap", "probability_Gentoo"]
    ), source)  # fmt: skip
    reference = tmp_path / "cli.parquet"
    assert predict(model_root, "--input", source, "--output", reference).exit_code == 0
    out = tmp_path / "scored.parquet"
    result = predict(model_root, "--engine", engine, "--input", source, "--output", out)
    assert result.exit_code == 0, result.output
    expected = pq.read_table(reference)
    got = ds.dataset(out, format="parquet").to_table().cast(expected.schema)
    assert got.num_rows == 100_000
    for name in ("prediction", "probability_Adelie", "probability_Chinstrap", "probability_Gentoo"):
        assert got.column(name).equals(expected.column(name)), name  # bit for bit
    assert got.drop_columns([]).equals(expected.replace_schema_metadata(None).cast(got.schema))


@pytest.mark.parametrize("engine", ENGINES, indirect=True)
def test_refused_rows_fail_the_run_as_ml_api_predict_words_them(
    engine, bad_csv, model_root, tmp_path
):
    """Partitions run in parallel: the one that fails first is reported, rows numbered in the
    file, every line one that ``ml-api predict`` words for that row."""
    local = predict(model_root, "--input", bad_csv, "--output", tmp_path / "cli.csv")
    assert local.exit_code == 1
    assert local.output.splitlines()[1:] == [f"  row 3, column {REFUSED[0][1][0][0]}: "
                                             f"{REFUSED[0][1][0][1]}"]  # fmt: skip
    out = tmp_path / "scored.csv"
    result = predict(model_root, "--engine", engine, "--input", bad_csv, "--output", out)
    assert result.exit_code == 1
    head, *lines = result.output.splitlines()
    n = len(lines)  # one partition or both may have failed first
    assert head == local.output.splitlines()[0].replace("1 problem", f"{n} problem{'s' * (n != 1)}")
    every = {f"  row {row}, column {f}: {p}" for row, problems in REFUSED for f, p in problems}
    assert lines and set(lines) <= every
    assert not out.exists()  # nothing is written unless every row scores


@pytest.mark.parametrize("engine", ENGINES, indirect=True)
def test_refused_rows_go_to_the_side_output_with_their_row_and_problems(
    engine, bad_csv, big_cli_csv, model_root, tmp_path
):
    out, side = tmp_path / "scored.csv", tmp_path / "refused.parquet"
    result = predict(model_root, "--engine", engine, "--input", bad_csv, "--output", out,
                     "--refused", side)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert f"; 3 refused rows in {side}" in result.output
    refused = ds.dataset(side, format="parquet").to_table().sort_by("row").to_pylist()
    assert [(r["row"], [(p["field"], p["problem"]) for p in json.loads(r["problems"])])
            for r in refused] == REFUSED  # fmt: skip
    assert [r["id"] for r in refused] == ["3", "60001", "99999"]  # the input's columns kept
    expected = big_cli_csv.read_text().splitlines()
    kept = [line for i, line in enumerate(expected) if i not in (3, 60001, 99999)]
    assert csv_lines(out) == kept  # every other row, as ml-api predict scores it
