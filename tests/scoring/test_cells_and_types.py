"""One definition of a number and of a missing cell for every reader; Parquet's types as CSV's.

``5_500`` and non-ASCII digits are text, not numbers, in a CSV cell as in JSON: refused naming
row and column by both readers, plain or compressed. Which cells are missing is what training
read as missing (the card's ``missing_values.tokens``): ``NA`` is a category when training said
so. Parquet's standard numeric and text types (``decimal(10,2)`` as Spark writes it, int8 to
uint64, float16/32, large and dictionary strings, dates) score as their CSV equivalents.
"""

import datetime
import gzip
import json
import lzma
from decimal import Decimal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from ml_api.cli import main

NUMERIC = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def predict(model_root, path, out, name="penguins"):
    return run(
        "predict", "--input", path, "--output", out, "--model-root", model_root,
        "--name", name,
    )  # fmt: skip


@pytest.mark.parametrize("cell", ["5_500", "\u0665\u0665\u0660\u0660", "\uff15\uff15\uff10\uff10"])
@pytest.mark.parametrize("suffix", [".csv", ".csv.gz", ".csv.xz"])
def test_a_number_python_would_read_is_refused_naming_row_and_column(
    model_root, penguins_frame, tmp_path, cell, suffix
):
    frame = penguins_frame.head(40).astype(object)
    frame.loc[2, "body_mass_g"] = cell
    text = frame.to_csv(index=False, na_rep="NA").encode()
    path = tmp_path / f"in{suffix}"
    path.write_bytes(
        {".csv": bytes, ".csv.gz": gzip.compress, ".csv.xz": lzma.compress}[suffix](text)
    )
    out = tmp_path / "out.csv"
    r = predict(model_root, path, out)
    assert r.exit_code == 1, r.output
    assert f"row 3, column body_mass_g: expected a number, got a string {cell!r}" in r.output
    assert not out.exists()


def test_a_parquet_string_that_python_would_read_is_refused(model_root, penguins_frame, tmp_path):
    frame = penguins_frame.head(10).copy()
    frame["body_mass_g"] = frame["body_mass_g"].map(lambda v: f"{v:_.0f}" if v == v else None)
    path = tmp_path / "in.parquet"
    frame.to_parquet(path)
    r = predict(model_root, path, tmp_path / "out.csv")
    assert r.exit_code == 1 and "row 1, column body_mass_g: expected a number" in r.output


# ---- missing cells: what training read as missing, recorded and read again --------------------


def regions(path, n=120):
    rng = np.random.default_rng(3)
    region = rng.choice(["NA", "EU", "APAC"], n)  # NA: North America
    spend = rng.normal(100, 10, n).round(1) + (region == "NA") * 40
    pd.DataFrame({"region": region, "spend": spend, "big": spend > 120}).to_csv(path, index=False)
    return path


def test_na_is_a_category_when_training_says_so_and_scoring_reads_it_the_same(tmp_path):
    data = regions(tmp_path / "regions.csv")
    root = tmp_path / "models"
    r = run("train", "--data", data, "--target", "big", "--na-values", "", "--model-root", root)
    assert r.exit_code == 0, r.output
    card = json.loads(next(root.rglob("metadata.json")).read_text())
    assert card["missing_values"]["tokens"] == [""]
    region = next(f for f in card["features"] if f["name"] == "region")
    assert region["categories"] == ["APAC", "EU", "NA"] and not region["nullable"]
    out = tmp_path / "out.csv"
    r = predict(root, data, out, name="regions")
    assert r.exit_code == 0, r.output
    scored = pd.read_csv(out, keep_default_na=False)
    assert (scored["region"] == "NA").sum() > 0
    assert (
        scored["prediction"]
        .astype(str)
        .str.lower()
        .eq(scored["big"].astype(str).str.lower())
        .mean()
        > 0.9
    )


def test_training_says_which_cells_of_a_categorical_column_it_read_as_missing(tmp_path):
    data = regions(tmp_path / "regions.csv")
    root = tmp_path / "models"
    r = run("train", "--data", data, "--target", "big", "--model-root", root)
    assert r.exit_code == 0, r.output
    n = (pd.read_csv(data, keep_default_na=False)["region"] == "NA").sum()
    assert f"warning: region: {n} cells read as missing ('NA': {n}), not as a category" in (
        r.output
    )
    assert "--na-values ''" in r.output
    card = json.loads(next(root.rglob("metadata.json")).read_text())
    assert "NA" in card["missing_values"]["tokens"] and card["missing_values"]["cells"][
        "region"
    ] == {"NA": int(n)}


