"""``python -m bench --scoring``: batch scoring (``ml-api predict``) against the model's own speed.

For each size (default 1 M and 10 M rows, made by resampling the penguins data with replacement)
and each runtime (``sklearn`` and ``onnx``, the same trained model version):

- the **limit** of that runtime: the model call alone, in this process, on the same chunks the
  scorer reads (``--chunk-rows``, 5,000) as pandas reads them (its own dtypes); only the model
  call is timed. scikit-learn: the fitted pipeline's ``predict_proba``. ONNX: one
  ``InferenceSession.run`` of the artifact's ``model.onnx`` with the session options the server
  uses (one thread), its inputs built from the chunk before the clock starts. Measured before
  and after the scorer, and averaged (a shared machine's load drifts);
- the **scorer**: ``ml-api predict --quiet`` as its own process with ``ML_API_RUNTIME`` set to the
  runtime, CSV in and out: wall time (start-up and model loading included, as a user waits for
  them) and peak RSS (``VmHWM``).

Goals (issue 13): scorer rows/s >= 0.5x the limit of its runtime; peak RSS at the largest size
<= 1.2x that at the smallest, per runtime. The limit and the scorer of one size and runtime run
back to back, so they see the same load.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ml_api import preprocess
from ml_api.core.model.artifact import load_artifact
from ml_api.train import TrainingOptions, train

GENERATE_BLOCK = 1_000_000
"""Rows resampled and appended at a time while making an input file (bounds memory)."""


def make_input(path: Path, rows: int, seed: int = 0) -> Path:
    """Write ``rows`` penguins rows, resampled with replacement, to ``path`` (kept if it exists)."""
    if path.exists():
        return path
    source = pd.read_csv(preprocess.PENGUINS_CSV)
    tmp = path.with_suffix(".partial")
    done, block = 0, 0
    while done < rows:
        n = min(GENERATE_BLOCK, rows - done)
        sample = source.sample(n=n, replace=True, random_state=seed + block)
        sample.to_csv(tmp, mode="a" if done else "w", header=done == 0, index=False)
        done += n
        block += 1
    tmp.rename(path)
    return path


RUNTIMES = ("sklearn", "onnx")
"""``ML_API_RUNTIME`` values measured by default."""


def model_call(artifact: Any, runtime: str) -> tuple[Callable[[pd.DataFrame], Any], Any]:
    """``(prepare, call)`` for one runtime's model call alone (``call(prepare(chunk))``).

    scikit-learn: ``prepare`` selects the feature columns, ``call`` is ``predict_proba``. ONNX:
    ``prepare`` builds the session's input tensors, ``call`` runs the session (built as
    :class:`ml_api.core.runtimes.onnx_runtime.OnnxPredictor` builds it: one thread).
    """
    names = list(artifact.schema.names)
    if runtime == "sklearn":
        return (lambda chunk: chunk[names]), artifact.model.predict_proba
    from ml_api.core.runtimes.onnx_runtime import OnnxPredictor

    session = OnnxPredictor(artifact).session
    return (lambda chunk: session.feed_from(chunk[names])), session.run


def limit_rows_per_second(
    artifact: Any, runtime: str, path: Path, chunk_rows: int
) -> tuple[float, float]:
    """Rows/s of ``runtime``'s model call alone on ``path``'s chunks (reading is not timed).

    Returns:
        ``(per wall second, per CPU second of this process)``.
    """
    prepare, call = model_call(artifact, runtime)
    spent, cpu, rows = 0.0, 0.0, 0
    with pd.read_csv(path, chunksize=chunk_rows) as reader:
        for chunk in reader:
            inputs = prepare(chunk)
            started, started_cpu = time.perf_counter(), time.process_time()
            call(inputs)
            spent += time.perf_counter() - started
            cpu += time.process_time() - started_cpu
            rows += len(chunk)
    return rows / spent, rows / max(cpu, 1e-9)


def _peak_rss(pid: int) -> int | None:
    """``VmHWM`` of a running process, in bytes (its peak RSS since its last exec)."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


SUMMARY = re.compile(r"^scored (\d+) rows .* in ([0-9.]+) s ", re.MULTILINE)
"""``ml-api predict``'s summary line (printed when not ``--quiet`` and not on a terminal)."""


@dataclass
class ScorerRun:
    """One ``ml-api predict`` run, measured from outside the process."""

    seconds: float
    """Wall time from start to exit (start-up and model loading included)."""
    cpu_seconds: float
    """User plus system CPU time of the process, every thread (``wait4``)."""
    peak_rss: int
    """Peak RSS in bytes (``VmHWM``)."""
    scoring_seconds: float
    """The scorer's own time from after loading the model to the written output."""


def run_scorer(
    model_root: Path, src: Path, out: Path, chunk_rows: int, runtime: str = "sklearn"
) -> ScorerRun:
    """Run ``ml-api predict`` under ``ML_API_RUNTIME=runtime`` (stdout is not a terminal).

    The peak is the child's ``VmHWM``, polled every 50 ms until it exits (the last reading is
    its peak to within that time). ``wait4``'s ``ru_maxrss`` would count the memory the child
    shared with this process between fork and exec, i.e. this process's own RSS; its CPU
    times are the child's own.

    Raises:
        RuntimeError: The scorer failed, or printed no summary line.
    """
    cmd = [
        sys.executable,
        *("-m", "ml_api.cli", "predict"),
        *("--input", str(src), "--output", str(out)),
        *("--model-root", str(model_root), "--chunk-rows", str(chunk_rows)),
    ]
    started = time.perf_counter()
    with tempfile.TemporaryFile() as err, tempfile.TemporaryFile() as stdout:
        env = {**os.environ, "ML_API_RUNTIME": runtime}
        proc = subprocess.Popen(cmd, stdout=stdout, stderr=err, env=env)
        peak = 0
        while True:
            # A zombie keeps /proc/<pid>/status (and VmHWM) until it is reaped: read, then reap.
            peak = max(peak, _peak_rss(proc.pid) or 0)
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                proc.returncode = os.waitstatus_to_exitcode(status)
                break
            time.sleep(0.05)
        seconds = time.perf_counter() - started
        err.seek(0)
        stdout.seek(0)
        printed = stdout.read().decode(errors="replace")
        summary = SUMMARY.search(printed)
        if proc.returncode != 0 or summary is None:
            text = err.read().decode(errors="replace") + printed
            raise RuntimeError(f"ml-api predict failed ({proc.returncode}): {text[-2000:]}")
    return ScorerRun(
        seconds=seconds,
        cpu_seconds=usage.ru_utime + usage.ru_stime,
        peak_rss=peak,
        scoring_seconds=float(summary.group(2)),
    )


