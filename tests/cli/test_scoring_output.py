"""Batch scoring's output: compression by name, the file's mode, Parquet types from CSV input."""

import bz2
import gzip
import os

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import ml_api.predict as scoring
from ml_api.cli import main
from ml_api.predict import score_file


def predict(*args):
    return CliRunner().invoke(main, ["predict", *[str(a) for a in args]])


@pytest.fixture
def penguins_csv(tmp_path, penguins_frame):
    src = tmp_path / "in.csv"
    penguins_frame.head(120).to_csv(src, index=False)
    return src


# ---- 1. output compression follows the output's name ----------------------------------------


@pytest.mark.parametrize(
    ("name", "decompress"),
    [("scored.csv.gz", gzip.decompress), ("scored.csv.bz2", bz2.decompress),
     ("scored.csv.zst", None)],
)  # fmt: skip
def test_compressed_output_reads_back_as_the_plain_output(
    model_root, tmp_path, penguins_csv, name, decompress
):
    plain, packed = tmp_path / "scored.csv", tmp_path / name
    for out in (plain, packed):
        r = predict("--input", penguins_csv, "--output", out, "--model-root", model_root)
        assert r.exit_code == 0, r.output
    data = packed.read_bytes()
    assert data != plain.read_bytes()  # really compressed, not plain text under the name
    if decompress is None:  # zstd: pandas needs the zstandard package; Arrow reads it back
        with pa.input_stream(str(packed), compression="zstd") as stream:
            unpacked = stream.read()
    else:
        unpacked = decompress(data)
        assert len(pd.read_csv(packed)) == 120  # pandas infers the compression from the name
    assert unpacked == plain.read_bytes()
    r = predict("--input", penguins_csv, "--output", packed, "--model-root", model_root)
    assert r.exit_code == 0 and packed.read_bytes() == data  # no time or name in a header


@pytest.mark.parametrize(
    ("name", "compression"),
    [("run.z.csv", None), ("x.tar.csv", None), ("scores.v2.csv.gz", "gzip"), ("s.pq", None)],
)
def test_only_the_last_suffix_names_the_compression(name, compression):
    assert scoring.output_compression(name) == compression


@pytest.mark.parametrize(
    "name", ["scored.csv.zip", "scored.csv.xz", "scored.tar.gz", "scored.parquet.gz"]
)
def test_an_output_name_whose_compression_is_not_written_is_refused(model_root, tmp_path, name):
    src = tmp_path / "in.csv"
    src.write_bytes(b"")  # an empty input: refused for the output first, before it is read
    r = predict("--input", src, "--output", tmp_path / name, "--model-root", model_root)
    assert r.exit_code == 1, r.output
    errors = [line for line in r.output.splitlines() if line.startswith("ml-api: error:")]
    assert len(errors) == 1 and "is not" in errors[0] and name in errors[0], r.output
    assert "empty" not in r.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]  # nothing written


# ---- 2. the output's mode is what open() would give ------------------------------------------


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o027, 0o640)])
@pytest.mark.parametrize("output", ["out.csv", "out.csv.gz", "out.parquet"])
def test_the_output_mode_follows_the_umask(service, penguins_csv, tmp_path, umask, mode, output):
    old = os.umask(umask)
    try:
        score_file(service, penguins_csv, tmp_path / output)
    finally:
        os.umask(old)
    assert (tmp_path / output).stat().st_mode & 0o777 == mode


# ---- 3. CSV in, Parquet out: typed columns, one type per column for the whole file ----------


def _typed_input(frame, rows=90):
    sample = frame.head(rows).copy()
    sample["row_id"] = np.arange(rows)
    sample["weight_kg"] = sample["body_mass_g"] / 1000
    sample["note"] = [f"note {i}" for i in range(rows)]
    sample["late_decimal"] = [str(i) for i in range(rows - 1)] + ["2.5"]  # in the last block
    sample["gappy"] = [str(i) if i % 4 else "" for i in range(rows)]
    sample["flag"] = ["true" if i % 2 else "FALSE" for i in range(rows)]
    sample["nothing"] = ""
    return sample


EXPECTED_TYPES = {
    "row_id": pa.int64(),
    "weight_kg": pa.float64(),
    "note": pa.string(),
    "late_decimal": pa.float64(),
    "gappy": pa.int64(),
    "flag": pa.bool_(),
    "nothing": pa.float64(),
    "island": pa.string(),
    "bill_length_mm": pa.float64(),
    "year": pa.int64(),  # the issue: bill_length_mm and year were strings
}


@pytest.mark.parametrize("reader", ["arrow", "pandas"])
def test_parquet_from_csv_has_typed_columns_decided_over_the_whole_file(
    service, penguins_frame, tmp_path, monkeypatch, reader
):
    src = tmp_path / "in.csv"
    _typed_input(penguins_frame).to_csv(src, index=False)
    monkeypatch.setattr(scoring, "CHECK_BLOCK_ROWS", 21)  # the decimal is far past the first
    if reader == "pandas":
        monkeypatch.setattr(scoring, "arrow_csv_compression", lambda path: False)
    out = tmp_path / "out.parquet"
    assert score_file(service, src, out, chunk_rows=7) == 90
    schema = pq.read_schema(out)
    for column, expected in EXPECTED_TYPES.items():
        assert schema.field(column).type == expected, column
    read = pd.read_parquet(out)  # as a data scientist reads it: numbers, not text
    assert read["bill_length_mm"].dtype == "float64" and read["year"].dtype == "int64"
    table = pq.read_table(out)
    assert table.column("late_decimal").to_pylist() == [*map(float, range(89)), 2.5]
    gappy = table.column("gappy").to_pylist()
    assert gappy[0] is None and gappy[1:4] == [1, 2, 3] and gappy.count(None) == 23
    assert table.column("nothing").null_count == 90
    assert table.column("flag").to_pylist()[:2] == [False, True]
    # the same numbers pandas reads from the CSV, and the sex feature's gaps are nulls
    typed = pd.read_csv(src)
    for column in ("row_id", "weight_kg", "bill_length_mm", "late_decimal"):
        np.testing.assert_array_equal(table.column(column).to_numpy(), typed[column].to_numpy())
    assert table.column("sex").null_count == typed["sex"].isna().sum()
    prediction = schema.field("prediction").type  # the model's output, as before
    assert pa.types.is_string(prediction) or pa.types.is_large_string(prediction)


def test_csv_output_stays_the_text_as_written(service, penguins_frame, tmp_path):
    src = tmp_path / "in.csv"
    frame = _typed_input(penguins_frame)
    frame.to_csv(src, index=False)
    out = tmp_path / "out.csv"
    score_file(service, src, out, chunk_rows=7)
    scored = pd.read_csv(out, dtype=str, keep_default_na=False)
    written = pd.read_csv(src, dtype=str, keep_default_na=False)
    pd.testing.assert_frame_equal(scored[list(written.columns)], written)
    assert "FALSE" in set(scored["flag"])


def test_a_header_only_csv_writes_an_empty_parquet(service, penguins_frame, tmp_path):
    src, out = tmp_path / "in.csv", tmp_path / "out.parquet"
    src.write_text(",".join(penguins_frame.columns) + "\n")
    assert score_file(service, src, out) == 0
    assert pq.read_table(out).num_rows == 0
    assert "prediction" in pq.read_schema(out).names
