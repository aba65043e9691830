"""The core type-checks under mypy's strict flags ([tool.mypy] overrides in pyproject.toml)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_core_passes_strict_mypy():
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "-p", "ml_api.core"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Success: no issues found" in result.stdout
