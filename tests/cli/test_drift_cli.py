"""``ml-api drift``, run as the real command: CSV, Parquet and prediction-log input, the JSON and
HTML reports, and the exit status of ``--fail-above``."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from ml_api.core.model.profile import PREDICTION
from tests.cli.test_leading_zero_codes import cli
from tests.live.test_drift_live import DRIFTED, records, samples


def run(model_root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``ml-api drift ARGS`` in a subprocess with ``model_root`` as the model root."""
    return cli(model_root, "drift", *args)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base, drifted = samples()
    folder = tmp_path_factory.mktemp("drift")
    out = {"base": folder / "base.csv", "drifted": folder / "drifted.parquet"}
    base.to_csv(out["base"], index=False)
    drifted.to_parquet(out["drifted"])
    return out


def test_the_drifted_features_rank_first_and_fail_the_gate(
    model_root: Path, files: dict[str, Path], tmp_path: Path
) -> None:
    html, report = tmp_path / "drift.html", tmp_path / "drift.json"
    args = ["--input", str(files["drifted"]), "--report", str(html), "--json", str(report)]
    proc = run(model_root, *args, "--fail-above", "0.25")
    assert proc.returncode == 1, proc.stderr
    assert "drift above 0.25: island, body_mass_g" in proc.stderr
    assert f"wrote the JSON report to {report}\n" in proc.stderr
    assert f"wrote the HTML report to {html}\n" in proc.stderr
    assert re.search(r"^island: [0-9.]+ \(2000 values\)$", proc.stderr, re.M), proc.stderr
    data = json.loads(report.read_text())
    scores = [f["score"] for f in data["features"]]
    assert scores == sorted(scores, reverse=True)
    assert {f["feature"] for f in data["features"][:2]} == DRIFTED
    assert all(s < 0.1 for s in scores[2:]), data["features"]
    assert data["failed"] == ["island", "body_mass_g"] and data["rows"] == 2000
    assert data["model"] == {"name": "penguins", "version": "1"}
    mass = next(f for f in data["features"] if f["feature"] == "body_mass_g")
    assert mass["bins"][0]["range"].startswith("< ") and len(mass["bins"]) == 11
    page = html.read_text()
    assert page.count("<svg") == 6 and page.index("body_mass_g") < page.index("bill_depth_mm")
    # without the gate: exit 0, the same ranking on stdout
    proc = run(model_root, "--input", str(files["drifted"]))
    assert proc.returncode == 0, proc.stderr
    assert {line.split(":")[0] for line in proc.stdout.splitlines()[:2]} == DRIFTED
    assert "wrote" not in proc.stdout + proc.stderr


def test_training_like_data_passes_the_gate(model_root: Path, files: dict[str, Path]) -> None:
    proc = run(model_root, "--input", str(files["base"]), "--json", "-", "--fail-above", "0.25")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["failed"] == [] and all(f["score"] < 0.1 for f in data["features"])


def test_prediction_log_files_are_read_skipping_other_lines(
    model_root: Path, tmp_path: Path
) -> None:
    _, drifted = samples()
    rows = records(drifted)
    lines = ['{"level": "INFO", "logger": "gunicorn.error", "message": "Booting"}', "not json"]
    for start in range(0, len(rows), 50):
        chunk = rows[start : start + 50]
        record = {
            "log_type": "prediction",
            "model": {"name": "penguins", "version": "1"},
            "instances": [{k: v for k, v in r.items() if k != "sex"} for r in chunk],
            "predictions": ["Gentoo"] * len(chunk),
        }
        lines.append(json.dumps(record))
    (tmp_path / "predictions.jsonl.1").write_text("\n".join(lines[:20]) + "\n")
    (tmp_path / "predictions.jsonl").write_text("\n".join(lines[20:]) + "\n")
    proc = run(
        model_root,
        "--input", str(tmp_path / "predictions.jsonl.1"),
        "--input", str(tmp_path / "predictions.jsonl"),
        "--json", "-",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["rows"] == 2000 and data["not_compared"] == ["sex"]
    names = [f["feature"] for f in data["features"]]
    assert PREDICTION in names and set(names[:3]) == {*DRIFTED, PREDICTION}


@pytest.mark.parametrize(
    ("content", "message"),
    [("", "cannot read"), ("a,b\n1,2\n", "none of the model's features")],
)
def test_unusable_input_is_one_line_exit_2(
    model_root: Path, tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "x.csv"
    path.write_text(content)
    proc = run(model_root, "--input", str(path))
    assert proc.returncode == 2 and message in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_a_model_without_profile_is_said(model_root: Path, tmp_path: Path) -> None:
    pd.DataFrame({"island": ["Biscoe"]}).to_csv(tmp_path / "x.csv", index=False)
    proc = run(model_root, "--input", str(tmp_path / "x.csv"), "--name", "nope")
    assert proc.returncode == 2 and "no model 'nope'" in proc.stderr
