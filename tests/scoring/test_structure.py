"""A CSV whose structure pandas would "repair" is refused by predict, train and import.

Rows with more fields than the header (a trailing delimiter: pandas makes the first column the
index and shifts every value one column left), rows cut short (pandas fills them with nulls),
repeated or blank column names (pandas renames them ``a.1``, ``Unnamed: 0``): each is refused
naming the rows or columns, exit status 1, nothing written, whichever reader reads the file
(Arrow's, or pandas' for ``.xz``), compressed or not.
"""

import bz2
import csv
import gzip
import io
import lzma

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ml_api.cli import main
from ml_api.core.errors import InvalidInput
from ml_api.importing.sample_data import read_data
from ml_api.importing.sources import ImportRefused
from ml_api.preprocess import load_csv
from ml_api.scoring.structure import check_file

COMPRESS = {".csv": lambda b: b, ".csv.gz": gzip.compress, ".csv.bz2": bz2.compress,
            ".csv.xz": lzma.compress}  # fmt: skip


def predict(model_root, path, out):
    return CliRunner().invoke(
        main, ["predict", "--input", str(path), "--output", str(out), "--model-root",
               str(model_root)],
    )  # fmt: skip


def penguin_lines(penguins_frame, rows=30):
    text = penguins_frame.head(rows).to_csv(index=False, na_rep="NA", lineterminator="\n")
    return text.splitlines()


def write(tmp_path, suffix, lines):
    path = tmp_path / f"in{suffix}"
    path.write_bytes(COMPRESS[suffix](("\n".join(lines) + "\n").encode()))
    return path


@pytest.mark.parametrize("suffix", list(COMPRESS))
def test_a_trailing_delimiter_is_refused_not_shifted(model_root, penguins_frame, tmp_path, suffix):
    lines = penguin_lines(penguins_frame)
    lines[1:] = [line + "," for line in lines[1:]]  # every data row: one field more
    out = tmp_path / "out.csv"
    r = predict(model_root, write(tmp_path, suffix, lines), out)
    assert r.exit_code == 1, r.output
    assert (
        "rows 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 and 20 more have more than the header's 8 fields"
        in (r.output)
    )
    assert not out.exists() and not list(tmp_path.glob(".scoring-*"))


@pytest.mark.parametrize("suffix", list(COMPRESS))
def test_a_row_cut_short_is_refused(model_root, penguins_frame, tmp_path, suffix):
    lines = penguin_lines(penguins_frame)
    lines[7] = ",".join(lines[7].split(",")[:3])  # 3 of 8 fields
    lines[12] += ",extra"
    out = tmp_path / "out.parquet"
    r = predict(model_root, write(tmp_path, suffix, lines), out)
    assert r.exit_code == 1, r.output
    assert "row 12 has more than the header's 8 fields" in r.output
    assert "row 7 has fewer than the header's 8 fields" in r.output
    assert not out.exists()


def test_a_ragged_row_far_past_the_first_block_writes_nothing(
    model_root, penguins_frame, tmp_path, monkeypatch
):
    import ml_api.scoring.readers as readers

    monkeypatch.setattr(readers, "ARROW_BLOCK_BYTES", 2048)  # Arrow scores blocks before it
    lines = penguin_lines(penguins_frame, rows=344)
    lines[340] += ","
    out = tmp_path / "out.csv"
    r = predict(model_root, write(tmp_path, ".csv", lines), out)
    assert r.exit_code == 1 and "row 340 has more" in r.output, r.output
    assert not out.exists()


@pytest.mark.parametrize(
    ("header", "expected"),
    [("species,island,island,bill_length_mm,bill_depth_mm,flipper_length_mm,body_mass_g,sex",
      "the header repeats column names: 'island'"),
     ("species,,island,bill_length_mm,bill_depth_mm,flipper_length_mm,body_mass_g,sex",
      "the header has no name for column 2")],
)  # fmt: skip
@pytest.mark.parametrize("suffix", [".csv", ".csv.xz"])
def test_repeated_or_blank_column_names_are_refused(
    model_root, penguins_frame, tmp_path, header, expected, suffix
):
    lines = penguin_lines(penguins_frame)
    lines[0] = header
    out = tmp_path / "out.csv"
    r = predict(model_root, write(tmp_path, suffix, lines), out)
    assert r.exit_code == 1 and expected in r.output, r.output
    assert not out.exists()


