"""The layers hold: import-linter's contracts (``[tool.importlinter]`` in pyproject.toml) pass.

Layers, bottom to top: ``ml_api.settings`` < ``ml_api.core`` < ``ml_api.composition`` (and
``ml_api.preprocess``) < transports and training (``api``, ``serving``, ``train``, ``predict``) <
``ml_api.cli``; inside the core, its ground floor < ``model`` < ``runtimes`` < the per-request
pieces < ``service`` < ``protocols`` and ``pages``; the core imports no web framework. No module
of the package takes part in an import cycle (grimp's graph, the one import-linter builds).
"""

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import grimp

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


def import_cycles(package: str = "ml_api") -> list[list[str]]:
    """Every import edge of ``package`` that lies on a cycle, as the shortest cycle through it.

    An edge ``a -> b`` lies on a cycle exactly when ``b`` imports ``a`` back, directly or not;
    so the package has no strongly connected component of more than one module exactly when
    this is empty. Imports inside functions and under ``TYPE_CHECKING`` count (grimp's graph).
    """
    graph = grimp.build_graph(package, cache_dir=None)
    cycles = []
    for importer in sorted(graph.modules):
        for imported in sorted(graph.find_modules_directly_imported_by(importer)):
            back = graph.find_shortest_chain(importer=imported, imported=importer)
            if back is not None:
                cycles.append([importer, *back])
    return cycles


def test_no_import_cycle_anywhere_in_the_package():
    assert import_cycles() == []


def _copy_with(tmp_path: Path, module: str, line: str) -> dict[str, str]:
    """A copy of the package (and pyproject.toml) with ``line`` appended to one module."""
    shutil.copytree(ROOT / "src" / "ml_api", tmp_path / "src" / "ml_api")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    path = tmp_path / "src" / "ml_api" / module
    path.write_text(path.read_text() + f"\n{line}  # noqa\n")
    return {"PYTHONPATH": str(tmp_path / "src"), "PATH": str(LINT_IMPORTS.parent)}


def test_a_cycle_and_a_core_layer_broken_are_both_found(tmp_path):
    """The same checks, run on a copy whose model schema imports the service, fail: the schema
    is below the service (a layer broken) and the service imports the schema (a cycle)."""
    env = _copy_with(tmp_path, "core/model/schema.py", "import ml_api.core.service")
    result = _lint(tmp_path, env)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Core: " in result.stdout and "BROKEN" in result.stdout.split("Core: ")[1]
    assert "ml_api.core.model.schema -> ml_api.core.service" in result.stdout
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); sys.path.insert(0, sys.argv[2])\n"
        "from tests.core.test_boundaries import import_cycles\n"
        "print(sorted({m for cycle in import_cycles() for m in cycle}))\n"
    )
    found = subprocess.run(
        [sys.executable, "-c", code, str(ROOT), env["PYTHONPATH"]],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert "'ml_api.core.model.schema'" in found.stdout
    assert "'ml_api.core.service'" in found.stdout


def test_a_new_core_module_must_be_placed_in_a_core_layer(tmp_path):
    env = _copy_with(tmp_path, "core/errors.py", "")
    (tmp_path / "src" / "ml_api" / "core" / "stray.py").write_text('"""Not in any layer."""\n')
    result = _lint(tmp_path, env)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "ml_api.core.stray" in result.stdout + result.stderr
