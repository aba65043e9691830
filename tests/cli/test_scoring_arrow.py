"""Batch scoring's Arrow path: the same cells, checks, outputs and errors as the pandas path.

``ml-api predict`` reads a CSV with Arrow's streaming reader and keeps the cells as Arrow strings
end to end; pandas reads what Arrow reads differently or not at all. These tests hold the two
paths to the same results, byte for byte, and the runtimes' faster input assembly to the same
predictions.
"""

import io

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

import ml_api.predict as scoring
import ml_api.scoring.readers as readers
from ml_api.core.errors import InvalidInput
from ml_api.core.runtimes.scikit_learn import SklearnPredictor
from ml_api.predict import score_file
from ml_api.scoring.checks import arrow_block_check, fast_arrow_columns, fast_columns
from ml_api.scoring.writer import Writer


def as_arrow(text):
    """CSV text as the Arrow path reads it: every cell a string, exactly as written."""
    names = text.splitlines()[0].split(",")
    return pacsv.read_csv(
        io.BytesIO(text.encode()),
        convert_options=pacsv.ConvertOptions(
            column_types={n: pa.string() for n in names},
            null_values=[],
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )


def as_pandas(text):
    return pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)


def penguins_text(frame, rows=120):
    """Penguins rows as CSV text, with missing cells in several pandas spellings."""
    sample = frame.head(rows).astype(object)
    spellings = ["", "NA", "n/a", "NaN", "null", "None"]
    for i in range(0, rows - 1, 17):
        sample.loc[i, "sex"] = spellings[i % len(spellings)]
        sample.loc[i + 1, "body_mass_g"] = spellings[(i + 1) % len(spellings)]
    return sample.to_csv(index=False, na_rep="")


def _identical(a, b):
    assert a.dtype == b.dtype
    assert pd.Series(a).equals(pd.Series(b))


def test_arrow_check_returns_what_the_pandas_check_returns(service, penguins_frame):
    text = penguins_text(penguins_frame)
    arrow = fast_arrow_columns(as_arrow(text), service.schema)
    pandas = fast_columns(as_pandas(text), service.schema)
    assert arrow is not None and pandas is not None
    for a, b in zip(arrow, pandas, strict=True):
        _identical(a, b)
    sex = list(service.schema.names).index("sex")
    assert pd.isna(arrow[sex]).sum() > 5  # the spellings above are missing, not categories


@pytest.mark.parametrize(
    ("column", "cell"),
    [("island", "Atlantis"), ("island", ""), ("bill_length_mm", "inf"), ("sex", "1")],
)
def test_a_doubtful_cell_marks_its_row_and_only_its_chunk_goes_row_by_row(
    service, penguins_frame, column, cell
):
    frame = penguins_frame.head(60).astype(object)
    frame.loc[37, column] = cell
    text = frame.to_csv(index=False, na_rep="")
    _, doubt = arrow_block_check(as_arrow(text), service.schema)
    assert np.flatnonzero(doubt).tolist() == [37]
    for start in range(0, 60, 20):  # the chunks of 20 rows the scorer would make
        chunk = as_pandas(text).iloc[start : start + 20]
        fast = fast_columns(chunk, service.schema)
        assert (fast is None) == (start == 20)


@pytest.mark.parametrize("cell", ["5O", "5_500", "\u0661\u0662"])
def test_a_cell_that_is_no_number_marks_its_row_only(service, penguins_frame, cell):
    frame = penguins_frame.head(30).astype(object)
    frame.loc[3, "bill_length_mm"] = cell
    frame.loc[5, "bill_depth_mm"] = " 17.5 "  # a number, whitespace around it: no doubt
    text = frame.to_csv(index=False, na_rep="")
    _, doubt = arrow_block_check(as_arrow(text), service.schema)
    assert np.flatnonzero(doubt).tolist() == [3]
    assert fast_arrow_columns(as_arrow(text), service.schema) is None


def _write_odd_csv(path, frame):
    """Penguins rows with a quoted comma, a quote and NA spellings in columns the model ignores."""
    odd = frame.head(90).astype(object)
    odd["note"] = [f'tag {i}, "quoted"' if i % 11 == 0 else f"t{i}" for i in range(len(odd))]
    odd.loc[5, "year"] = "NA"
    odd.loc[7, "species"] = ""
    text = penguins_text(odd, rows=90)
    path.write_text(text)
    return path


def _pandas_only(monkeypatch):
    monkeypatch.setattr(scoring, "arrow_csv_compression", lambda path: False)


@pytest.mark.parametrize("output", ["out.csv", "out.parquet"])
def test_arrow_and_pandas_readers_write_the_same_output(
    service, penguins_frame, tmp_path, monkeypatch, output
):
    src = _write_odd_csv(tmp_path / "odd.csv", penguins_frame)
    monkeypatch.setattr(scoring, "CHECK_BLOCK_ROWS", 21)  # blocks of 3 chunks, and a rest
    chunks = []
    n = score_file(service, src, tmp_path / f"arrow-{output}", chunk_rows=7, on_chunk=chunks.append)
    assert n == 90 and sum(chunks) == 90 and len(chunks) == 13
    _pandas_only(monkeypatch)
    assert score_file(service, src, tmp_path / f"pandas-{output}", chunk_rows=7) == 90
    arrow, pandas = tmp_path / f"arrow-{output}", tmp_path / f"pandas-{output}"
    if output.endswith(".csv"):
        assert arrow.read_bytes() == pandas.read_bytes()
        assert '"tag 0, ""quoted"""' in arrow.read_text()
    else:
        pd.testing.assert_frame_equal(pd.read_parquet(arrow), pd.read_parquet(pandas))


