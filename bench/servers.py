"""Starting, probing and stopping the servers under test (each on its own port on 127.0.0.1).

Every server is a process this harness starts; it is stopped with SIGTERM to its PID, and any of
its descendants still alive after that are killed by PID. Nothing else is ever signalled.
"""

from __future__ import annotations

import http.client
import json
import signal
import socket
import subprocess
import time
from pathlib import Path

import psutil

from bench.procs import TreeSample, pin_to, process_tree, sample_tree
from bench.targets import Launch, server_env


class ServerProcess:
    """One server under test.

    Args:
        label: Name for logs (``ml-api-flask/rf``).
        launch: Command, environment, working directory, readiness path.
        port: The TCP port it was told to listen on (127.0.0.1).
        log_path: File receiving its stdout and stderr.
        cpus: CPUs to pin it to (``None``: no pinning).
    """

    def __init__(
        self,
        label: str,
        launch: Launch,
        port: int,
        log_path: Path,
        cpus: tuple[int, ...] | None,
    ) -> None:
        self.label = label
        self.launch = launch
        self.port = port
        self.log_path = log_path
        self.cpus = cpus
        self.proc: subprocess.Popen[bytes] | None = None
        self._log = None

    @property
    def pid(self) -> int:
        """The main process id (the server must be started)."""
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> None:
        """Start the process (output to ``log_path``)."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            self.launch.argv,
            cwd=self.launch.cwd,
            env=server_env(self.launch),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=pin_to(self.cpus),
        )

    def log_tail(self, lines: int = 2) -> str:
        """The last lines of the server's output, for "not available" reasons."""
        try:
            text = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return " | ".join(line.strip()[:200] for line in text[-lines:])

    def wait_ready(self, timeout: float) -> str | None:
        """Wait until the server answers its readiness check.

        Returns:
            ``None`` when ready, else why not (exited, with its log's tail; or timed out).
        """
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return f"server exited with status {self.proc.returncode}: {self.log_tail(1)}"
            if self._is_ready():
                return None
            time.sleep(0.2)
        return f"not ready after {timeout:.0f} s: {self.log_tail(2)}"

    def _is_ready(self) -> bool:
        try:
            if self.launch.ready_path is None:
                socket.create_connection(("127.0.0.1", self.port), timeout=2).close()
                return True
            status, _ = self.request("GET", self.launch.ready_path)
            return status == 200
        except OSError:
            return False

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        """One HTTP request to this server; returns ``(status, body)``."""
        status, _, raw = self.request_full(method, path, body)
        return status, raw

    def request_full(
        self, method: str, path: str, body: bytes | None = None
    ) -> tuple[int, http.client.HTTPMessage, bytes]:
        """One HTTP request to this server; returns ``(status, headers, body)``.

        Raises:
            OSError: The connection failed.
        """
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            headers = {"Content-Type": "application/json"} if body is not None else {}
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            return response.status, response.headers, response.read()
        finally:
            conn.close()

    def probe(self, path: str, body: bytes, kind: str) -> str | None:
        """Send one request as the load generator will, and check the answer.

        Args:
            path: URL path.
            body: Request body (JSON).
            kind: ``seed`` (expects ``prediction``) or ``v2`` (expects ``outputs``).

        Returns:
            ``None`` if it answered 200 with the expected JSON, else why the target is not
            available (a 404 means the endpoint does not exist yet).
        """
        try:
            status, raw = self.request("POST", path, body)
        except OSError as exc:
            return f"POST {path} failed: {exc}"
        snippet = raw[:200].decode(errors="replace")
        if status == 404:
            return f"POST {path} answered 404: endpoint not implemented yet"
        if status != 200:
            return f"POST {path} answered {status}: {snippet}"
        try:
            payload = json.loads(raw)
        except ValueError:
            return f"POST {path} answered 200 with a body that is not JSON: {snippet}"
        key = "prediction" if kind == "seed" else "outputs"
        if not isinstance(payload, dict) or key not in payload:
            return f"POST {path} answered 200 without {key!r}: {snippet}"
        return None

    def sample(self, memory_detail: bool = False) -> TreeSample:
        """CPU time and memory of the server's process tree now."""
        return sample_tree(self.pid, memory_detail)

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM the main process, wait, then kill by PID whatever of its tree is left.

        Returns:
            The main process's exit status (``None`` if it was never started).
        """
        if self.proc is None:
            return None
        tree = process_tree(self.proc.pid)[1:]
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        for child in tree:
            try:
                child.wait(timeout=5)
            except psutil.TimeoutExpired:
                child.kill()
            except psutil.NoSuchProcess:
                pass
        if self._log is not None:
            self._log.close()
        return code
