"""Every command's ``--help`` says which version it uses without ``--version``."""

from __future__ import annotations

import json
import re
from importlib import metadata

import click
import pytest
from click.testing import CliRunner

from ml_api.cli import main

COMMANDS = sorted(main.commands)
WITH_VERSION = sorted(
    c for c, cmd in main.commands.items() if any("--version" in p.opts for p in cmd.params)
)
DEFAULT = "default: ML_API_MODEL_VERSION, else the 'production' alias if set, else the newest"


def _help(command: str) -> str:
    r = CliRunner().invoke(main, [command, "--help"], terminal_width=100)
    assert r.exit_code == 0, r.output
    return re.sub(r"\s+", " ", r.output)  # click wraps the text: compare it as one line


def test_the_commands_that_load_a_version_are_the_expected_ones():
    assert set(WITH_VERSION) == {"serve", "predict", "info", "card", "drift", "requirements"}


@pytest.mark.parametrize("command", COMMANDS)
def test_help_says_what_loads_without_version(command):
    text = _help(command)
    # "the newest" alone is wrong wherever a production alias is honoured
    assert "Default: the newest" not in text
    assert not re.search(r"default: the newest\b", text, re.IGNORECASE)
    if command in WITH_VERSION:
        assert f"--version TEXT Version or alias ({DEFAULT})." in text


def test_promote_and_versions_name_the_alias_rule():
    assert "the 'production' alias if set, else the newest" in _help("versions")
    assert "``" not in _help("versions") + _help("promote")  # no reST markup on the terminal
    assert "Remove the alias (then the newest version serves)" in _help("promote")


@pytest.mark.parametrize("command", COMMANDS)
def test_every_option_has_help(command):
    """--model-root, --name, --input and --output had none in several commands."""
    bare = [
        p.opts[0]
        for p in main.commands[command].params
        if isinstance(p, click.Option) and not p.help
    ]
    assert bare == []


def test_serve_name_says_it_picks_the_default_model_not_the_only_one():
    text = _help("serve")
    assert "Model to serve" not in text
    assert "The default model: the one POST /predict and the unprefixed paths serve" in text
    assert "every model of the model root is served" in text


def test_ml_api_version():
    r = CliRunner().invoke(main, ["--version"])
    assert r.exit_code == 0
    assert r.output == f"ml-api, version {metadata.version('ml-api')}\n"


def test_versions_takes_name_as_the_other_commands_do(tmp_path):
    from ml_api import preprocess
    from ml_api.train import TrainingOptions, train

    train(
        TrainingOptions(preprocess.PENGUINS_CSV, "species", drop=preprocess.PENGUINS_DROP),
        model_root=tmp_path,
        name="birds",
    )
    positional = CliRunner().invoke(main, ["versions", "birds", "--model-root", str(tmp_path)])
    option = CliRunner().invoke(
        main, ["versions", "--name", "birds", "--model-root", str(tmp_path)]
    )
    assert positional.exit_code == 0, positional.output
    assert option.exit_code == 0 and option.output == positional.output
    both = CliRunner().invoke(
        main, ["versions", "birds", "--name", "fish", "--model-root", str(tmp_path)]
    )
    assert both.exit_code == 2 and "two model names" in both.output


def test_train_says_why_year_is_left_out_without_drop(tmp_path):
    """It printed "year: left out by --drop" when no --drop was passed."""
    default = CliRunner().invoke(main, ["train", "--model-root", str(tmp_path), "--name", "a"])
    assert default.exit_code == 0, default.output
    assert "  year: left out by default for the bundled penguins data" in default.output
    assert "--drop" not in default.output.split("left out (")[1].split("\n\n")[0]
    given = CliRunner().invoke(
        main, ["train", "--model-root", str(tmp_path), "--name", "b", "--drop", "year"]
    )
    assert given.exit_code == 0, given.output
    assert "  year: left out by --drop" in given.output
    # the card says what train said (it said "left out by --drop" for the default too)
    reasons = {}
    for name in ("a", "b"):
        card = json.loads((tmp_path / name / "1" / "metadata.json").read_text())
        reasons[name] = {c["name"]: c["reason"] for c in card["training"]["left_out"]}
    assert reasons["a"]["year"].startswith("left out by default for the bundled penguins data")
    assert reasons["b"]["year"] == "left out by --drop"
