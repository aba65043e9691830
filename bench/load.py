"""The load generator: ``wrk`` (Debian's package) with ``wrk_post.lua`` for the POST body.

One wrk thread drives all connections (enough for loopback at these rates, and it keeps the load
generator on one CPU). Connections are kept alive when the server allows it; gunicorn's sync
workers close every connection after one response, so wrk reconnects for each request there.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.procs import pin_to

LUA = Path(__file__).resolve().parent / "wrk_post.lua"


class LoadError(RuntimeError):
    """wrk is missing or did not produce a summary."""


def wrk_version() -> str | None:
    """``wrk``'s version line, or ``None`` when it is not on ``PATH``."""
    exe = shutil.which("wrk")
    if exe is None:
        return None
    out = subprocess.run([exe, "-v"], capture_output=True, text=True, timeout=10)
    first = (out.stdout or out.stderr).strip().splitlines()
    return first[0].split(" Copyright")[0] if first else "wrk"


@dataclass(frozen=True)
class LoadResult:
    """What one wrk run measured.

    Attributes:
        requests: Responses received (any status).
        seconds: Measured duration.
        errors: ``connect``, ``read``, ``write``, ``timeout`` (socket errors), ``non2xx``
            (responses whose status is not 2xx) and ``status_4xx_5xx`` (wrk's own count).
        latency_ms: ``min``, ``mean``, ``p50``, ``p90``, ``p99``, ``max`` in milliseconds.
    """

    requests: int
    seconds: float
    errors: dict[str, int]
    latency_ms: dict[str, float]

    @property
    def rps(self) -> float:
        """Responses per second."""
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def error_count(self) -> int:
        """Socket errors plus non-2xx responses."""
        e = self.errors
        return e["connect"] + e["read"] + e["write"] + e["timeout"] + e["non2xx"]

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (``rps`` and ``error_count`` included)."""
        return {
            "requests": self.requests,
            "seconds": round(self.seconds, 3),
            "rps": round(self.rps, 1),
            "errors": self.errors,
            "error_count": self.error_count,
            "latency_ms": self.latency_ms,
        }


def run_wrk(
    url: str,
    body: bytes,
    *,
    connections: int,
    seconds: int,
    timeout_s: int = 10,
    cpus: tuple[int, ...] | None = None,
    on_tick: Callable[[float], None] | None = None,
    tick_s: float = 5.0,
) -> LoadResult:
    """Run wrk against ``url`` for ``seconds`` with ``connections`` concurrent connections.

    Args:
        url: ``http://127.0.0.1:<port>/<path>``.
        body: The JSON request body sent by every request.
        connections: Concurrent connections (the "concurrency" of the results), each with at
            most one request in flight.
        seconds: Duration (whole seconds, wrk's unit).
        timeout_s: A response slower than this counts as a timeout error.
        cpus: CPUs to pin wrk to.
        on_tick: Called with the elapsed seconds every ``tick_s`` while wrk runs (the soak
            samples memory with it).
        tick_s: Interval for ``on_tick``.

    Returns:
        The summary.

    Raises:
        LoadError: wrk is not installed, failed, or wrote no summary.
    """
    exe = shutil.which("wrk")
    if exe is None:
        raise LoadError("wrk is not installed: apt-get update && apt-get install -y wrk")
    with tempfile.TemporaryDirectory(prefix="ml-api-bench-wrk-") as tmp:
        body_file, result_file = Path(tmp) / "body.json", Path(tmp) / "result.json"
        body_file.write_bytes(body)
        argv = [
            *(exe, "-t", "1", "-c", str(connections), "-d", f"{int(seconds)}s"),
            *("--timeout", f"{int(timeout_s)}s", "-s", str(LUA), url),
        ]
        env = {"BENCH_BODY_FILE": str(body_file), "BENCH_RESULT_FILE": str(result_file)}
        proc = subprocess.Popen(
            argv,
            env={**os.environ, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            preexec_fn=pin_to(cpus),
        )
        _wait(proc, seconds + timeout_s + 30, on_tick, tick_s)
        output = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
        if proc.returncode != 0 or not result_file.exists():
            raise LoadError(f"wrk exited with {proc.returncode}: {output.strip()[-500:]}")
        raw = json.loads(result_file.read_text())
    return LoadResult(
        requests=raw["requests"],
        seconds=raw["duration_us"] / 1e6,
        errors=raw["errors"],
        latency_ms={k: round(v / 1000.0, 3) for k, v in raw["latency_us"].items()},
    )


def _wait(
    proc: subprocess.Popen[bytes],
    limit_s: float,
    on_tick: Callable[[float], None] | None,
    tick_s: float,
) -> None:
    start = time.monotonic()
    next_tick = start + tick_s
    while proc.poll() is None:
        now = time.monotonic()
        if now - start > limit_s:
            proc.kill()
            proc.wait()
            raise LoadError(f"wrk did not finish within {limit_s:.0f} s; killed it")
        if on_tick is not None and now >= next_tick:
            on_tick(now - start)
            next_tick += tick_s
        time.sleep(0.05)