def test_a_row_cut_short_after_arrow_scored_blocks_is_refused_and_nothing_written(
    service, penguins_frame, tmp_path, monkeypatch
):
    # A short row far into the file: Arrow refuses it after some blocks (pandas would fill it
    # in with nulls): the whole file is refused naming the row, and no output is left.
    text = penguins_frame.to_csv(index=False, na_rep="")
    lines = text.splitlines()
    lines[300] = ",".join(lines[300].split(",")[:-1])  # data row 300 lacks its last cell
    src = tmp_path / "ragged.csv"
    src.write_text("\n".join(lines) + "\n")
    monkeypatch.setattr(readers, "ARROW_BLOCK_BYTES", 2048)  # many blocks: chunks go out first
    monkeypatch.setattr(scoring, "CHECK_BLOCK_ROWS", 20)
    chunks = []
    with pytest.raises(InvalidInput, match="row 300 has fewer than the header's 8 fields"):
        score_file(service, src, tmp_path / "out.csv", chunk_rows=10, on_chunk=chunks.append)
    assert sum(chunks) > 0  # Arrow had scored rows before it met the short one
    assert not (tmp_path / "out.csv").exists() and not list(tmp_path.glob(".scoring-*"))


def test_an_input_column_named_prediction_is_replaced_in_place(
    service, penguins_frame, tmp_path, monkeypatch
):
    frame = penguins_frame.head(20).copy()
    frame.insert(0, "prediction", "old")
    src = tmp_path / "in.csv"
    frame.to_csv(src, index=False)
    score_file(service, src, tmp_path / "arrow.csv")
    _pandas_only(monkeypatch)
    score_file(service, src, tmp_path / "pandas.csv")
    assert (tmp_path / "arrow.csv").read_bytes() == (tmp_path / "pandas.csv").read_bytes()
    header = (tmp_path / "arrow.csv").read_text().splitlines()[0].split(",")
    assert header.count("prediction") == 1 and header[0] == "prediction"
    assert "old" not in pd.read_csv(tmp_path / "arrow.csv")["prediction"].tolist()


def test_a_header_only_csv_writes_a_header_only_output(service, tmp_path):
    src = tmp_path / "empty.csv"
    src.write_text(",".join(service.schema.names) + ",id\n")
    out = tmp_path / "out.csv"
    assert score_file(service, src, out) == 0
    header = out.read_text().splitlines()
    assert len(header) == 1 and header[0].startswith(",".join(service.schema.names) + ",id,")


def test_a_missing_feature_column_is_named_before_anything_is_written(service, tmp_path):
    src = tmp_path / "in.csv"
    src.write_text("island,sex\nDream,male\n")
    with pytest.raises(InvalidInput, match="lacks feature columns: bill_length_mm"):
        score_file(service, src, tmp_path / "out.csv")
    assert not list(tmp_path.glob(".scoring-*")) and not (tmp_path / "out.csv").exists()


def test_a_writing_error_is_raised_by_close_unless_discarded(tmp_path):
    writer = Writer(tmp_path / "out.parquet", parquet=True)
    writer.write(pa.table({"a": pa.array([1, 2], pa.int64())}))
    writer.write(pa.table({"a": pa.array(["x"], pa.string())}))  # cannot be cast to int64
    with pytest.raises(InvalidInput, match="a column's type changed between chunks"):
        writer.close()
    writer = Writer(tmp_path / "other.parquet", parquet=True)
    writer.write(pa.table({"a": pa.array([1], pa.int64())}))
    writer.write(pa.table({"a": pa.array(["x"], pa.string())}))
    writer.close(discard=True)  # the caller is failing already: its own error is reported


def test_scikit_learn_gets_object_text_and_predicts_exactly_as_before(service, penguins_frame):
    predictor = SklearnPredictor(service.artifact)
    text = penguins_text(penguins_frame, rows=300)
    columns = fast_columns(as_pandas(text), service.schema)
    frame = predictor._frame(columns)
    for f in service.schema.features:
        expected = "float64" if f.kind == "numeric" else "object"
        assert str(frame[f.name].dtype) == expected
    result = predictor.predict(columns)
    model = service.artifact.model
    before = service.schema.frame(columns)  # the frame pandas infers (str columns)
    assert np.array_equal(result.labels, model.predict(before))
    assert np.array_equal(result.probabilities, model.predict_proba(before))


def test_onnx_string_inputs_take_missing_as_the_empty_string(service):
    pytest.importorskip("onnxruntime")
    from ml_api.core.runtimes.onnx_runtime import MISSING_CATEGORY, OnnxPredictor

    session = OnnxPredictor(service.artifact).session
    columns = [
        np.array(["Dream", "Biscoe", "Dream"], dtype=object),
        *[np.array([40.0, np.nan, 41.0])] * 4,
        np.array(["male", np.nan, None], dtype=object),
    ]
    feed = session.feed_columns(columns)
    assert feed["sex"].tolist() == [["male"], [MISSING_CATEGORY], [MISSING_CATEGORY]]
    assert feed["island"].dtype == object and feed["island"].shape == (3, 1)
