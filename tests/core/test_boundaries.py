"""The layers hold: import-linter's contracts (``[tool.importlinter]`` in pyproject.toml) pass.

Layers, bottom to top: ``ml_api.settings`` < ``ml_api.core`` < ``ml_api.composition`` (and
``ml_api.preprocess``) < transports and training (``api``, ``serving``, ``train``, ``predict``) <
``ml_api.cli``; the core imports no web framework.
"""

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
CONTRACTS = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]


def _lint(cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def test_import_contracts_are_kept():
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    names = [c["name"] for c in CONTRACTS["contracts"]]
    assert len(names) >= 3
    for name in names:
        assert f"{name} KEPT" in result.stdout


def test_a_core_module_importing_a_framework_breaks_the_contracts(tmp_path):
    """The same contracts, run on a copy of the package whose core imports Flask, fail."""
    shutil.copytree(ROOT / "src" / "ml_api", tmp_path / "src" / "ml_api")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    errors = tmp_path / "src" / "ml_api" / "core" / "errors.py"
    errors.write_text(errors.read_text() + "\nimport flask  # noqa\nimport ml_api.cli  # noqa\n")
    env = {"PYTHONPATH": str(tmp_path / "src"), "PATH": str(LINT_IMPORTS.parent)}
    result = _lint(tmp_path, env)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "The core imports no web framework or server BROKEN" in result.stdout
    assert "ml_api.core.errors -> flask" in result.stdout
    assert "Layers: " in result.stdout and "BROKEN" in result.stdout.split("Layers: ")[1]
