"""nginx as a stand-in for a Kubernetes Service/Ingress, and a bounded load generator.

``Balancer`` runs Debian's nginx as a foreground process of the test (its own prefix, config and
logs in a temporary directory; never the system service) on a free 127.0.0.1 port, in front of
a set of ``127.0.0.1:<port>`` upstreams that can be changed while it runs (``set_upstreams``:
rewrite the config, SIGHUP, as an Ingress controller does when a Service's endpoints change).
The proxy settings (body limit, timeouts, what is retried and how often) are read from the
annotations of ``deploy/k8s/overlays/production/ingress.yaml`` and written as the nginx directives
ingress-nginx makes of them, so a change to the Ingress is what these tests run.

``Load`` sends ``POST /predict`` from a few threads, each with its own ``requests.Session``, until
stopped, a request budget is spent, or a deadline passes; it counts every outcome.
"""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests
import yaml

from tests.container.engine import free_port
from tests.tools import find_tool

INGRESS = Path(__file__).resolve().parents[2] / "deploy/k8s/overlays/production/ingress.yaml"
PREFIX = "nginx.ingress.kubernetes.io/"
# ingress-nginx annotation -> (nginx directive, unit appended to the annotation's value)
DIRECTIVES = {
    "proxy-connect-timeout": ("proxy_connect_timeout", "s"),
    "proxy-read-timeout": ("proxy_read_timeout", "s"),
    "proxy-send-timeout": ("proxy_send_timeout", "s"),
    "proxy-next-upstream": ("proxy_next_upstream", ""),
    "proxy-next-upstream-tries": ("proxy_next_upstream_tries", ""),
    "proxy-next-upstream-timeout": ("proxy_next_upstream_timeout", "s"),
}


def ingress_annotations() -> dict[str, str]:
    """The production Ingress's ingress-nginx annotations, without their prefix."""
    notes = yaml.safe_load(INGRESS.read_text())["metadata"]["annotations"]
    return {k.removeprefix(PREFIX): str(v) for k, v in notes.items() if k.startswith(PREFIX)}


def proxy_directives(**overrides: str) -> str:
    """The ``location`` directives of the production Ingress (``overrides``: annotation name with
    ``_`` for ``-`` -> value, e.g. a shorter ``proxy_read_timeout="1"`` for a bounded test)."""
    notes = ingress_annotations() | {k.replace("_", "-"): v for k, v in overrides.items()}
    pairs = [(d, f"{notes[a]}{unit}") for a, (d, unit) in DIRECTIVES.items() if a in notes]
    lines = [f"            {directive} {value};" for directive, value in pairs]
    return "\n".join(lines)


CONFIG = """\
worker_processes 1;
{user}
pid {prefix}/nginx.pid;
error_log {prefix}/error.log notice;

events {{
    worker_connections 512;
}}

http {{
    log_format upstreams '$status $request_method $uri upstream=$upstream_addr '
                         'upstream_status=$upstream_status';
    access_log {prefix}/access.log upstreams;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;

    upstream ml_api {{
{servers}
        # Idle connections kept to the upstreams (ingress-nginx's default is 320). gunicorn's
        # sync workers close after each response, so here they are rarely reused.
        keepalive 16;
    }}

    server {{
        listen 127.0.0.1:{port};
        client_max_body_size {body_size};
        # One request per client connection: a reload (SIGHUP, how the upstream set changes here)
        # makes old workers close idle kept-alive client connections, and a request sent on one
        # at that instant dies with "connection reset" before reaching any replica: a harness
        # artifact (ingress-nginx changes endpoints without a reload), not a server failure.
        keepalive_timeout 0;

        location / {{
            proxy_pass http://ml_api;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
{proxy}
        }}
    }}
}}
"""


