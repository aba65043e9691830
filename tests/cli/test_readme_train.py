"""README `ml-api train` commands are safe in any order: only penguins data trains penguins.

The commands come from ``tests/readme/commands.py``, which also runs each as written, in order.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from ml_api.cli import main, model_name_for
from tests.readme.commands import units


def readme_train_commands() -> list[list[str]]:
    """Every `ml-api train ...` command of the README and docs/, as argv after ml-api."""
    commands = []
    for unit in units():
        match = re.match(r"(?:\.venv/bin/)?ml-api (train\b.*)", unit.flat)
        if unit.lang == "shell" and match:
            commands.append(shlex.split(match.group(1), comments=True))
    return commands


def own_csv(path: Path, target: str) -> None:
    """A small realistic file: two numeric features, one categorical, the README's target."""
    rng = np.random.default_rng(0)
    n = 120
    frame = pd.DataFrame(
        {
            "rooms": rng.integers(1, 7, n),
            "area": rng.normal(100, 30, n).round(1),
            "city": rng.choice(["north", "south", "east"], n),
        }
    )
    frame[target] = (
        frame["area"] * 1000 + rng.normal(0, 5000, n)
        if target == "price"
        else rng.choice(["yes", "no"], n)
    )
    frame.to_csv(path, index=False)


def test_the_readme_has_train_commands_with_own_data():
    commands = readme_train_commands()
    assert ["train"] in commands
    assert sum("--data" in c for c in commands) >= 2


@pytest.mark.parametrize("order", ["as written", "reversed"])
def test_readme_train_commands_never_replace_the_default_model(tmp_path, monkeypatch, order):
    monkeypatch.chdir(tmp_path)  # the README's relative data paths resolve here
    commands = readme_train_commands()
    if order == "reversed":
        commands = commands[::-1]
    expected_names = {"penguins"}
    for argv in commands:
        if "--data" in argv:
            data = Path(argv[argv.index("--data") + 1])
            own_csv(data, argv[argv.index("--target") + 1])
            given = argv[argv.index("--name") + 1] if "--name" in argv else None
            expected_names.add(given or model_name_for(data))
        result = CliRunner().invoke(
            main, [*argv, "--model-root", str(tmp_path / "models")], catch_exceptions=False
        )
        assert result.exit_code == 0, result.output
        assert "serve it with: ml-api serve --name" in result.output
    models = tmp_path / "models"
    assert {p.name for p in models.iterdir()} == expected_names
    for card in (models / "penguins").glob("*/metadata.json"):
        assert json.loads(card.read_text())["training"]["data_file"] == "penguins.csv"
    assert "houses" in expected_names  # named after houses.csv, not penguins


@pytest.mark.parametrize(
    ("file", "name"),
    [("houses.csv", "houses"), ("My Houses 2024.csv", "My-Houses-2024"), ("a/b.c.csv", "b.c")],
)
def test_model_name_is_the_file_stem(file, name):
    assert model_name_for(Path(file)) == name