def test_training_on_penguins_notes_na_as_missing_without_advising_otherwise(tmp_path):
    """Beside 'male' and 'female', 'NA' can only mean missing: a note, no --na-values advice."""
    from ml_api.preprocess import PENGUINS_CSV

    r = run("train", "--data", PENGUINS_CSV, "--target", "species", "--model-root", tmp_path)
    assert r.exit_code == 0, r.output
    assert "note: sex: 11 cells read as missing ('NA': 11)\n" in r.output
    assert "--na-values" not in r.output and "warning: sex" not in r.output


def test_one_cell_read_as_missing_is_one_cell(tmp_path):
    data = regions(tmp_path / "regions.csv")
    frame = pd.read_csv(data, keep_default_na=False)
    first = frame.index[frame["region"] == "NA"][0]
    frame.loc[frame["region"] == "NA", "region"] = "US"
    frame.loc[first, "region"] = "NA"
    frame.to_csv(data, index=False)
    r = run("train", "--data", data, "--target", "big", "--model-root", tmp_path / "models")
    assert r.exit_code == 0, r.output
    assert "warning: region: 1 cell read as missing ('NA': 1), not as a category; 'NA' looks " in (
        r.output
    )


def test_the_default_penguins_model_reads_na_as_missing_and_says_so(model_root, settings, service):
    from ml_api.composition import build
    from ml_api.core.pages.card_page import CardContent
    from ml_api.core.protocols.v1 import model_metadata

    card = json.loads(next(model_root.rglob("metadata.json")).read_text())
    assert card["missing_values"]["cells"]["sex"] == {"NA": 11}
    sex = next(f for f in card["features"] if f["name"] == "sex")
    assert sex["categories"] == ["female", "male"] and sex["nullable"]
    # What a user can see says it too: GET /metadata and ml-api info, and the card page.
    assert model_metadata(service)["missing_values"] == card["missing_values"]
    facts = dict(CardContent.from_card(service.artifact.card, []).facts)
    assert facts["sex: cells read as missing"] == "'NA': 11"
    assert "'NA'" in facts["cells read as missing (CSV)"]
    assert "sex: cells read as missing" in build(settings, service=service).card_html


def test_a_card_without_missing_values_reads_pandas_defaults(model_root, penguins_frame, tmp_path):
    import shutil

    old = tmp_path / "models"
    shutil.copytree(model_root, old)
    meta = next(old.rglob("metadata.json"))
    card = json.loads(meta.read_text())
    del card["missing_values"]
    meta.write_text(json.dumps(card))
    src = tmp_path / "in.csv"
    penguins_frame.head(30).to_csv(src, index=False, na_rep="NA")
    assert predict(old, src, tmp_path / "old.csv").exit_code == 0
    assert predict(model_root, src, tmp_path / "new.csv").exit_code == 0
    assert (tmp_path / "old.csv").read_bytes() == (tmp_path / "new.csv").read_bytes()


# ---- Parquet's standard types score as their CSV equivalents ---------------------------------


def typed_table(frame):
    """Penguins rows with each standard Parquet type, and the same values as CSV text."""
    rows = frame.dropna().head(60).reset_index(drop=True)
    table = pa.table(
        {
            "species": pa.array(rows["species"], pa.large_string()),
            "island": pa.array(rows["island"]).dictionary_encode(),
            "bill_length_mm": pa.array(
                [Decimal(f"{v:.2f}") for v in rows["bill_length_mm"]], pa.decimal128(10, 2)
            ),
            "bill_depth_mm": pa.array(rows["bill_depth_mm"], pa.float32()),
            "flipper_length_mm": pa.array(rows["flipper_length_mm"].astype("int16"), pa.int16()),
            "body_mass_g": pa.array(rows["body_mass_g"].astype("uint64"), pa.uint64()),
            "sex": pa.array(rows["sex"], pa.large_string()),
        }
    )
    csv = rows.drop(columns=["year"]).copy()
    csv["bill_depth_mm"] = np.asarray(rows["bill_depth_mm"], np.float32).astype(float)
    return table, csv


