"""tests/tools.py: a missing system tool skips (with the install command) or, in CI, fails."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests import tools

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def bare_path(tmp_path, monkeypatch):
    """PATH is one empty directory, and the virtualenv's bin holds none of the tools asked for."""
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.setattr(tools.sys, "executable", str(empty / "python"))
    return empty


@pytest.mark.parametrize("name", sorted(tools.TOOLS))
def test_a_missing_tool_skips_with_its_install_command(name, bare_path, monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    assert tools.find_tool(name) is None
    with pytest.raises(pytest.skip.Exception) as caught:
        tools.require_tool(name)
    assert name in str(caught.value) and tools.TOOLS[name].install in str(caught.value)


@pytest.mark.parametrize("ci", ["true", "1"])
def test_in_ci_a_missing_tool_fails(bare_path, monkeypatch, ci):
    monkeypatch.setenv("CI", ci)
    with pytest.raises(pytest.fail.Exception, match=r"CI is set.*apt-get install prometheus"):
        tools.require_tool("promtool")


def test_ci_false_is_not_ci(monkeypatch):
    for value in ("", "0", "false"):
        monkeypatch.setenv("CI", value)
        assert not tools.in_ci()


def test_a_tool_on_path_is_found(bare_path):
    exe = bare_path / "promtool"
    exe.write_text("#!/bin/sh\nexit 0\n")
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    assert tools.require_tool("promtool") == str(exe)


def test_chromium_is_found_under_its_other_names_in_order(bare_path):
    """Ubuntu's chromium-browser or a runner's google-chrome stand in; Debian's name wins."""
    for name in ("google-chrome", "chromium-browser", "chromium"):
        exe = bare_path / name
        exe.write_text("#!/bin/sh\nexit 0\n")
        exe.chmod(0o755)
        assert tools.find_tool("chromium") == str(exe)


def test_compose_prefers_v2_and_falls_back_to_docker_compose(bare_path, monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="neither `docker compose`"):
        tools.compose_command()
    legacy = bare_path / "docker-compose"
    legacy.write_text("#!/bin/sh\nexit 0\n")
    legacy.chmod(0o755)
    assert tools.compose_command() == [str(legacy)]
    docker = bare_path / "docker"  # a docker CLI whose compose plugin answers
    docker.write_text('#!/bin/sh\n[ "$1 $2" = "compose version" ] && exit 0\nexit 1\n')
    docker.chmod(0o755)
    assert tools.compose_command() == [str(docker), "compose"]


def test_container_tests_are_opt_in(monkeypatch):
    monkeypatch.delenv(tools.CONTAINER_SWITCH, raising=False)
    assert not tools.containers_opted_in()
    monkeypatch.setenv(tools.CONTAINER_SWITCH, "1")
    assert tools.containers_opted_in()


def test_make_test_collects_container_tests_as_skipped_unless_asked():
    """Without the switch every engine test is skipped with the opt-in reason, none is run."""
    env = {k: v for k, v in os.environ.items() if k not in ("CI", tools.CONTAINER_SWITCH)}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", "--co", "-m",
         "container", "tests/container"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    # -m container opts in: the engine tests are selected (collected, not skipped at collection)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "test_image.py::test_image_configuration" in proc.stdout
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs",
         "tests/container/test_image.py"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "container tests are opt-in: make test-container" in proc.stdout
    assert " passed" not in proc.stdout and "skipped" in proc.stdout
