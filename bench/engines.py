"""``python -m bench --scoring``'s engine rows: ``ml-api predict`` locally, on Dask, on Spark.

Each engine scores the same CSV (penguins resampled, :func:`bench.scoring.make_input`) into CSV
as its own process, exactly as a user runs it (``ml-api predict --engine E``), at a small size
(its **fixed start-up cost**: interpreter, JVM and Spark session, workers, model loading) and a
large one. ``rows/s`` is the marginal rate between the two sizes,
``(large - small) / (t_large - t_small)``, so the start-up does not dilute it; ``pays off
from`` is the input size at which the engine's total time falls below the local scorer's
(never, when it is not faster per row on this machine).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.scoring import make_input

ENGINES = ("local", "dask", "spark")
"""``ml-api predict --engine`` values measured by default."""


def run_engine(model_root: Path, engine: str, src: Path, out: Path) -> float:
    """Wall seconds of ``ml-api predict --engine engine`` from start to exit.

    Raises:
        RuntimeError: The run failed.
    """
    if out.is_dir():
        shutil.rmtree(out)
    out.unlink(missing_ok=True)
    cmd = [
        sys.executable,
        *("-m", "ml_api.cli", "predict", "--engine", engine, "--quiet"),
        *("--input", str(src), "--output", str(out), "--model-root", str(model_root)),
    ]
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=dict(os.environ))
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"{engine} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return seconds


def measure(
    workdir: Path,
    model_root: Path,
    sizes: tuple[int, int] = (1_000, 1_000_000),
    engines: tuple[str, ...] = ENGINES,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Time each engine at the two sizes; return the rows of the table."""
    small, large = sizes
    inputs = {n: make_input(workdir / f"penguins-{n}.csv", n) for n in sizes}
    rows = []
    for engine in engines:
        seconds = {}
        for n in sizes:
            log(f"{engine}: {n:,} rows")
            seconds[n] = run_engine(model_root, engine, inputs[n], workdir / f"engine-{engine}.csv")
        extra = seconds[large] - seconds[small]
        rows.append(
            {
                "engine": engine,
                "start_up_seconds": round(seconds[small], 1),
                "large_rows": large,
                "large_seconds": round(seconds[large], 1),
                # None: the large run was no slower than the small one (the machine's load moved)
                "rows_per_s": round((large - small) / extra) if extra > 0 else None,
            }
        )
        log(f"  {rows[-1]}")
    local = next((r for r in rows if r["engine"] == "local"), None)
    for r in rows:
        r["pays_off_from_rows"] = _break_even(local, r)
    return {"sizes": list(sizes), "engines": rows}


def _break_even(local: dict[str, Any] | None, row: dict[str, Any]) -> int | None:
    """Rows from which ``row``'s engine beats the local scorer, ``None`` if never (or local)."""
    if local is None or row is local or None in (row["rows_per_s"], local["rows_per_s"]):
        return None
    if row["rows_per_s"] <= local["rows_per_s"]:
        return None
    extra = row["start_up_seconds"] - local["start_up_seconds"]
    saved_per_row = 1 / local["rows_per_s"] - 1 / row["rows_per_s"]
    return max(0, round(extra / saved_per_row))


def markdown(result: dict[str, Any]) -> str:
    """The engine table as markdown."""
    small, large = result["sizes"]
    lines = [
        f"Engines, CSV in and out, `ml-api predict --engine E` as its own process. Start-up: "
        f"the whole run at {small:,} rows. rows/s: the marginal rate from {small:,} to "
        f"{large:,} rows. Pays off from: the size at which the engine's total time falls "
        f"below the local scorer's.",
        "",
        f"| engine | start-up s | {large:,} rows s | rows/s | pays off from |",
        "|---|---:|---:|---:|---|",
    ]
    for r in result["engines"]:
        pays = r["pays_off_from_rows"]
        shown = "-" if r["engine"] == "local" else ("never here" if pays is None else f"{pays:,}")
        rate = "noise" if r["rows_per_s"] is None else f"{r['rows_per_s']:,}"
        lines.append(
            f"| {r['engine']} | {r['start_up_seconds']} | {r['large_seconds']} | {rate} | {shown} |"
        )
    return "\n".join(lines) + "\n"
