"""Column kinds for a user's own CSV: identifiers and dates left out, zip codes categorical."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from ml_api.cli import main
from ml_api.composition import build_scoring
from ml_api.core.protocols.v1 import V1Protocol
from ml_api.preprocess import infer_columns, load_csv
from ml_api.settings import Settings

N = 200


def houses(path: Path, *, missing_price_rows: int = 0) -> Path:
    """A realistic house-price file: an id, a sale date, zip codes with leading zeros."""
    rng = np.random.default_rng(7)
    sqft = rng.integers(600, 4500, N)
    zips = rng.choice(["02134", "02139", "10001", "94110"], N)
    frame = pd.DataFrame(
        {
            "house_id": [f"H{1000 + i}" for i in range(N)],
            "customer_id": rng.permutation(np.arange(5001, 5001 + N)),
            "sale_date": pd.Timestamp("2023-01-01")
            + pd.to_timedelta(rng.integers(0, 700, N), unit="D"),
            "sqft": sqft,
            "bedrooms": rng.integers(1, 6, N),
            "zip": zips,
            "condition": rng.choice(["good", "fair", "poor"], N),
        }
    )
    frame["sale_date"] = frame["sale_date"].dt.strftime("%Y-%m-%d")
    frame["price"] = (sqft * 200 + (zips == "02134") * 50_000 + rng.normal(0, 20_000, N)).round()
    frame.loc[: missing_price_rows - 1, "price"] = np.nan
    frame.to_csv(path, index=False)
    return path


def decisions(frame: pd.DataFrame, **kw) -> dict[str, tuple[str | None, str]]:
    return {d.name: (d.kind, d.reason) for d in infer_columns(frame, **kw)}


def test_ids_and_dates_are_left_out_zip_codes_are_categories(tmp_path):
    frame = load_csv(houses(tmp_path / "houses.csv")).drop(columns="price")
    got = decisions(frame)
    assert got["house_id"][0] is None and "identifier-like" in got["house_id"][1]
    assert got["customer_id"][0] is None and "identifier-like" in got["customer_id"][1]
    assert got["sale_date"][0] is None and "date/time" in got["sale_date"][1]
    assert got["zip"][0] == "categorical"
    assert got["zip"][1].startswith("digit codes with leading zeros (e.g. '0213")
    assert got["sqft"][0] == "numeric"  # almost distinct integers, but a quantity: kept
    assert got["bedrooms"][0] == "numeric" and got["condition"][0] == "categorical"


def test_keep_and_overrides(tmp_path):
    frame = load_csv(houses(tmp_path / "houses.csv")).drop(columns="price")
    got = decisions(
        frame, keep=("customer_id", "sale_date"), categorical=("bedrooms",), numeric=("zip",)
    )
    assert got["customer_id"][0] == "numeric" and got["sale_date"][0] == "categorical"
    assert got["bedrooms"] == ("categorical", "--categorical")
    assert got["zip"] == ("numeric", "--numeric")
    with pytest.raises(ValueError, match="'H1000' is not a number"):
        infer_columns(frame, numeric=("house_id",))
    with pytest.raises(ValueError, match="--keep: no column 'nope'"):
        infer_columns(frame, keep=("nope",))


@pytest.mark.parametrize(
    ("values", "kind"),
    [
        (["2024-01-05", "2024-02-11", None] * 10, None),
        (["05/01/2024 13:45", "06/01/2024 08:00"] * 15, None),
        (["2024-01-05T10:00:00Z", "2024-01-06T11:30:00+02:00"] * 15, None),
        (["007", "012", "100"] * 10, "categorical"),
        (["1.5", "0.25", "3"] * 10, "numeric"),
        ([str(i) for i in range(30)], None),  # 0..29, a dense run: a row number
        ([str(i * 37 % 1000 + 0.5) for i in range(30)], "numeric"),  # distinct, not integers
        (["a", "b"] * 15, "categorical"),
    ],
)
def test_kind_of_one_column(values, kind):
    (d,) = infer_columns(pd.DataFrame({"c": pd.Series(values, dtype=object)}))
    assert d.kind == kind, d


def test_train_prints_the_table_and_the_model_scores_a_new_house(tmp_path):
    data = houses(tmp_path / "houses.csv", missing_price_rows=3)
    root = tmp_path / "models"
    r = CliRunner().invoke(
        main,
        ["train", "--data", str(data), "--target", "price", "--model-root", str(root)],
        catch_exceptions=False,
    )
    assert r.exit_code == 0, r.output
    out = r.output
    assert "features (4):" in out
    assert "zip        categorical" in out and "02134, 02139, 10001, 94110" in out
    assert "sqft" in out and "numeric" in out
    assert "house_id: identifier-like: 197 distinct values in 197 rows (--keep to use it)" in out
    assert "sale_date: date/time strings (e.g. '" in out
    assert "rows dropped for a missing target 'price': 3" in out
    card = json.loads((root / "houses" / "1" / "metadata.json").read_text())
    assert [f["name"] for f in card["features"]] == ["sqft", "bedrooms", "zip", "condition"]
    assert {c["name"] for c in card["training"]["left_out"]} == {
        "house_id",
        "customer_id",
        "sale_date",
    }
    # a house never seen in training scores (the failure the issue reported: unknown 'H9999')
    service = build_scoring(Settings(model_root=root, model_name="houses"))
    body = V1Protocol(service).predict_instances(
        [{"sqft": 1800, "bedrooms": 3, "zip": "02134", "condition": "good"}]
    )
    assert 200_000 < body["prediction"][0] < 600_000


def test_train_keep_makes_the_id_a_feature(tmp_path):
    data = houses(tmp_path / "houses.csv")
    r = CliRunner().invoke(
        main,
        ["train", "--data", str(data), "--target", "price", "--model-root", str(tmp_path / "m"),
         "--keep", "customer_id", "--categorical", "bedrooms"],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    card = json.loads((tmp_path / "m" / "houses" / "1" / "metadata.json").read_text())
    kinds = {f["name"]: f["kind"] for f in card["features"]}
    assert kinds["customer_id"] == "numeric" and kinds["bedrooms"] == "categorical"


def test_an_unknown_override_is_a_clear_error(tmp_path):
    data = houses(tmp_path / "houses.csv")
    r = CliRunner().invoke(
        main,
        ["train", "--data", str(data), "--target", "price", "--model-root", str(tmp_path),
         "--numeric", "house_id"],
    )  # fmt: skip
    assert r.exit_code == 2 and "--numeric house_id: 'H1000' is not a number" in r.output
