"""``ml-api predict`` under the three out-of-range policies, and ``ml-api train --nullable``."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from click.testing import CliRunner

from ml_api import preprocess
from ml_api.cli import main
from ml_api.composition import build_scoring
from ml_api.core.errors import InvalidInput
from ml_api.core.protocols.v1 import V1Protocol
from ml_api.settings import Settings


@pytest.fixture
def stretched_csv(tmp_path, penguins_frame):
    """40 penguins; data rows 3 and 8 have flipper lengths beyond the training 172-231 mm, row 8
    also a body mass beyond 6300 g."""
    frame = penguins_frame.head(40).copy()
    frame.loc[2, "flipper_length_mm"] = 400.0  # data row 3
    frame.loc[7, "flipper_length_mm"] = 90.0  # data row 8
    frame.loc[7, "body_mass_g"] = 90000.0
    path = tmp_path / "stretched.csv"
    frame.to_csv(path, index=False)
    return path


def score(model_root, src, out, *extra, env=None):
    return CliRunner().invoke(
        main,
        [
            *("predict", "--input", str(src), "--output", str(out)),
            *("--model-root", str(model_root), "--chunk-rows", "5", *extra),
        ],
        env=env,
    )


def test_warn_prints_one_summary_line_on_stderr(model_root, tmp_path, stretched_csv):
    out = tmp_path / "scored.csv"
    r = score(model_root, stretched_csv, out)
    assert r.exit_code == 0, r.output
    warning = [line for line in r.stderr.splitlines() if line.startswith("warning:")]
    assert warning == [
        "warning: values outside the training range (the model extrapolates): "
        "flipper_length_mm 2, body_mass_g 1 (3 in all); set ML_API_OUT_OF_RANGE=reject to "
        "refuse them, accept to stay silent"
    ]
    assert "warning" not in r.stdout
    assert len(pd.read_csv(out)) == 40  # every row scored


def test_reject_refuses_naming_the_first_rows(model_root, tmp_path, stretched_csv):
    out = tmp_path / "scored.csv"
    r = score(model_root, stretched_csv, out, env={"ML_API_OUT_OF_RANGE": "reject"})
    assert r.exit_code == 1
    lines = r.stderr.strip().splitlines()
    assert lines[-1] == (
        "ml-api: error: refused (out-of-range policy reject): values outside the training range in "
        "rows 3; first: row 3, column flipper_length_mm: 400 is outside the training range "
        "172 to 231"
    )  # the first failing chunk (rows 1-5) stops the run
    assert not out.exists()
    r = score(model_root, stretched_csv, out, "--out-of-range", "reject", "--chunk-rows", "100")
    assert r.exit_code == 1
    assert "in rows 3, 8; first: row 3," in r.stderr


def test_accept_is_silent(model_root, tmp_path, stretched_csv):
    out = tmp_path / "scored.csv"
    r = score(model_root, stretched_csv, out, "--out-of-range", "accept")
    assert r.exit_code == 0, r.output
    assert "warning" not in r.output and "range" not in r.output
    assert len(pd.read_csv(out)) == 40


def test_in_range_file_prints_no_warning(model_root, tmp_path):
    r = score(model_root, preprocess.PENGUINS_CSV, tmp_path / "scored.csv")
    assert r.exit_code == 0 and "warning" not in r.output


def test_nullable_marks_a_feature_without_missing_values(tmp_path, diabetes_csv):
    root = tmp_path / "models"
    r = CliRunner().invoke(
        main,
        [
            *("train", "--data", str(diabetes_csv), "--target", "target", "--name", "diabetes"),
            *("--model-root", str(root), "--nullable", "bmi", "--nullable", "age"),
        ],
    )
    assert r.exit_code == 0, r.output
    assert "null accepted at serving (--nullable; the pipeline imputes it): bmi, age" in r.output
    card = json.loads((root / "diabetes" / "1" / "metadata.json").read_text())
    nullable = {f["name"]: f["nullable"] for f in card["features"]}
    assert nullable["bmi"] and nullable["age"] and not nullable["bp"]
    assert card["training"]["marked_nullable"] == ["bmi", "age"]
    service = build_scoring(Settings(model_root=root, model_name="diabetes"))
    row = {name: 0.0 for name in service.schema.names}
    v1 = V1Protocol(service)
    imputed = v1.predict_instances([{**row, "bmi": None}])  # the imputer fills it in
    assert imputed["prediction"][0] is not None
    with pytest.raises(InvalidInput, match="null is not accepted"):
        v1.predict_instances([{**row, "bp": None}])


def test_nullable_naming_no_feature_is_a_clear_error(tmp_path, diabetes_csv):
    r = CliRunner().invoke(
        main,
        [
            *("train", "--data", str(diabetes_csv), "--target", "target", "--name", "diabetes"),
            *("--model-root", str(tmp_path), "--nullable", "bmj"),
        ],
    )
    assert r.exit_code != 0
    assert "--nullable 'bmj' is not a feature" in r.output
    assert not (tmp_path / "diabetes").exists()
