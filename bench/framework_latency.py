"""Median /predict latency of the Flask and the Django adapter over loopback, measured alike.

Each framework is started the production way (``ml-api serve --workers 1``: one gunicorn worker
with ml-api's default threads and batching) on a free 127.0.0.1 port with a model trained into a
temporary directory, warmed up, and sent the same sequential requests from one
``requests.Session``. Frameworks run one after the other, ROUNDS times alternately, so drift on a
noisy machine hits both. Prints a table; asserts nothing (numbers from a shared machine are
indications, not facts).

    .venv/bin/python bench/framework_latency.py [--requests 500] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

from ml_api import preprocess
from ml_api.train import TrainingOptions, train

BODY = json.dumps({"features": ["Biscoe", 50.0, 15.0, 220.0, 5500.0, "male"]}).encode()
BATCH = json.dumps({"features": [["Dream", 46.5, 17.9, 192.0, 3500.0, "female"]] * 100}).encode()
HEADERS = {"Content-Type": "application/json"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(framework: str, model_root: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {
        **os.environ,
        "ML_API_SECRET_KEY": secrets.token_urlsafe(50),
        "ML_API_MODEL_ROOT": str(model_root),
    }
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "ml_api.cli", "serve", "--framework", framework),
            *("--host", "127.0.0.1", "--port", str(port), "--workers", "1"),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{framework} exited with {proc.returncode}")
        try:
            if requests.get(url + "/ready", timeout=1).status_code == 200:
                return proc, url
        except requests.RequestException:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"{framework} not ready after 60 s")


def measure(url: str, path: str, body: bytes | None, n: int) -> list[float]:
    """Seconds per request for ``n`` sequential requests (after 50 unmeasured ones)."""
    out = []
    with requests.Session() as session:
        for i in range(n + 50):
            t0 = time.perf_counter()
            if body is None:
                r = session.get(url + path, timeout=10)
            else:
                r = session.post(url + path, data=body, headers=HEADERS, timeout=10)
            elapsed = time.perf_counter() - t0
            r.raise_for_status()
            if i >= 50:
                out.append(elapsed)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=500, help="measured requests per round")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    model_root = Path(tempfile.mkdtemp(prefix="ml-api-bench-"))
    train(
        TrainingOptions(preprocess.PENGUINS_CSV, "species", drop=preprocess.PENGUINS_DROP),
        model_root=model_root,
        name="penguins",
    )
    endpoints = {
        "POST /predict (1 instance)": ("/predict", BODY),
        "POST /predict (100 instances)": ("/predict", BATCH),
        "GET /health": ("/health", None),
    }
    samples: dict[tuple[str, str], list[float]] = {}
    for _ in range(args.rounds):
        for framework in ("flask", "django"):
            proc, url = start(framework, model_root)
            try:
                for label, (path, body) in endpoints.items():
                    got = measure(url, path, body, args.requests)
                    samples.setdefault((label, framework), []).extend(got)
            finally:
                proc.send_signal(signal.SIGTERM)
                proc.wait(60)

    print(
        f"\n{args.rounds} rounds x {args.requests} sequential requests, ml-api serve --workers 1, "
        "loopback; milliseconds"
    )
    print(f"{'endpoint':32} {'framework':9} {'median':>8} {'p90':>8} {'p99':>8}")
    for (label, framework), values in samples.items():
        ms = sorted(v * 1000 for v in values)
        p90, p99 = ms[int(len(ms) * 0.9)], ms[min(len(ms) - 1, int(len(ms) * 0.99))]
        print(f"{label:32} {framework:9} {statistics.median(ms):8.2f} {p90:8.2f} {p99:8.2f}")


if __name__ == "__main__":
    main()
