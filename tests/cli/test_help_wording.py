"""Every command's ``--help`` says which version it uses without ``--version``."""

from __future__ import annotations

import re

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
    assert set(WITH_VERSION) == {"serve", "predict", "info", "card", "drift"}


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
