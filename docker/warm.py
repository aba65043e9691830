"""Exercise what the serving image promises, once, at build time, and keep the bytecode it wrote.

Run by the Dockerfile's ``slim`` stage, on the trimmed system (docker/system.sh), with bytecode
writing on (the dependencies were installed without any, and the standard library's was removed):
it serves the default model with Flask and then Django under gunicorn (``ml-api
serve``), sends every kind of request the image answers (V1, the Open Inference Protocol V2, the
docs page and its files, the model card, metrics, a refused body), and scores a CSV and a Parquet
file with ``ml-api predict``. Python writes a ``.pyc`` for each module those imports load, so the
image carries bytecode for exactly what serving uses (a module imported later, by a model of
another library, is compiled in memory when loaded). Any answer other than the expected status
fails the build: an image that cannot serve is never tagged.

Only the standard library is used here; nothing of this file is copied into the image.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

INSTANCE = ["Torgersen", 39.1, 18.7, 181.0, 3750.0, "male"]
V2_BODY = {
    "inputs": [
        {"name": "island", "datatype": "BYTES", "shape": [1], "data": ["Torgersen"]},
        {"name": "bill_length_mm", "datatype": "FP64", "shape": [1], "data": [39.1]},
        {"name": "bill_depth_mm", "datatype": "FP64", "shape": [1], "data": [18.7]},
        {"name": "flipper_length_mm", "datatype": "FP64", "shape": [1], "data": [181.0]},
        {"name": "body_mass_g", "datatype": "FP64", "shape": [1], "data": [3750.0]},
        {"name": "sex", "datatype": "BYTES", "shape": [1], "data": ["male"]},
    ]
}
# (method, path, body, expected status)
REQUESTS = [
    ("GET", "/health", None, 200),
    ("GET", "/metadata", None, 200),
    ("GET", "/model", None, 200),
    ("GET", "/openapi.json", None, 200),
    ("GET", "/docs", None, 200),
    ("GET", "/docs/swagger-ui-bundle.js", None, 200),
    ("GET", "/docs/swagger-ui.css", None, 200),
    ("GET", "/docs/swagger-initializer.js", None, 200),
    ("POST", "/predict", {"features": INSTANCE}, 200),
    ("POST", "/predict", {"features": [INSTANCE, INSTANCE]}, 200),
    ("POST", "/predict", {"features": ["Torgersen", "x", 18.7, 181.0, 3750.0, "male"]}, 422),
    ("POST", "/predict", b"{not json", 400),
    ("GET", "/v2", None, 200),
    ("GET", "/v2/health/ready", None, 200),
    ("GET", "/v2/models/penguins", None, 200),
    ("POST", "/v2/models/penguins/infer", V2_BODY, 200),
    ("GET", "/nope", None, 404),
    ("GET", "/metrics", None, 200),
]
FRAMEWORKS = {
    "flask": {},
    "django": {"ML_API_SECRET_KEY": "build-time-warm-up-only-" + "k" * 40},
}


def call(url: str, method: str, body: object) -> int:
    """Send one request; return the status (an error status is an answer, not an exception)."""
    data = body if isinstance(body, bytes) else None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            response.read()
            return response.status
    except urllib.error.HTTPError as exc:
        exc.read()
        return exc.code


def serve(framework: str, port: int) -> None:
    """Serve with one framework, send :data:`REQUESTS`, stop; raise on any unexpected status."""
    env = dict(os.environ, ML_API_FRAMEWORK=framework, PORT=str(port), ML_API_DRAIN_SECONDS="0")
    env.update(FRAMEWORKS[framework])
    server = subprocess.Popen(["ml-api", "serve"], env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 900  # a cold start compiles every module: slow when busy
        while (status := call_or_none(base + "/ready")) != 200:
            if status == 500 or server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"warm.py: {framework} server never became ready ({status})")
            time.sleep(0.5)
        subprocess.run([sys.executable, "-m", "ml_api.serving.healthcheck"], env=env, check=True)
        for method, path, body, expected in REQUESTS:
            status = call(base + path, method, body)
            if status != expected:
                raise SystemExit(f"warm.py: {framework} {method} {path}: {status}, not {expected}")
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=120)


def call_or_none(url: str) -> int | None:
    """GET status, or ``None`` while nothing listens yet."""
    try:
        return call(url, "GET", None)
    except OSError:
        return None


def score(data: Path) -> None:
    """``ml-api predict`` from CSV to CSV, then to Parquet and back from it."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        for source, target in (
            (data, out / "scored.csv"),
            (data, out / "scored.parquet"),
            (out / "scored.parquet", out / "rescored.csv"),
        ):
            subprocess.run(
                ["ml-api", "predict", "--input", str(source), "--output", str(target)], check=True
            )
        subprocess.run(["ml-api", "info"], check=True, stdout=subprocess.DEVNULL)


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (builds share the host's network: never a fixed one)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


if __name__ == "__main__":
    for framework in FRAMEWORKS:
        serve(framework, free_port())
    score(Path(sys.argv[1]))