class Balancer:
    """A foreground nginx process proxying ``127.0.0.1:<port>`` to the given upstream ports.

    Args:
        prefix: Empty directory for the config, pid file, logs and temp files.
        upstreams: Ports of the replicas on 127.0.0.1.
        overrides: Ingress annotations to replace (see :func:`proxy_directives`).

    Raises:
        AssertionError: nginx refuses the config or does not start listening.
    """

    def __init__(self, prefix: Path, upstreams: Iterable[int], **overrides: str) -> None:
        self.overrides = overrides
        self.exe = find_tool("nginx") or "/usr/sbin/nginx"
        self.prefix = prefix
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.upstreams: list[int] = []
        self._write(upstreams)
        self._run("-t")
        self.proc = subprocess.Popen(
            [self.exe, *self._args(), "-g", "daemon off;"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self._wait_listening()

    def _args(self) -> list[str]:
        conf = self.prefix / "nginx.conf"
        return ["-p", str(self.prefix), "-c", str(conf), "-e", str(self.prefix / "error.log")]

    def _write(self, upstreams: Iterable[int]) -> None:
        self.upstreams = list(upstreams)
        servers = "\n".join(
            # max_fails/fail_timeout: one failed attempt takes a replica out for 10 s, as
            # ingress-nginx's defaults (max_fails=0 there, but endpoints are removed instead).
            f"        server 127.0.0.1:{p} max_fails=1 fail_timeout=10s;"
            for p in self.upstreams
        )
        # Running as root, nginx's workers would switch to `nobody`; keep them as this user so
        # they can write the temporary directory.
        user = "user root;" if os.geteuid() == 0 else ""
        config = CONFIG.format(
            user=user,
            prefix=self.prefix,
            servers=servers,
            port=self.port,
            body_size=ingress_annotations()["proxy-body-size"],
            proxy=proxy_directives(**self.overrides),
        )
        (self.prefix / "nginx.conf").write_text(config)

    def _run(self, *args: str) -> None:
        proc = subprocess.run(
            [self.exe, *self._args(), *args], capture_output=True, text=True, timeout=30
        )
        assert proc.returncode == 0, f"nginx {' '.join(args)}: {proc.stderr}"

    def _wait_listening(self, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"nginx exited: {self.proc.stderr.read().decode()}")
            try:
                requests.get(self.url + "/health", timeout=2)
                return
            except requests.ConnectionError:
                time.sleep(0.1)
        raise AssertionError(f"nginx not listening on {self.url} after {timeout} s")

    def set_upstreams(self, upstreams: Iterable[int]) -> None:
        """Replace the upstream set and reload (SIGHUP): new workers take the new set, old
        workers finish the requests they have."""
        self._write(upstreams)
        self._run("-t")
        generation = self._reloads()
        self.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while self._reloads() == generation and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)  # the old worker stops accepting; the new one takes over

    def _reloads(self) -> int:
        log = self.prefix / "error.log"
        return log.read_text().count("reconfiguring") if log.exists() else 0

    def access_log(self) -> list[str]:
        """Lines of the access log: ``status method uri upstream=... upstream_status=...``."""
        path = self.prefix / "access.log"
        return path.read_text().splitlines() if path.exists() else []

    def upstream_errors(self) -> collections.Counter[str]:
        """Failed upstream attempts in nginx's error log, by kind.

        ``not sent``: the connection was refused or timed out, the request never reached the
        replica (nginx retries these for any method). ``sent, then reset``: the replica reset
        the connection after nginx had sent the request (retried for POST only because of
        ``non_idempotent``; without it the client would get a 502).
        """
        path = self.prefix / "error.log"
        counts: collections.Counter[str] = collections.Counter()
        for line in path.read_text().splitlines() if path.exists() else []:
            if "[error]" not in line or "upstream" not in line:
                continue
            if "connect() failed" in line or "while connecting to upstream" in line:
                counts["not sent"] += 1
            else:
                counts["sent, then reset"] += 1
        return counts

    def stop(self) -> None:
        """SIGQUIT (graceful), then SIGKILL if nginx is still there after 10 s."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stderr is not None:
            self.proc.stderr.close()  # or the pipe is left to the garbage collector (a warning)


class Load:
    """``POST /predict`` from ``threads`` threads until stopped, bounded in count and time.

    Args:
        url: The balancer's base URL.
        body: JSON body for every request.
        threads: Concurrent clients (each its own keep-alive connection to nginx).
        max_requests: Total request budget; the load stops when it is spent.
        max_seconds: The load stops after this long regardless.
    """

    def __init__(
        self,
        url: str,
        body: dict[str, Any],
        threads: int = 4,
        max_requests: int = 20_000,
        max_seconds: float = 300.0,
    ) -> None:
        self.url = url + "/predict"
        self.body = body
        self.threads = threads
        self.max_requests = max_requests
        self.deadline = time.monotonic() + max_seconds
        self.outcomes: collections.Counter[str] = collections.Counter()
        self.failures: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="load")
        self._futures = [self._pool.submit(self._client) for _ in range(threads)]

    def _client(self) -> None:
        with requests.Session() as http:
            while not self._stop.is_set() and time.monotonic() < self.deadline:
                with self._lock:
                    if sum(self.outcomes.values()) >= self.max_requests:
                        return
                try:
                    response = http.post(self.url, json=self.body, timeout=30)
                    outcome = str(response.status_code)
                    detail = response.text[:200]
                except requests.RequestException as exc:
                    outcome, detail = type(exc).__name__, str(exc)[:200]
                with self._lock:
                    self.outcomes[outcome] += 1
                    if outcome != "200":
                        self.failures.append(f"{outcome}: {detail}")

    @property
    def total(self) -> int:
        with self._lock:
            return sum(self.outcomes.values())

    def wait_for(self, n: int, timeout: float = 60.0) -> None:
        """Block until at least ``n`` requests have completed (or ``timeout`` seconds pass)."""
        deadline = time.monotonic() + timeout
        while self.total < n and time.monotonic() < deadline:
            time.sleep(0.05)

    def stop(self) -> collections.Counter[str]:
        """Stop the clients, wait for them, and return the outcome counts."""
        self._stop.set()
        for future in self._futures:
            future.result(timeout=60)
        self._pool.shutdown()
        return self.outcomes
