"""``ml-api predict`` on files: the vectorised check, Parquet, gzip'd CSV, progress and --quiet."""

import gzip
import io

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from ml_api.cli import main
from ml_api.core.errors import InvalidInput
from ml_api.predict import count_rows, score_file
from ml_api.scoring.cells import text_records
from ml_api.scoring.checks import fast_columns

SPECIES = {"Adelie", "Chinstrap", "Gentoo"}


def as_read(frame):
    """The frame as ``ml-api predict`` reads a CSV chunk: text cells exactly as written."""
    return pd.read_csv(io.StringIO(frame.to_csv(index=False)), dtype=str, keep_default_na=False)


def predict(*args):
    return CliRunner().invoke(main, ["predict", *[str(a) for a in args]])


def _same_columns(fast, slow):
    assert len(fast) == len(slow)
    for a, b in zip(fast, slow, strict=True):
        assert pd.Series(a, dtype=object).equals(pd.Series(b, dtype=object)) or np.allclose(
            np.asarray(a, dtype=float), np.asarray(b, dtype=float), equal_nan=True
        )


def test_vectorised_check_returns_what_the_row_path_returns(service, penguins_frame):
    chunk = as_read(penguins_frame.head(200))
    fast = fast_columns(chunk, service.schema)
    assert fast is not None
    slow = service.validator.validate_columns(text_records(chunk, service.schema), first_index=1)
    _same_columns(fast, slow)
    assert pd.isna(fast[5]).sum() == (chunk["sex"] == "").sum() > 0  # empty cells: NaN
    typed = penguins_frame.head(200)  # Parquet chunks: typed values
    _same_columns(fast_columns(typed, service.schema, text=False), slow)


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("island", "Atlantis", "unknown category 'Atlantis'; allowed: 'Biscoe', 'Dream', "
         "'Torgersen'"),
        ("island", None, "null is not accepted: this feature had no missing values in training"),
        ("bill_length_mm", "5O", "expected a number, got a string '5O'"),
        ("bill_length_mm", float("inf"), "expected a finite number"),
        ("sex", 1, "unknown category '1'; allowed: 'female', 'male'"),
    ],
)  # fmt: skip
def test_a_doubtful_chunk_goes_row_by_row_and_the_message_names_row_and_column(
    service, penguins_frame, column, value, message
):
    chunk = penguins_frame.head(50).copy()
    chunk[column] = chunk[column].astype(object)
    chunk.loc[chunk.index[9], column] = value
    if column == "sex":  # a whole column of numbers where strings are expected
        chunk[column] = 1
    chunk = as_read(chunk)
    assert fast_columns(chunk, service.schema) is None
    with pytest.raises(InvalidInput) as err:
        service.predict_rows(text_records(chunk, service.schema), first_index=1)
    first = err.value.details[0]
    assert first.problem == message and first.field == column
    assert first.instance == (1 if column == "sex" else 10)


def test_bad_row_in_the_last_chunk_writes_nothing_and_is_named(
    model_root, tmp_path, penguins_frame
):
    bad = penguins_frame.copy()
    bad["island"] = bad["island"].astype(object)
    bad.loc[339, "island"] = "Atlantis"  # data row 340, in the last 100-row chunk (301..344)
    src = tmp_path / "bad.csv"
    bad.to_csv(src, index=False)
    out = tmp_path / "out.csv"
    r = predict("--input", src, "--output", out, "--model-root", model_root, "--chunk-rows", 100)
    assert r.exit_code == 1
    assert r.output.splitlines()[0] == f"ml-api: error: 1 problem in {src}:"
    assert (
        "  row 340, column island: unknown category 'Atlantis'; allowed: 'Biscoe', 'Dream', "
        "'Torgersen'"
    ) in r.output.splitlines()
    assert not out.exists()
    assert not list(tmp_path.glob(".scoring-*"))


def test_parquet_round_trip_keeps_every_other_column_and_its_type(
    model_root, tmp_path, penguins_frame
):
    frame = penguins_frame.copy()
    frame["row_id"] = np.arange(len(frame), dtype="int32")
    frame["seen"] = pd.date_range("2024-01-01", periods=len(frame), freq="h", tz="UTC")
    frame["checked"] = np.arange(len(frame)) % 2 == 0
    frame["weight_kg"] = (frame["body_mass_g"] / 1000).astype("float32")
    src, out = tmp_path / "in.parquet", tmp_path / "out.parquet"
    frame.to_parquet(src, index=False)
    r = predict("--input", src, "--output", out, "--model-root", model_root, "--chunk-rows", 100)
    assert r.exit_code == 0, r.output
    scored = pd.read_parquet(out)
    assert len(scored) == len(frame)
    for column in frame.columns:
        assert scored[column].dtype == pd.read_parquet(src)[column].dtype, column
        pd.testing.assert_series_equal(scored[column], pd.read_parquet(src)[column])
    assert set(scored["prediction"]) <= SPECIES
    assert (scored["prediction"] == scored["species"]).mean() > 0.95
    probabilities = scored[[f"probability_{s}" for s in sorted(SPECIES)]]
    assert np.allclose(probabilities.sum(axis=1), 1.0)
    # the same rows from CSV give the same predictions
    csv_src, csv_out = tmp_path / "in.csv", tmp_path / "out.csv"
    penguins_frame.to_csv(csv_src, index=False)
    assert (
        predict("--input", csv_src, "--output", csv_out, "--model-root", model_root).exit_code == 0
    )
    assert list(pd.read_csv(csv_out)["prediction"]) == list(scored["prediction"])


def test_gzipped_csv_in(model_root, tmp_path, penguins_frame):
    plain, packed = tmp_path / "p.csv", tmp_path / "p.csv.gz"
    penguins_frame.to_csv(plain, index=False)
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    assert predict("--input", plain, "--output", a, "--model-root", model_root).exit_code == 0
    r = predict("--input", packed, "--output", b, "--model-root", model_root, "--chunk-rows", 50)
    assert r.exit_code == 0, r.output
    pd.testing.assert_frame_equal(pd.read_csv(a), pd.read_csv(b))
    assert count_rows(plain) == len(penguins_frame) and count_rows(packed) is None


def test_summary_line_with_rows_per_second_and_quiet(model_root, tmp_path, penguins_frame):
    src = tmp_path / "p.csv"
    penguins_frame.to_csv(src, index=False)
    r = predict("--input", src, "--output", tmp_path / "o.csv", "--model-root", model_root)
    assert r.exit_code == 0
    (line,) = r.output.splitlines()  # not a terminal: no bar, one line
    assert line.startswith("scored 344 rows with penguins version 1 in ") and "rows/s)" in line
    r = predict(
        "--input", src, "--output", tmp_path / "q.csv", "--model-root", model_root, "--quiet"
    )
    assert r.exit_code == 0 and r.output == ""
    assert len(pd.read_csv(tmp_path / "q.csv")) == 344


def test_score_file_calls_back_per_chunk(service, tmp_path, penguins_frame):
    src = tmp_path / "p.parquet"
    penguins_frame.to_parquet(src)
    seen = []
    n = score_file(service, src, tmp_path / "o.csv", chunk_rows=100, on_chunk=seen.append)
    assert n == 344 and seen == [100, 100, 100, 44]
    assert count_rows(src) == 344
