"""First-run friction (issue 15, item 6): a busy port, an old Python, slow imports, batch output."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from ml_api import cli
from ml_api.cli.train import has_version
from ml_api.core.model.versions import DEFAULT_ALIAS, list_versions

ROOT = Path(__file__).resolve().parents[2]


def test_a_busy_port_is_one_line_naming_it_and_port(model_root, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = subprocess.run(
            [sys.executable, "-m", "ml_api.cli", "serve", "--host", "127.0.0.1",
             "--port", str(port), "--model-root", str(model_root)],
            capture_output=True, text=True, timeout=120, cwd=tmp_path, check=False,
        )  # fmt: skip
    assert proc.returncode == 1
    lines = (proc.stdout + proc.stderr).splitlines()
    assert len(lines) == 1, lines
    message = json.loads(lines[0])["message"]
    assert f"port {port} on 127.0.0.1 is already in use" in message and "PORT=" in message


def test_help_and_train_if_missing_import_neither_pandas_nor_sklearn(model_root):
    code = (
        "import sys\n"
        "from ml_api.cli import main\n"
        "for argv in (['--help'], ['train', '--if-missing', '--model-root', sys.argv[1]]):\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit as exc:\n"
        "        assert exc.code in (0, None), exc.code\n"
        "heavy = [m for m in ('pandas', 'sklearn', 'numpy', 'scipy') if m in sys.modules]\n"
        "print('heavy:', heavy)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(model_root)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "not retraining" in proc.stdout
    assert "heavy: []" in proc.stdout


def test_the_cli_copies_agree_with_the_core(model_root, tmp_path):
    assert cli.DEFAULT_ALIAS == DEFAULT_ALIAS
    assert has_version(model_root, "penguins") == bool(list_versions(model_root, "penguins"))
    (tmp_path / "m" / "1").mkdir(parents=True)  # a version without its card is not one
    assert has_version(tmp_path, "m") == bool(list_versions(tmp_path, "m")) is False


def test_make_refuses_an_old_python_before_installing(tmp_path):
    fake = tmp_path / "python3.10"
    fake.write_text(
        '#!/bin/sh\n[ "$1" = "--version" ] && echo "Python 3.10.12" && exit 0\nexit 1\n'
    )
    fake.chmod(0o755)
    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
    for name in ("pyproject.toml", "constraints.txt"):
        (tmp_path / name).write_text("")
    proc = subprocess.run(
        ["make", "--no-print-directory", f"PYTHON={fake}", "install"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode != 0
    assert "ml-api needs Python 3.11 or newer" in proc.stderr and "Python 3.10.12" in proc.stderr
    assert not (tmp_path / ".venv").exists()  # stopped before venv and pip


def test_batch_output_keeps_the_input_columns_as_written(model_root, tmp_path, penguins_frame):
    text = preprocess_text(penguins_frame.head(12))
    src = tmp_path / "in.csv"
    src.write_text(text)
    out = tmp_path / "out.csv"
    r = CliRunner().invoke(
        cli.main,
        ["predict", "--input", str(src), "--output", str(out), "--model-root", str(model_root)],
    )
    assert r.exit_code == 0, r.output
    written = out.read_text().splitlines()
    original = text.splitlines()
    n_input = len(original[0].split(","))
    for before, after in zip(original, written, strict=True):
        assert after.split(",")[:n_input] == before.split(","), (before, after)
    assert "\n1932," in text and "\n1932," in out.read_text()  # not 1932.0
    assert out.read_text().count(",02134,") == 12  # the zip code keeps its zero


def preprocess_text(frame) -> str:
    """The rows as a user's file would have them: an id with a gap, a zip with a leading zero."""
    frame = frame.copy()
    frame.insert(0, "row_id", [str(1925 + i) for i in range(len(frame))])
    frame.loc[3, "row_id"] = ""  # an integer column with a gap
    frame.loc[7, "row_id"] = "1932"
    frame["zip"] = "02134"
    frame["body_mass_g"] = frame["body_mass_g"].map(lambda v: "" if v != v else f"{v:.0f}")
    return frame.to_csv(index=False, lineterminator="\n")


@pytest.mark.skipif(os.name != "posix", reason="uses /bin/sh")
def test_the_python_check_is_the_first_step_of_install():
    makefile = (ROOT / "Makefile").read_text()
    recipe = makefile.split("$(VENV)/.installed: pyproject.toml constraints.txt\n", 1)[1]
    assert recipe.index("sys.version_info < (3, 11)") < recipe.index("-m venv")
