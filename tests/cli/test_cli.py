"""The ``ml-api`` command: train, predict (batch scoring), info."""

import json

import pandas as pd
from click.testing import CliRunner

from ml_api import preprocess
from ml_api.cli import main


def run(*args):
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    return result


def test_train_then_if_missing_is_a_noop(tmp_path):
    r = run("train", "--model-root", tmp_path)
    assert r.exit_code == 0, r.output
    assert "accuracy=" in r.output and "f1_macro=" in r.output
    assert "ONNX form passed the gate on all 344 rows" in r.output
    r = run("train", "--model-root", tmp_path, "--if-missing")
    assert r.exit_code == 0 and "not retraining" in r.output
    assert [p.name for p in (tmp_path / "penguins").iterdir() if p.name.isdigit()] == ["1"]


def test_train_any_csv_regression(tmp_path, diabetes_csv):
    r = run(
        "train",
        "--data",
        diabetes_csv,
        "--target",
        "target",
        "--name",
        "diabetes",
        "--estimator",
        "random_forest",
        "--model-root",
        tmp_path,
    )
    assert r.exit_code == 0, r.output
    assert "r2=" in r.output and "RandomForestRegressor" in r.output
    # float32 cannot hold the diabetes target (25 to 346) to 1e-5: the card says so, and the CLI
    assert "scikit-learn serves (ONNX Runtime computes in float32: worst row " in r.output
    assert "relative; the gate allows 1e-05 absolute)" in r.output


def test_train_bad_target_is_a_clear_error(tmp_path, diabetes_csv):
    r = CliRunner().invoke(
        main,
        ["train", "--data", str(diabetes_csv), "--target", "nope", "--model-root", str(tmp_path)],
    )
    assert r.exit_code == 2 and "target column 'nope'" in r.output


def test_predict_scores_the_whole_file(model_root, tmp_path, penguins_frame):
    out = tmp_path / "scored.csv"
    r = run(
        "predict",
        "--input",
        preprocess.PENGUINS_CSV,
        "--output",
        out,
        "--model-root",
        model_root,
        "--chunk-rows",
        100,
    )
    assert r.exit_code == 0, r.output
    scored = pd.read_csv(out)
    assert len(scored) == 344
    assert list(scored.columns[:8]) == list(penguins_frame.columns)  # carried through
    assert {"prediction", "probability_Adelie", "probability_Gentoo"} <= set(scored.columns)
    assert (scored["prediction"] == scored["species"]).mean() > 0.95


def test_predict_reports_bad_rows_by_number_and_writes_nothing(
    model_root, tmp_path, penguins_frame
):
    bad = penguins_frame.copy()
    bad["island"] = bad["island"].astype(object)
    bad.loc[6, "island"] = "Atlantis"  # data row 7
    src = tmp_path / "bad.csv"
    bad.to_csv(src, index=False)
    out = tmp_path / "out.csv"
    r = CliRunner().invoke(
        main,
        ["predict", "--input", str(src), "--output", str(out), "--model-root", str(model_root)],
    )
    assert r.exit_code == 1
    assert "row 7, column island: unknown category 'Atlantis'" in r.output
    assert not out.exists()
    assert not list(tmp_path.glob(".scoring-*"))


def test_predict_missing_column(model_root, tmp_path, penguins_frame):
    src = tmp_path / "nosex.csv"
    penguins_frame.drop(columns="sex").to_csv(src, index=False)
    r = CliRunner().invoke(
        main,
        [
            "predict",
            "--input",
            str(src),
            "--output",
            str(tmp_path / "o.csv"),
            "--model-root",
            str(model_root),
        ],
    )
    assert r.exit_code == 1 and "lacks feature columns: sex" in r.output


def test_info_prints_the_card(model_root):
    r = run("info", "--model-root", model_root)
    assert r.exit_code == 0
    card = json.loads(r.output)
    assert card["model"] == {"name": "penguins", "version": "1"}


def test_predict_one_bad_number_names_only_its_row(model_root, tmp_path, penguins_frame):
    """One non-numeric cell makes pandas read its whole column as text; only that row is wrong."""
    bad = penguins_frame.head(120).copy()
    bad["bill_length_mm"] = bad["bill_length_mm"].astype(object)
    bad.loc[110, "bill_length_mm"] = "5O"  # a typo in data row 111
    src = tmp_path / "typo.csv"
    bad.to_csv(src, index=False)
    r = CliRunner().invoke(
        main,
        [
            "predict",
            "--input",
            str(src),
            "--output",
            str(tmp_path / "o.csv"),
            "--model-root",
            str(model_root),
        ],
    )
    assert r.exit_code == 1
    assert f"1 problem in {src}:" in r.output
    assert "row 111, column bill_length_mm: expected a number, got a string '5O'" in r.output
    assert "row 1," not in r.output and "without quotes" not in r.output
    bad.loc[110, "bill_length_mm"] = "51.5"  # text that is a number scores as a number
    bad.to_csv(src, index=False)
    r = CliRunner().invoke(
        main,
        [
            "predict",
            "--input",
            str(src),
            "--output",
            str(tmp_path / "o.csv"),
            "--model-root",
            str(model_root),
        ],
    )
    assert r.exit_code == 0, r.output