def test_a_byte_order_mark_is_not_part_of_the_first_name(model_root, penguins_frame, tmp_path):
    lines = penguin_lines(penguins_frame)
    path = tmp_path / "in.csv"
    path.write_bytes(b"\xef\xbb\xbf" + ("\n".join(lines) + "\n").encode())
    r = predict(model_root, path, tmp_path / "out.csv")
    assert r.exit_code == 0, r.output
    assert pd.read_csv(tmp_path / "out.csv").columns[0] == "species"


def test_training_refuses_a_trailing_delimiter(tmp_path):
    path = tmp_path / "train.csv"
    rows = [f"{i % 2},{i * 0.5},{i * 3}," for i in range(40)]
    path.write_text("label,a,b\n" + "\n".join(rows) + "\n")
    with pytest.raises(ValueError, match=r"rows 1, 2, .* more than the header's 3 fields"):
        load_csv(path)
    root = tmp_path / "models"
    r = CliRunner().invoke(
        main, ["train", "--data", str(path), "--target", "label", "--model-root", str(root)]
    )
    assert r.exit_code != 0 and "more than the header's 3 fields" in r.output, r.output
    assert not root.exists() or not any(root.rglob("metadata.json"))


def test_import_refuses_sample_data_cut_short(tmp_path):
    path = tmp_path / "sample.csv"
    path.write_text("a,b,c\n1,2,3\n4,5\n")
    with pytest.raises(ImportRefused, match="row 2 has fewer than the header's 3 fields"):
        read_data(path, source=None)  # type: ignore[arg-type]


def test_a_one_column_line_of_only_spaces_is_refused(tmp_path):
    """pandas skips ``" "`` as a blank line, Arrow reads it as a row (found by the property)."""
    path = tmp_path / "in.csv"
    path.write_text("c0\na\n \nb\n\t\n")
    with pytest.raises(InvalidInput, match=r"rows 2, 4 have only white space"):
        check_file(path)
    path.write_text("c0\na\n\nb\n")  # an empty line is no row for either reader
    check_file(path)


# ---- the rest of the kind, hunted: any CSV text, Arrow and pandas against the check ----------

cell = st.text(alphabet='ab1,"\n ', max_size=4)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@example(width=1, rows=[[" "]])  # pandas skipped the line, Arrow read it
@given(
    width=st.integers(min_value=1, max_value=4),
    rows=st.lists(st.lists(cell, min_size=0, max_size=6), max_size=6),
)
def test_whatever_the_check_accepts_both_readers_read_unrepaired(tmp_path, width, rows):
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([f"c{i}" for i in range(width)])
    writer.writerows(rows)
    path = tmp_path / "in.csv"
    path.write_text(buffer.getvalue())
    try:
        check_file(path)
    except InvalidInput:
        return  # refused: nothing else to hold
    data = [r for r in rows if r]  # blank lines are no rows
    arrow = pacsv.read_csv(
        path,
        parse_options=pacsv.ParseOptions(newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(
            column_types={f"c{i}": pa.string() for i in range(width)}, strings_can_be_null=False
        ),
    )
    assert arrow.num_columns == width
    frame = pd.read_csv(path, dtype=str, keep_default_na=False, index_col=False)
    assert list(frame.columns) == [f"c{i}" for i in range(width)]
    assert len(frame) == arrow.num_rows
    # every cell where it was written: nothing shifted, nothing filled
    for record, got in zip(
        [r for r in data if r != [""] or width == 1], frame.itertuples(index=False), strict=False
    ):
        assert list(got) == record
