"""Memory across hot swaps: 50 promotions back and forth in a live server, RSS after each.

Trains ``penguins`` (the default model) and ``diabetes`` versions 1 (linear) and 2 (random
forest) into the work directory, starts ``ml-api serve`` (Flask, 2 gunicorn workers, polling off)
on a free loopback port, then ``swaps`` times: promotes the other diabetes version, sends SIGHUP,
waits until every worker answers with it, sends 20 predictions, and reads the resident memory of
the master and each worker from ``/proc``. The figure: the workers' RSS after the last swap
against after the first (the issue's bound is 5 %), and the largest in between. Not a test.

    .venv/bin/python -m bench --swaps [--swap-count 50]
"""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import requests
from sklearn.datasets import load_diabetes
from tests.live.server import LiveServer

from ml_api import preprocess
from ml_api.core.model.versions import set_alias
from ml_api.train import TrainingOptions, train

ROW = {"features": [0.03, 0.05, 0.06, 0.02, -0.04, -0.03, -0.04, 0.0, 0.02, -0.02]}


def prepare(workdir: Path) -> Path:
    """A model root with penguins 1 and diabetes 1 and 2 (fresh each run)."""
    root = workdir / f"swaps-{int(time.time())}" / "models"
    root.mkdir(parents=True)
    frame = load_diabetes(as_frame=True).frame
    csv = root.parent / "diabetes.csv"
    frame.to_csv(csv, index=False)
    penguins = TrainingOptions(preprocess.PENGUINS_CSV, "species", drop=preprocess.PENGUINS_DROP)
    train(penguins, model_root=root, name="penguins")
    train(TrainingOptions(csv, "target"), model_root=root, name="diabetes")
    forest = TrainingOptions(csv, "target", estimator="random_forest")
    train(forest, model_root=root, name="diabetes")
    set_alias(root, "diabetes", "production", 1)
    return root


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def _serving(url: str, version: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen = {
            requests.post(f"{url}/models/diabetes/predict", json=ROW, timeout=30).json()["model"][
                "version"
            ]
            for _ in range(8)
        }
        if seen == {version}:
            return
        time.sleep(0.05)
    raise RuntimeError(f"version {version} not served by every worker after {timeout} s")


def measure(workdir: Path, swaps: int = 50) -> dict[str, Any]:
    """Run the swaps; return the RSS series (KiB) and the summary figures."""
    root = prepare(workdir)
    env = {"ML_API_RELOAD_SECONDS": "0", "ML_API_DRAIN_SECONDS": "0"}
    series: list[dict[str, int]] = []
    started = time.perf_counter()
    with LiveServer(root, "flask", workers=2, env=env) as server:
        for i in range(swaps):
            version = "2" if i % 2 == 0 else "1"
            set_alias(root, "diabetes", "production", int(version))
            server.proc.send_signal(signal.SIGHUP)
            _serving(server.url, version)
            for _ in range(20):
                requests.post(f"{server.url}/models/diabetes/predict", json=ROW, timeout=30)
            workers = _children(server.proc.pid)
            series.append(
                {
                    "master": _rss_kib(server.proc.pid),
                    "workers": sum(_rss_kib(p) for p in workers),
                    "n_workers": len(workers),
                }
            )
        server.terminate()
    elapsed = time.perf_counter() - started
    first, last = series[0]["workers"], series[-1]["workers"]
    return {
        "swaps": swaps,
        "seconds": round(elapsed, 1),
        "workers_rss_first_kib": first,
        "workers_rss_last_kib": last,
        "workers_rss_max_kib": max(s["workers"] for s in series),
        "last_vs_first_percent": round(100 * (last - first) / first, 2),
        "master_rss_first_kib": series[0]["master"],
        "master_rss_last_kib": series[-1]["master"],
        "series": series,
    }


def markdown(result: dict[str, Any]) -> str:
    """The figures as a small Markdown table."""
    mib = 1024
    return "\n".join(
        [
            f"{result['swaps']} swaps (diabetes 1 <-> 2, SIGHUP, 2 workers) in "
            f"{result['seconds']} s",
            "",
            "| | after swap 1 | after the last | largest | last vs first |",
            "|---|---:|---:|---:|---:|",
            f"| workers' RSS (MiB) | {result['workers_rss_first_kib'] / mib:.1f} | "
            f"{result['workers_rss_last_kib'] / mib:.1f} | "
            f"{result['workers_rss_max_kib'] / mib:.1f} | "
            f"{result['last_vs_first_percent']:+.2f} % |",
            f"| master's RSS (MiB) | {result['master_rss_first_kib'] / mib:.1f} | "
            f"{result['master_rss_last_kib'] / mib:.1f} | | |",
        ]
    )
