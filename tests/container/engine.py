"""Driving a real Docker Engine from tests: the ``docker`` CLI, host networking, loopback only.

The engine here has no bridge network (see ``shared/tools/container-engine``), so every container
runs with ``--network host`` on its own free port and is reached at 127.0.0.1. Names carry a random
per-session prefix so several people (or CI runs) sharing one engine do not collide.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import requests

from tests.tools import find_tool

ROOT = Path(__file__).resolve().parents[2]
SESSION_ID = uuid.uuid4().hex[:8]
"""Random suffix for this test session's image tag, container names and registry paths."""

REPORT: dict[str, Any] = {}
"""Measurements printed at the end of the run (``pytest_terminal_summary`` in conftest.py)."""


_PORTS_GIVEN: set[int] = set()


def free_port() -> int:
    """A free TCP port on 127.0.0.1, never the same one twice in a session."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _PORTS_GIVEN:
            _PORTS_GIVEN.add(port)
            return port


def docker(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
    """Run ``docker ARGS`` and return the finished process (text output captured).

    Raises:
        AssertionError: ``check`` is true and the command failed (its output is in the message).
    """
    proc = subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"docker {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


def engine_unavailable_reason() -> str | None:
    """Return why no Docker Engine can be used, or ``None`` when one answers."""
    if find_tool("docker") is None:
        return "the docker CLI is not installed"
    try:
        proc = docker("version", "--format", "{{.Server.Version}}", timeout=20, check=False)
    except subprocess.TimeoutExpired:
        return "docker version did not answer within 20 s"
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return f"docker version failed: {last}"
    return None


def image_exists(ref: str) -> bool:
    """Whether the engine has an image with this reference."""
    return docker("image", "inspect", ref, check=False).returncode == 0


def inspect_image(ref: str) -> dict[str, Any]:
    """``docker image inspect`` of one image, as a dict."""
    return json.loads(docker("image", "inspect", ref).stdout)[0]


class Container:
    """One container of the image under test, started detached with host networking.

    Args:
        image: Image reference.
        name: Container name (made unique by the caller).
        port: Value for ``PORT``: the port the server binds on the host's loopback.
        env: More environment variables.
        volumes: ``host:container[:ro]`` bind mounts.
        extra_args: More ``docker run`` arguments (before the image).
        read_only: Run with ``--read-only --tmpfs /tmp`` (the hardened setting; default).
    """

    def __init__(
        self,
        image: str,
        name: str,
        port: int,
        env: dict[str, str] | None = None,
        volumes: Sequence[str] = (),
        extra_args: Sequence[str] = (),
        read_only: bool = True,
    ) -> None:
        self.name = name
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        args = ["run", "--detach", "--name", name, "--network", "host", "-e", f"PORT={port}"]
        if read_only:
            args += ["--read-only", "--tmpfs", "/tmp"]
        for key, value in (env or {}).items():
            args += ["-e", f"{key}={value}"]
        for volume in volumes:
            args += ["-v", volume]
        docker(*args, *extra_args, image)

    def state(self) -> dict[str, Any]:
        """``State`` from ``docker inspect`` (Status, Running, ExitCode, OOMKilled, Health...)."""
        return json.loads(docker("inspect", "--format", "{{json .State}}", self.name).stdout)

    def logs(self) -> str:
        """Everything the container wrote to stdout and stderr, interleaved as docker stored it."""
        proc = subprocess.run(
            ["docker", "logs", self.name],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=60,
            check=False,
        )
        return proc.stdout

    def log_lines(self) -> list[str]:
        """Non-empty log lines."""
        return [line for line in self.logs().splitlines() if line.strip()]

    def exec(self, *cmd: str, check: bool = True) -> subprocess.CompletedProcess:
        """Run a command inside the running container."""
        return docker("exec", self.name, *cmd, check=check)

    def wait_ready(self, timeout: float = 120.0) -> None:
        """Poll ``GET /ready`` until 200; raise with the logs if the container exits or never is.

        Raises:
            AssertionError: The container stopped, or was not ready within ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if requests.get(self.url + "/ready", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            state = self.state()
            if not state["Running"]:
                raise AssertionError(
                    f"container {self.name} exited with {state['ExitCode']}:\n{self.logs()}"
                )
            time.sleep(0.25)
        raise AssertionError(f"container {self.name} not ready after {timeout} s:\n{self.logs()}")

    def wait_exit(self, timeout: float = 120.0) -> dict[str, Any]:
        """Wait until the container has stopped by itself; return its final state.

        Raises:
            AssertionError: Still running after ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.state()
            if not state["Running"] and state["Status"] in ("exited", "dead"):
                return state
            time.sleep(0.25)
        raise AssertionError(f"container {self.name} still running after {timeout} s")

    def stop(self, grace_seconds: int = 30) -> float:
        """``docker stop -t GRACE``: SIGTERM, then SIGKILL after the grace period.

        Returns:
            Wall-clock seconds ``docker stop`` took.
        """
        started = time.monotonic()
        docker("stop", "--time", str(grace_seconds), self.name, timeout=grace_seconds + 60)
        return time.monotonic() - started

    def remove(self) -> None:
        """Remove the container, running or not (idempotent)."""
        docker("rm", "--force", self.name, check=False)

    def __enter__(self) -> Container:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()