@pytest.mark.parametrize(
    ("column", "type_"),
    [("flipper_length_mm", pa.int8()), ("flipper_length_mm", pa.uint8()),
     ("flipper_length_mm", pa.int32()), ("body_mass_g", pa.int64()),
     ("body_mass_g", pa.uint32()), ("flipper_length_mm", pa.float16()),
     ("body_mass_g", pa.decimal128(38, 4)), ("sex", pa.string())],
)  # fmt: skip
def test_parquet_types_score_as_their_csv_equivalents(
    model_root, penguins_frame, tmp_path, column, type_
):
    table, csv = typed_table(penguins_frame)
    if column == "flipper_length_mm" and type_ in (pa.int8(), pa.uint8()):
        values = np.asarray(csv[column]) - 100  # within int8
        csv[column] = values
    else:
        values = np.asarray(csv[column])
    if pa.types.is_decimal(type_):
        array = pa.array([Decimal(int(v)) for v in values], type_)
    elif pa.types.is_floating(type_):
        array = pa.array(np.asarray(values, dtype=np.float16), type_)
    else:
        array = pa.array(values.astype(object) if type_ == pa.string() else values).cast(type_)
    table = table.set_column(table.column_names.index(column), column, array)
    pq.write_table(table, tmp_path / "in.parquet")
    csv.to_csv(tmp_path / "in.csv", index=False)
    for name in ("in.parquet", "in.csv"):
        r = predict(model_root, tmp_path / name, tmp_path / f"{name}.out.csv")
        assert r.exit_code == 0, (name, r.output)
    from_parquet = pd.read_csv(tmp_path / "in.parquet.out.csv")
    from_csv = pd.read_csv(tmp_path / "in.csv.out.csv")
    prob = [c for c in from_csv.columns if c.startswith("probability_")]
    assert (from_parquet["prediction"] == from_csv["prediction"]).all()
    np.testing.assert_allclose(from_parquet[prob], from_csv[prob], rtol=1e-12)


def test_decimals_as_spark_writes_them_score(model_root, penguins_frame, tmp_path):
    table, csv = typed_table(penguins_frame)
    pq.write_table(table, tmp_path / "spark.parquet")
    csv.to_csv(tmp_path / "same.csv", index=False)
    for name in ("spark.parquet", "same.csv"):
        r = predict(model_root, tmp_path / name, tmp_path / f"{name}.out.csv")
        assert r.exit_code == 0, (name, r.output)
    a = pd.read_csv(tmp_path / "spark.parquet.out.csv")
    b = pd.read_csv(tmp_path / "same.csv.out.csv")
    assert (a["prediction"] == b["prediction"]).all()
    assert (a["bill_length_mm"] == b["bill_length_mm"]).all()


def test_a_decimal_with_a_null_takes_the_row_path_and_still_scores(
    model_root, penguins_frame, tmp_path
):
    table, _ = typed_table(penguins_frame)
    values = table.column("sex").to_pylist()
    values[4] = None  # sex is nullable: the row goes through the per-value validator
    table = table.set_column(table.column_names.index("sex"), "sex", pa.array(values))
    table = table.set_column(
        table.column_names.index("bill_length_mm"),
        "bill_length_mm",
        pa.array(
            [Decimal("1e2"), *table.column("bill_length_mm").to_pylist()[1:]], pa.decimal128(10, 2)
        ),
    )
    pq.write_table(table, tmp_path / "in.parquet")
    r = predict(model_root, tmp_path / "in.parquet", tmp_path / "out.csv")
    assert r.exit_code == 0, r.output


def test_a_date_in_a_numeric_feature_is_refused_naming_row_and_column(
    model_root, penguins_frame, tmp_path
):
    table, _ = typed_table(penguins_frame)
    dates = pa.array([datetime.date(2024, 5, 1)] * table.num_rows, pa.date32())
    table = table.set_column(table.column_names.index("body_mass_g"), "body_mass_g", dates)
    pq.write_table(table, tmp_path / "in.parquet")
    r = predict(model_root, tmp_path / "in.parquet", tmp_path / "out.csv")
    assert r.exit_code == 1
    assert "row 1, column body_mass_g: expected a number, got a string '2024-05-01'" in r.output
