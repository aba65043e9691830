"""Resident memory of ``ml-api serve`` with 1, 2 and 4 gunicorn workers.

Starts each configuration on a free loopback port, sends 200 predictions (so every worker has
served), then reads /proc for the master and its workers: RSS (what each process maps, shared pages
counted in every process) and PSS (shared pages split between the processes sharing them, so the
sum is the real footprint). Prints a table. Not a test: nothing is asserted.

    .venv/bin/python bench/memory.py [--framework flask|django] [--model-root DIR]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.live.server import LiveServer

ROW = {"features": ["Biscoe", 50.0, 15.0, 220.0, 5500.0, "male"]}


def _kib(pid: int, field: str, source: str) -> int:
    for line in Path(f"/proc/{pid}/{source}").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def measure(model_root: Path, framework: str, workers: int) -> dict[str, float]:
    """Start a server, warm every worker, and return its memory in MiB."""
    with LiveServer(
        model_root, framework, workers=workers, env={"ML_API_DRAIN_SECONDS": "0"}
    ) as srv:
        for _ in range(200):
            assert requests.post(srv.url + "/predict", json=ROW, timeout=10).status_code == 200
        master = srv.proc.pid
        pids = [master, *_children(master)]
        rss = {p: _kib(p, "VmRSS", "status") / 1024 for p in pids}
        pss = {p: _kib(p, "Pss", "smaps_rollup") / 1024 for p in pids}
    worker_rss = [rss[p] for p in pids[1:]]
    return {
        "workers": workers,
        "master_rss": rss[master],
        "worker_rss_mean": sum(worker_rss) / len(worker_rss),
        "total_rss": sum(rss.values()),
        "total_pss": sum(pss.values()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--framework", default="flask", choices=["flask", "django"])
    parser.add_argument(
        "--model-root",
        type=Path,
        default=None,
        help="default: a fresh penguins model in a temporary directory",
    )
    args = parser.parse_args()
    root = args.model_root
    if root is None:
        import tempfile

        from ml_api import preprocess
        from ml_api.train import TrainingOptions, train

        root = Path(tempfile.mkdtemp(prefix="ml-api-mem-"))
        train(
            TrainingOptions(preprocess.PENGUINS_CSV, "species", drop=preprocess.PENGUINS_DROP),
            model_root=root,
            name="penguins",
        )
    rows = [measure(root, args.framework, n) for n in (1, 2, 4)]
    print(
        f"| {args.framework} workers | master RSS MiB | worker RSS MiB (mean) "
        "| total RSS MiB | total PSS MiB |"
    )
    print("|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['workers']} | {r['master_rss']:.1f} | {r['worker_rss_mean']:.1f} "
            f"| {r['total_rss']:.1f} | {r['total_pss']:.1f} |"
        )
    if len(rows) >= 2:
        per_worker = (rows[-1]["total_pss"] - rows[0]["total_pss"]) / (
            rows[-1]["workers"] - rows[0]["workers"]
        )
        base = rows[0]["total_pss"] - per_worker
        print(
            f"\nPSS fit: {base:.1f} MiB (master + shared model) + {per_worker:.1f} MiB per worker"
        )


if __name__ == "__main__":
    main()
