"""``ml-api train`` without the ``train`` extra (a serving-only installation, like the image):
one line naming the missing libraries and the extra, exit 1, nothing written, no traceback."""

from __future__ import annotations

import importlib.util

import pytest
from click.testing import CliRunner

from ml_api.cli import main
from ml_api.cli.common import TRAINING_MODULES


@pytest.mark.parametrize("absent", [("matplotlib",), TRAINING_MODULES])
def test_train_names_the_missing_training_libraries(monkeypatch, tmp_path, absent):
    real_find_spec = importlib.util.find_spec

    def find_spec(name, *args, **kwargs):
        return None if name in absent else real_find_spec(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    result = CliRunner().invoke(main, ["train", "--model-root", str(tmp_path / "models")])
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    line = result.output.strip()
    assert line.startswith("ml-api: error: training needs " + ", ".join(absent) + ",")
    assert "pip install 'ml-api[train]'" in line
    assert not (tmp_path / "models").exists()


def test_the_train_extra_holds_every_training_module():
    # What the check asks for is what the extra installs (the image's builder stage reads it).
    import tomllib
    from pathlib import Path

    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    extra = pyproject["project"]["optional-dependencies"]["train"]
    names = {req.split(">")[0].split("=")[0].split("<")[0].strip() for req in extra}
    assert names == set(TRAINING_MODULES)
    deps = {
        d.split(">")[0].split("=")[0].split("<")[0].strip()
        for d in pyproject["project"]["dependencies"]
    }
    assert not deps & names  # never a serving dependency too
