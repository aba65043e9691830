"""Fixtures of the engine tests: one 100,000-row file scored once by ``ml-api predict``, one Spark.

The Spark session is one per test session (``local[2]``, two shuffle partitions, no UI): its
start-up costs seconds, so every Spark test shares it. Without Java the Spark tests skip with the
install command (they fail when ``CI`` is set), as every optional tool does (``tests/tools.py``).
"""

from __future__ import annotations

import glob
import os
import sys
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from ml_api import preprocess
from ml_api.cli import main
from tests import tools

ROWS = 100_000


def predict(model_root: Path, *args: object) -> object:
    """``ml-api predict`` in this process, with the test model root."""
    argv = ["predict", "--model-root", str(model_root), *(str(a) for a in args)]
    return CliRunner().invoke(main, argv, catch_exceptions=False)


def csv_lines(directory: Path) -> list[str]:
    """A directory of CSV part files as one file's lines: the first header, every part's rows."""
    lines: list[str] = []
    for i, part in enumerate(sorted(glob.glob(str(directory / "part-*.csv")))):
        text = Path(part).read_text().splitlines()
        lines += text if i == 0 else text[1:]
    return lines


@pytest.fixture(scope="session")
def big_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """100,000 penguins rows (resampled; an ``id`` column first; empty ``sex`` cells kept)."""
    source = pd.read_csv(preprocess.PENGUINS_CSV, dtype=str, keep_default_na=False)
    frame = source.sample(n=ROWS, replace=True, random_state=0).reset_index(drop=True)
    frame.insert(0, "id", [str(i) for i in range(1, ROWS + 1)])
    path = tmp_path_factory.mktemp("engines") / "penguins-100k.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.fixture(scope="session")
def big_cli_csv(big_csv: Path, model_root: Path) -> Path:
    """``big_csv`` scored by ``ml-api predict`` (the reference every engine must repeat)."""
    out = big_csv.with_name("scored-by-cli.csv")
    result = predict(model_root, "--input", big_csv, "--output", out, "--quiet")
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="session")
def bad_csv(tmp_path_factory: pytest.TempPathFactory, big_csv: Path) -> Path:
    """``big_csv`` with refused rows: data row 3 (island), 60001 (two cells), 99999 (-inf)."""
    frame = pd.read_csv(big_csv, dtype=str, keep_default_na=False)
    frame.loc[2, "island"] = "Atlantis"
    frame.loc[60000, ["bill_length_mm", "sex"]] = ["5O", "robot"]
    frame.loc[99998, "body_mass_g"] = "-inf"
    path = tmp_path_factory.mktemp("engines-bad") / "penguins-bad.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.fixture(scope="session")
def spark():
    """One local Spark session for the whole test session (skipped without Java)."""
    if tools.find_tool("java") is None:
        tools.missing("java")
    pytest.importorskip("pyspark", reason="pip install 'ml-api[spark]'")
    import warnings

    from pyspark.sql import SparkSession

    from ml_api.engines.spark import PANDAS_WARNING

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", PANDAS_WARNING, FutureWarning)
        session = (
            SparkSession.builder.master("local[2]")
            .appName("ml-api tests")
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.sql.shuffle.partitions", "2")
            .config("spark.driver.memory", "1g")
            .getOrCreate()
        )
    session.sparkContext.setLogLevel("OFF")
    yield session
    session.stop()