def measure(
    workdir: Path,
    sizes: tuple[int, ...] = (1_000_000, 10_000_000),
    chunk_rows: int = 5_000,
    log: Callable[[str], None] = print,
    runtimes: tuple[str, ...] = RUNTIMES,
) -> dict[str, Any]:
    """Measure each runtime's limit and the scorer at each size; return rows and goals."""
    workdir.mkdir(parents=True, exist_ok=True)
    model_root = workdir / "scoring-models"
    if not (model_root / "penguins").exists():
        log("training the default penguins model (logistic regression)")
        train(
            TrainingOptions(preprocess.PENGUINS_CSV, "species", drop=preprocess.PENGUINS_DROP),
            model_root=model_root,
            name="penguins",
        )
    artifact = load_artifact(model_root, "penguins")
    rows = []
    for n in sizes:
        src = make_input(workdir / f"penguins-{n}.csv", n)
        for runtime in runtimes:
            log(f"{n:,} rows, {runtime}: the limit (the model call alone)")
            before, before_cpu = limit_rows_per_second(artifact, runtime, src, chunk_rows)
            log(f"{n:,} rows, {runtime}: ml-api predict")
            out = workdir / f"scored-{n}.csv"
            run = run_scorer(model_root, src, out, chunk_rows, runtime)
            out.unlink(missing_ok=True)
            log(f"{n:,} rows, {runtime}: the limit again (the machine's load changes)")
            after, after_cpu = limit_rows_per_second(artifact, runtime, src, chunk_rows)
            limit = (before + after) / 2
            limit_cpu = (before_cpu + after_cpu) / 2
            rows.append(
                {
                    "rows": n,
                    "runtime": runtime,
                    "input_mb": round(src.stat().st_size / 1e6, 1),
                    "limit_rows_per_s": round(limit),
                    "limit_before_after": [round(before), round(after)],
                    "scorer_seconds": round(run.seconds, 2),
                    "scorer_rows_per_s": round(n / run.seconds),
                    "ratio_to_limit": round(n / run.seconds / limit, 2),
                    "scoring_seconds_after_start": round(run.scoring_seconds, 2),
                    "ratio_after_start": round(n / run.scoring_seconds / limit, 2),
                    "limit_rows_per_cpu_s": round(limit_cpu),
                    "scorer_cpu_seconds": round(run.cpu_seconds, 2),
                    "ratio_cpu": round(n / run.cpu_seconds / limit_cpu, 2),
                    "peak_rss_mb": round(run.peak_rss / 1e6, 1),
                }
            )
            log(f"  {rows[-1]}")
    goals = [
        {
            "goal": f"{r['rows']:,} rows, {r['runtime']}: scorer rows/s >= 0.5x the limit",
            "value": r["ratio_to_limit"],
            "met": r["ratio_to_limit"] >= 0.5,
        }
        for r in rows
    ]
    for runtime in runtimes:
        mine = [r for r in rows if r["runtime"] == runtime]
        if len(mine) > 1:
            growth = mine[-1]["peak_rss_mb"] / mine[0]["peak_rss_mb"]
            goals.append(
                {
                    "goal": f"{runtime}: peak RSS at {mine[-1]['rows']:,} rows <= 1.2x "
                    f"that at {mine[0]['rows']:,}",
                    "value": round(growth, 2),
                    "met": growth <= 1.2,
                }
            )
    return {"chunk_rows": chunk_rows, "rows": rows, "goals": goals}


def markdown(result: dict[str, Any]) -> str:
    """The scoring table and goals as markdown (for the README and the results file)."""
    lines = [
        f"Batch scoring, CSV in and out, {result['chunk_rows']:,}-row chunks. Limit: the "
        "runtime's model call alone on the same chunks (mean of before and after the scorer). "
        "Scorer: `ml-api predict` wall time from start to exit (start-up and model loading "
        "included); 'after start' is its own time from the loaded model to the written file; "
        "'CPU' compares CPU seconds (every thread of the scorer) with the limit's.",
        "",
        "| rows | runtime | limit rows/s | ml-api predict s | rows/s | x limit "
        "| after start s | x limit after start | x limit (CPU) | peak RSS MB |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r['rows']:,} | {r['runtime']} | {r['limit_rows_per_s']:,} | "
            f"{r['scorer_seconds']} | {r['scorer_rows_per_s']:,} | {r['ratio_to_limit']} | "
            f"{r['scoring_seconds_after_start']} | {r['ratio_after_start']} | "
            f"{r['ratio_cpu']} | {r['peak_rss_mb']} |"
        )
    lines.append("")
    for g in result["goals"]:
        lines.append(f"- {'met' if g['met'] else 'NOT met'}: {g['goal']} ({g['value']})")
    return "\n".join(lines) + "\n"
