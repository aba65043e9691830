"""``ml-api train`` hints that an integer column with few distinct values may be a code."""

from __future__ import annotations

import numpy as np
import pandas as pd
from click.testing import CliRunner

from ml_api.cli import main

HINT = (
    "store_id: numeric, 12 distinct integers: if these are codes, not quantities, "
    "train with --categorical store_id"
)


def _train(tmp_path, *extra):
    rng = np.random.default_rng(1)
    n = 300
    frame = pd.DataFrame(
        {
            "store_id": rng.integers(101, 113, n),  # 12 codes, 25 rows each on average
            "units": rng.integers(0, 400, n),  # integers, but many distinct values
            "price": rng.uniform(1, 5, n),
        }
    )
    frame["sales"] = frame["units"] * frame["price"] + rng.normal(0, 1, n)
    data = tmp_path / "shop.csv"
    frame.to_csv(data, index=False)
    args = ["train", "--data", data, "--target", "sales", "--model-root", tmp_path / "m", *extra]
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_few_distinct_integers_get_the_categorical_hint(tmp_path):
    r = _train(tmp_path)
    assert r.exit_code == 0, r.output
    assert HINT in r.output
    assert "units: numeric" not in r.output and "price: numeric" not in r.output
    # a hint only: the column is still numeric in the card's feature table
    table = r.output.split("features (3):")[1].split("rows dropped")[0]
    assert any(line.split()[:2] == ["store_id", "numeric"] for line in table.splitlines())


def test_no_hint_once_the_column_is_typed(tmp_path):
    assert "store_id: numeric" not in _train(tmp_path, "--categorical", "store_id").output
    assert "store_id: numeric" not in _train(tmp_path, "--numeric", "store_id").output


def test_no_hint_for_the_penguins(tmp_path):
    r = CliRunner().invoke(main, ["train", "--model-root", str(tmp_path)])
    assert r.exit_code == 0, r.output
    assert "distinct integers" not in r.output
