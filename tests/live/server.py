"""Start ``ml-api serve`` as a real process on a free loopback port and stop it with SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import requests


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """A real ``ml-api serve`` process bound to 127.0.0.1 on a free port.

    Args:
        model_root: Where the model is.
        framework: ``flask`` or ``django``.
        workers: gunicorn workers.
        env: Extra environment variables.
        argv: Runs this command (given the port) instead of ``ml-api serve``, e.g. gunicorn
            on a WSGI module.
    """

    def __init__(
        self,
        model_root: Path,
        framework: str = "flask",
        workers: int = 2,
        env: dict[str, str] | None = None,
        args: tuple[str, ...] = (),
        argv: Callable[[int], list[str]] | None = None,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # A unique file per server (two checkouts on one machine can reuse a port number).
        fd, name = tempfile.mkstemp(prefix=f"ml-api-live-{self.port}-", suffix=".log")
        self.log_path = Path(name)
        cmd = (
            argv(self.port)
            if argv
            else [
                sys.executable,
                "-m",
                "ml_api.cli",
                "serve",
                "--framework",
                framework,
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                str(workers),
                "--model-root",
                str(model_root),
                *args,
            ]
        )
        # The same limits as the ``settings`` fixture, so the request table means the same here.
        full_env = {
            **{k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"},
            "ML_API_MODEL_ROOT": str(model_root),
            "PYTHONUNBUFFERED": "1",
            "ML_API_MAX_INSTANCES": "50",
            "ML_API_MAX_BODY_BYTES": "65536",
            **(env or {}),
        }
        self.server_name = full_env.get("ML_API_SERVER", "gunicorn")
        """``ML_API_SERVER`` of the process: ``gunicorn`` (the default) or ``granian``."""
        self.log = os.fdopen(fd, "wb")  # closed in terminate()
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=full_env)

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Poll ``/ready`` until it answers 200; else stop the server, raise with its log."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                message = f"server exited with {self.proc.returncode}:\n{self.output()}"
                self.terminate()  # closes the log file
                raise RuntimeError(message)
            try:
                if requests.get(self.url + "/ready", timeout=1).status_code == 200:
                    return
            except (requests.ConnectionError, requests.Timeout):
                pass  # not listening yet, or a worker still loading
            time.sleep(0.1)
        message = f"server not ready after {timeout}s:\n{self.output()}"
        self.terminate()
        raise RuntimeError(message)

    def terminate(self, timeout: float = 30.0) -> int:
        """Send SIGTERM and wait for the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self.log.close()

    def output(self) -> str:
        if not self.log.closed:
            self.log.flush()
        return self.log_path.read_text(errors="replace")

    def __enter__(self) -> LiveServer:
        self.wait_ready()
        return self

    def __exit__(self, *exc: object) -> None:
        self.terminate()


@contextmanager
def both_frameworks(model_root: Path, env: dict[str, str]) -> Iterator[dict[str, LiveServer]]:
    """One single-worker server per framework with the same ``env``, ready, stopped on exit."""
    started = {fw: LiveServer(model_root, fw, workers=1, env=env) for fw in ("flask", "django")}
    try:
        for srv in started.values():
            srv.wait_ready()
        yield started
    finally:
        for srv in started.values():
            srv.terminate()
