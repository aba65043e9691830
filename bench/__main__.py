"""``python -m bench``: run the benchmark and write ``bench/results/<timestamp>.{md,json}``.

Modes: the full run (default), ``--targets-only`` (only the rows issue 11's targets need, at 1
and 64 clients), ``--smoke`` (a few seconds per cell on few targets: checks the plumbing, not the
speed) and ``--soak`` (64 clients for 60 s on the ml-api targets: errors and memory growth);
``--with-soak`` adds the soak after the cells of a full or ``--targets-only`` run. Every run ends
with the "Targets" section (bench/goals.py), computed from its own rows; the estimated duration
is printed before anything starts. ``--list`` prints the target table. ``--in-process-only``
prints the in-process limits alone (scikit-learn and ONNX Runtime, 1 and 64 rows, and the
batcher's rows/s with 64 threads, batching on and off), with no HTTP server and no wrk.
``--invariance`` prints what batch-invariant answers cost: a lone instance's model call evaluated
as 2 rows (served) and alone (before), per model and runtime (bench/invariance.py).
``--scoring`` measures batch scoring (``ml-api predict``) against the model alone instead
(bench/scoring.py). Every option is in ``--help``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import asdict
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from bench import engines, goals, inprocess, invariance, mlserver_env, report, scoring, swaps
from bench.load import wrk_version
from bench.models import ALL_MODELS, prepare_models
from bench.procs import plan_pinning
from bench.runner import Plan, run_model
from bench.targets import (
    BARE_FLASK,
    ML_API,
    ML_API_DJANGO,
    ML_API_LOG10,
    ML_API_NODRIFT,
    TARGETS,
    Context,
    Target,
    needs_mlserver,
    select,
)

ROOT = Path(__file__).resolve().parents[1]
NOISE_NOTE = (
    "Loopback benchmark on one machine. Numbers from a machine shared with other users are noisy: "
    "compare rows of the same run, look at 'others on server CPU %', and rerun at a quiet time "
    "before quoting any figure."
)
FAIRNESS_NOTES = (
    "Work per request differs: ml-api validates the instance against the model card and returns "
    "labels and class probabilities (predict and predict_proba); the seed app and MLServer return "
    "predict only (MLServer's default output).",
    "MLServer runs with debug=false (no per-request access log); the seed app under gunicorn has "
    "no access log either; ml-api logs what its logging configuration logs.",
    "Servers pinned to one CPU hide how requests spread over workers (e.g. gthread's uneven "
    "spread under kept-alive connections); rerun with --no-pin to see it.",
)
SOAK_TARGETS = "ml-api-flask,ml-api-django"
"""The soak's default rows: each framework's simple API (the V2 rows hit the same servers)."""
TARGETS_ONLY_ROWS: dict[str, tuple[str, ...]] = {
    "lr": (ML_API, "mlserver-batch"),
    "rf": (ML_API, "mlserver-batch"),
    "penguins": (
        *(ML_API, ML_API_DJANGO, BARE_FLASK["gunicorn"], BARE_FLASK["ml-api"]),
        *(ML_API_NODRIFT, ML_API_LOG10),
    ),
}
"""``--targets-only``: the rows each model needs for the targets (bench/goals.py). The ceiling,
Django/Flask and monitoring-cost ratios are taken on penguins, the default model; the ceiling row
is the bare Flask app on the default front (plain gunicorn gthread), beside the same app on
ml-api's own front (its head-reading worker and wire checks), which says what that front costs.
The soak and the slow clients (``--with-soak``, ``--with-slow-clients``) then run on penguins'
ml-api rows only."""
TARGETS_ONLY = {"concurrency": "1,64"}
"""``--targets-only`` defaults (the other options keep the full run's: 10 s cells, 2 rounds)."""
STARTUP_S = 20
"""Estimate: seconds per model to train it and start its servers (MLServer's environment is
created once per machine on top of that)."""
SLOW_SETUP_S = 5
"""Estimate: seconds per slow-client scenario beyond its runs (connections opened and closed)."""
SMOKE = {
    "targets": "seed-gunicorn,ml-api-flask,ml-api-flask-v2",
    "models": "lr",
    "concurrency": "8",
    "duration": 2,
    "warmup": 1,
    "rounds": 2,
    "inprocess_budget": 0.05,
    "batching_seconds": 0.5,
    "soak_seconds": 5,
    "slow_seconds": 3,
    "slow_clients": 30,
}
SMOKE_TIMES = (
    "duration", "warmup", "rounds", "inprocess_budget", "batching_seconds", "soak_seconds",
    "slow_seconds", "slow_clients",
)  # fmt: skip
"""What ``--smoke --targets-only`` takes from :data:`SMOKE` (the rest from ``--targets-only``)."""


def _log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options (``--smoke`` fills in small defaults for the options not given)."""
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument(
        "--smoke",
        action="store_true",
        help="seconds, not minutes: plumbing only (alone, or with --targets-only: the same rows)",
    )
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--soak", action="store_true", help="long run at high concurrency")
    mode.add_argument("--list", action="store_true", help="print the targets and exit")
    mode.add_argument(
        "--targets-only",
        action="store_true",
        help="only the rows the targets need (see --list), concurrency 1,64",
    )
    mode.add_argument(
        "--in-process-only",
        action="store_true",
        help="only the in-process limits (scikit-learn and ONNX Runtime, 1 and 64 rows; the "
        "batcher's rows/s with 64 threads, batching on and off): print the table and exit",
    )
    mode.add_argument(
        "--invariance",
        action="store_true",
        help="a lone instance's model call as 2 rows (served) and alone (before), per runtime; "
        f"print the table and exit (models {invariance.DEFAULT_MODELS} unless --models)",
    )
    mode.add_argument(
        "--swaps",
        action="store_true",
        help="hot swaps in a live server: RSS after each of --swap-count promotions back and "
        "forth (SIGHUP); print the table and exit",
    )
    p.add_argument("--swap-count", type=int, default=50, help="--swaps: promotions (50)")
    p.add_argument(
        "--scoring",
        action="store_true",
        help="batch scoring (ml-api predict) against the model call alone, per runtime; no "
        "servers, no wrk",
    )
    p.add_argument(
        "--scoring-rows",
        default="1000000,10000000",
        help="comma-separated input sizes for --scoring (default 1000000,10000000)",
    )
    p.add_argument(
        "--scoring-runtimes",
        default="sklearn,onnx",
        help="comma-separated ML_API_RUNTIME values for --scoring (default sklearn,onnx)",
    )
    p.add_argument(
        "--scoring-engines",
        default="local,dask,spark",
        help="comma-separated ml-api predict --engine values for --scoring's engine table "
        "(default local,dask,spark; 'none' skips it)",
    )
    p.add_argument(
        "--scoring-engine-rows",
        default="1000,1000000",
        help="--scoring engine table: the small (start-up) and large input sizes",
    )
    p.add_argument("--chunk-rows", type=int, default=5000, help="--scoring chunk rows (5000)")
    p.add_argument("--targets", help="comma-separated names, or 'all' (default: default rows)")
    p.add_argument("--models", help=f"comma-separated, from {','.join(ALL_MODELS)} (default all)")
    p.add_argument("--concurrency", help="comma-separated connections per cell (default 1,8,64)")
    p.add_argument("--duration", type=int, help="seconds per cell (default 10)")
    p.add_argument("--warmup", type=int, help="warm-up seconds per target (default 3)")
    p.add_argument("--rounds", type=int, help="interleaved rounds (default 2)")
    p.add_argument(
        "--with-soak",
        action="store_true",
        help="after the cells, soak ml-api-flask and ml-api-django (so one run gives every target)",
    )
    p.add_argument(
        "--with-slow-clients",
        action="store_true",
        help="after the cells (and soak), ml-api-flask and ml-api-django with 64 clients, alone "
        "and beside --slow-clients connections sending a request head one byte a second",
    )
    p.add_argument("--slow-clients", type=int, help="slow connections (300)")
    p.add_argument("--slow-seconds", type=int, help="each slow-client run, s (20)")
    p.add_argument("--soak-seconds", type=int, help="soak duration (default 60)")
    p.add_argument("--soak-concurrency", type=int, default=64, help="soak connections (64)")
    p.add_argument("--timeout", type=int, default=10, help="wrk request timeout, s (10)")
    p.add_argument("--no-pin", action="store_true", help="do not pin wrk and servers to CPUs")
    p.add_argument("--no-in-process", action="store_true", help="skip the in-process timings")
    p.add_argument("--inprocess-budget", type=float, help="seconds per in-process timing (0.5)")
    p.add_argument(
        "--batching-seconds", type=float, help="seconds per in-process batching cell (3)"
    )
    p.add_argument("--workdir", type=Path, default=ROOT / "tmp" / "bench", help="scratch dir")
    p.add_argument("--results-dir", type=Path, default=ROOT / "bench" / "results")
    args = p.parse_args(argv)
    defaults: dict[str, Any] = {
        "targets": None,
        "models": ",".join(ALL_MODELS),
        "concurrency": "1,8,64",
        "duration": 10,
        "warmup": 3,
        "rounds": 2,
        "inprocess_budget": 0.5,
        "batching_seconds": 3.0,
        "slow_clients": 300,
        "slow_seconds": 20,
        "soak_seconds": 60,
    }
    others = ("soak", "list", "in_process_only", "invariance", "swaps", "scoring")
    if args.smoke and any(getattr(args, o) for o in others):
        p.error("--smoke goes alone or with --targets-only")
    if args.soak:
        defaults["targets"] = SOAK_TARGETS
    if args.with_soak and args.soak:
        p.error("--with-soak adds the soak to a run of cells; --soak alone is only the soak")
    if args.targets_only and args.targets:
        p.error("--targets-only picks its own rows; drop --targets (or drop --targets-only)")
    preset = SMOKE if args.smoke else TARGETS_ONLY if args.targets_only else {}
    if args.smoke and args.targets_only:  # the same rows and clients, smoke's seconds
        preset = {**{k: v for k, v in SMOKE.items() if k in SMOKE_TIMES}, **TARGETS_ONLY}
    preset = {"models": invariance.DEFAULT_MODELS} if args.invariance else preset
    for key, value in {**defaults, **preset}.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


VERSIONED = (
    "ml-api", "scikit-learn", "numpy", "onnxruntime", "flask", "werkzeug", "gunicorn", "granian",
    "django",
)  # fmt: skip


def _versions(mlserver: str | None) -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in VERSIONED:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    if mlserver:
        out["mlserver"] = mlserver.removeprefix("mlserver ")
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        out["ml-api commit"] = commit or "?"
    except OSError:
        pass
    return out


def _print_targets() -> None:
    for t in TARGETS:
        flag = "" if t.default else "  (not run by default)"
        print(f"{t.name:<24} {t.path:<28} {','.join(t.models):<16} {t.description}{flag}")
    print(f"\n'ml-api' in the targets: {ML_API}. --targets-only runs:")
    for model, names in TARGETS_ONLY_ROWS.items():
        print(f"  {model:<10} {', '.join(names)}")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; returns the process exit status (2 for unusable options)."""
    args = parse_args(argv)
    if args.list:
        _print_targets()
        return 0
    if args.in_process_only or args.invariance:
        return in_process_only(args)
    if args.swaps:
        _log(f"{args.swap_count} hot swaps in a live server")
        result = swaps.measure(args.workdir.resolve(), args.swap_count)
        print(swaps.markdown(result))
        result["workers_mib_per_swap"] = [round(s["workers"] / 1024, 1) for s in result["series"]]
        print(json.dumps({k: v for k, v in result.items() if k != "series"}))
        return 0
    if args.scoring:
        return run_scoring(args)
    wrk = wrk_version()
    if wrk is None:
        _log("wrk is not installed: apt-get update && apt-get install -y wrk")
        return 2
    try:
        targets = select(",".join(_targets_only_names()) if args.targets_only else args.targets)
        models_wanted = tuple(m.strip() for m in args.models.split(",") if m.strip())
        unknown = [m for m in models_wanted if m not in ALL_MODELS]
        if unknown:
            raise ValueError(f"unknown model(s) {unknown}; known: {', '.join(ALL_MODELS)}")
        concurrency = tuple(int(c) for c in args.concurrency.split(","))
    except ValueError as exc:
        _log(str(exc))
        return 2
    modes = {"soak": args.soak, "smoke": args.smoke, "targets": args.targets_only}
    mode = next((name for name, on in modes.items() if on), "full")
    plan = Plan(
        concurrency=concurrency,
        duration_s=args.duration,
        warmup_s=args.warmup,
        rounds=args.rounds,
        timeout_s=args.timeout,
        soak_s=args.soak_seconds,
        soak_concurrency=args.soak_concurrency,
        slow_clients=args.slow_clients,
        slow_seconds=args.slow_seconds,
    )
    rows = rows_per_model(targets, models_wanted, TARGETS_ONLY_ROWS if args.targets_only else None)
    soak_rows = soak_targets(args)
    _log(estimate(args, plan, rows, soak_rows))
    results = run(args, mode, plan, rows, wrk, soak_rows)
    write(results, args.results_dir, mode)
    return 0


def _targets_only_names() -> list[str]:
    names = dict.fromkeys(n for rows in TARGETS_ONLY_ROWS.values() for n in rows)
    return list(names)


def rows_per_model(
    targets: list[Target],
    models: tuple[str, ...],
    restrict: dict[str, tuple[str, ...]] | None = None,
) -> dict[str, list[Target]]:
    """The targets each model runs: those that apply to it, and (``restrict``) that it needs."""
    return {
        m: [
            t
            for t in targets
            if m in t.models and (restrict is None or t.name in restrict.get(m, ()))
        ]
        for m in models
    }


def soak_targets(args: argparse.Namespace) -> tuple[str, ...]:
    """Rows soaked after the cells (``--with-soak``); ``--soak`` soaks every selected row."""
    return tuple(SOAK_TARGETS.split(",")) if args.with_soak else ()


def slow_targets(args: argparse.Namespace) -> tuple[str, ...]:
    """Rows given the slow-client scenario after the cells (``--with-slow-clients``)."""
    return tuple(SOAK_TARGETS.split(",")) if args.with_slow_clients else ()


def after_cells(args: argparse.Namespace, model: str) -> bool:
    """Whether ``model``'s rows get the soak and slow clients asked for after the cells.

    Every model's, except under ``--targets-only``: the targets read them on one model, so only
    the default model (penguins) runs them there.
    """
    return not args.targets_only or model == goals.DEFAULT_MODEL


def estimate(
    args: argparse.Namespace,
    plan: Plan,
    rows: dict[str, list[Target]],
    soak_rows: tuple[str, ...],
) -> str:
    """One line: the run's expected wall time, from the plan (rows that turn out unavailable
    make it shorter; creating MLServer's environment the first time makes it longer)."""
    cells = sum(len(ts) for ts in rows.values()) * len(plan.concurrency) * plan.rounds
    warmups = sum(len(ts) for ts in rows.values()) if plan.warmup_s > 0 else 0
    soaks = sum(
        1
        for m, ts in rows.items()
        for t in ts
        if args.soak or (t.name in soak_rows and after_cells(args, m))
    )
    slows = sum(
        1
        for m, ts in rows.items()
        for t in ts
        if t.name in slow_targets(args) and after_cells(args, m)
    )
    seconds = STARTUP_S * len(rows) + warmups * plan.warmup_s
    seconds += soaks * plan.soak_s if args.soak else cells * plan.duration_s + soaks * plan.soak_s
    # each slow-client scenario: a run alone, a run beside them after their heads have started
    seconds += slows * (2 * plan.slow_seconds + plan.slow_clients / 100 + 3 + SLOW_SETUP_S)
    if not args.no_in_process:
        seconds += len(rows) * (12 * args.inprocess_budget + 4 * args.batching_seconds + 5)
    parts = [
        f"{soaks} soak(s) of {plan.soak_s} s" if args.soak or soaks else "",
        "" if args.soak else f"{cells} cells of {plan.duration_s} s",
        f"{warmups} warm-ups of {plan.warmup_s} s" if warmups else "",
        f"{slows} slow-client scenario(s) of 2 x {plan.slow_seconds} s" if slows else "",
    ]
    return (
        f"estimated duration: ~{seconds / 60:.0f} min ({seconds:.0f} s: "
        f"{', '.join(p for p in parts if p)}, {len(rows)} model(s); "
        "plus a few minutes if MLServer's environment must be created)"
    )


def in_process_only(args: argparse.Namespace) -> int:
    """Train the models, time them in-process (no HTTP), print the table (or --invariance's)."""
    models_wanted = tuple(m.strip() for m in args.models.split(",") if m.strip())
    unknown = [m for m in models_wanted if m not in ALL_MODELS]
    if unknown:
        _log(f"unknown model(s) {unknown}; known: {', '.join(ALL_MODELS)}")
        return 2
    pinning = plan_pinning(not args.no_pin)
    cpus = pinning.server_cpus if pinning else None
    _log(f"training models {', '.join(models_wanted)} into {args.workdir.resolve()}")
    models = prepare_models(args.workdir.resolve(), models_wanted)
    if args.invariance:
        _log("batch invariance: a lone instance's model call as 2 rows and alone")
        print(invariance.markdown(invariance.measure(models, args.inprocess_budget, cpus)))
        return 0
    _log("in-process limit (no HTTP)")
    rows = inprocess.measure(models, args.inprocess_budget, cpus)
    _log(f"in-process batching ({inprocess.BATCH_THREADS} threads of 1-row requests)")
    rows += inprocess.measure_batching(models, args.batching_seconds, cpus)
    print(report.in_process_markdown(rows))
    return 0


def run(
    args: argparse.Namespace,
    mode: str,
    plan: Plan,
    rows: dict[str, list[Target]],
    wrk: str,
    soak_rows: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Prepare models and servers, run every model, and assemble the results document.

    Args:
        rows: The targets of each model (:func:`rows_per_model`).
        soak_rows: Targets soaked after the cells (``--with-soak``).
    """
    models_wanted = tuple(rows)
    targets = list({t.name: t for ts in rows.values() for t in ts}.values())
    started = datetime.now(UTC)
    loadavg_before = [round(x, 2) for x in os.getloadavg()]
    pinning = plan_pinning(not args.no_pin)
    if pinning:
        os.sched_setaffinity(0, pinning.load_cpus)
    _log(pinning.describe() if pinning else "no CPU pinning")
    workdir = args.workdir.resolve()
    _log(f"training models {', '.join(models_wanted)} into {workdir}")
    models = prepare_models(workdir, models_wanted)
    mlserver_exe, mlserver_version = None, None
    if needs_mlserver(targets):
        exe, mlserver_version = mlserver_env.ensure(_log)
        mlserver_exe = str(exe) if exe else None
        if exe is None:
            _log(f"MLServer not available: {mlserver_version}")
    ctx = Context(
        workdir=workdir,
        python=sys.executable,
        mlserver=mlserver_exe,
        server_cpus=len(pinning.server_cpus) if pinning else None,
    )
    in_process: list[dict[str, Any]] = []
    if not args.no_in_process:
        _log("in-process limit (model.predict, no HTTP)")
        cpus = pinning.server_cpus if pinning else None
        in_process = inprocess.measure(models, args.inprocess_budget, cpus)
        _log(f"in-process batching ({inprocess.BATCH_THREADS} threads of 1-row requests)")
        in_process += inprocess.measure_batching(models, args.batching_seconds, cpus)
    statuses, cells, servers, soak, slow = [], [], [], [], []
    shutil.rmtree(workdir / "logs", ignore_errors=True)  # access logs grow fast: keep one run's
    logdir = workdir / "logs" / started.strftime("%Y%m%dT%H%M%SZ")
    for key, model in models.items():
        _log(f"model {key} ({model.name})")
        after = after_cells(args, key)
        run_ = run_model(
            model, rows[key], ctx, pinning, plan, logdir, _log, soak=args.soak,
            soak_after=soak_rows if after else (),
            slow_after=slow_targets(args) if after else (),
        )  # fmt: skip
        for t in rows[key]:
            reason = run_.status.get(t.name)
            statuses.append(
                {
                    "target": t.name,
                    "model": key,
                    "available": reason is None,
                    "reason": reason,
                    "description": t.description,
                    **run_.info.get(t.name, {}),
                }
            )
        cells += run_.cells
        servers += run_.servers
        soak += run_.soak
        slow += run_.slow
    summary = report.summarize(cells)
    soak_ran = bool(args.soak or soak_rows)
    if args.soak:
        goal_rows = goals.soak_goals(soak, soak_ran)
    else:
        goal_rows = goals.compute(summary, statuses, soak, soak_ran)
    goal_rows += goals.slow_goals(slow, args.with_slow_clients)
    notes = list(FAIRNESS_NOTES)
    for m in models.values():
        if m.agreement:
            notes.append(
                f"{m.key}: the numpy pipeline (seed app, MLServer) and the ml-api artifact agree "
                f"on {m.agreement[0]}/{m.agreement[1]} held-out rows"
            )
    return {
        "meta": {
            "mode": mode,
            "started": started.isoformat(timespec="seconds"),
            "finished": datetime.now(UTC).isoformat(timespec="seconds"),
            "cpus": os.cpu_count(),
            "loadavg_before": loadavg_before,
            "loadavg_after": [round(x, 2) for x in os.getloadavg()],
            "pinning": pinning.describe() if pinning else "none",
            "pinning_cpus": asdict(pinning) if pinning else None,
            "wrk": wrk,
            "versions": _versions(mlserver_version if mlserver_exe else None),
            "config": {
                **asdict(plan),
                "targets": [t.name for t in targets],
                "models": list(models_wanted),
                "soak_after": list(soak_rows),
            },
            "ml_api_row": ML_API,
            "noise_note": NOISE_NOTE,
            "workdir": str(workdir),
        },
        "targets": statuses,
        "in_process": in_process,
        "cells": cells,
        "summary": summary,
        "servers": servers,
        "soak": soak,
        "slow_clients": slow,
        "goals": goal_rows,
        "notes": notes,
    }


def run_scoring(args: argparse.Namespace) -> int:
    """``--scoring``: measure, print and write ``<timestamp>-scoring.{md,json}``."""
    try:
        sizes = tuple(int(n) for n in args.scoring_rows.split(","))
    except ValueError:
        _log(f"--scoring-rows takes comma-separated integers, got {args.scoring_rows!r}")
        return 2
    started = datetime.now(UTC)
    loadavg_before = [round(x, 2) for x in os.getloadavg()]
    runtimes = tuple(r.strip() for r in args.scoring_runtimes.split(",") if r.strip())
    if not runtimes or set(runtimes) - set(scoring.RUNTIMES):
        allowed = ",".join(scoring.RUNTIMES)
        _log(f"--scoring-runtimes takes {allowed}, got {args.scoring_runtimes!r}")
        return 2
    result = scoring.measure(args.workdir.resolve(), sizes, args.chunk_rows, _log, runtimes)
    text = scoring.markdown(result)
    chosen = [e.strip() for e in args.scoring_engines.split(",") if e.strip() not in ("", "none")]
    if chosen:
        small, large = (int(n) for n in args.scoring_engine_rows.split(","))
        workdir = args.workdir.resolve()
        result["engines"] = engines.measure(
            workdir, workdir / "scoring-models", (small, large), tuple(chosen), _log
        )
        text += "\n" + engines.markdown(result["engines"])
    text += "\n" + NOISE_NOTE + "\n"
    print(text)
    document = {
        "meta": {
            "mode": "scoring",
            "started": started.isoformat(timespec="seconds"),
            "finished": datetime.now(UTC).isoformat(timespec="seconds"),
            "cpus": os.cpu_count(),
            "loadavg_before": loadavg_before,
            "loadavg_after": [round(x, 2) for x in os.getloadavg()],
            "versions": _versions(None),
            "noise_note": NOISE_NOTE,
        },
        **result,
    }
    args.results_dir.mkdir(parents=True, exist_ok=True)
    stem = started.strftime("%Y%m%dT%H%M%SZ") + "-scoring"
    md, js = args.results_dir / f"{stem}.md", args.results_dir / f"{stem}.json"
    md.write_text(text)
    js.write_text(json.dumps(document, indent=2) + "\n")
    _log(f"wrote {md} and {js}")
    return 0


def write(results: dict[str, Any], results_dir: Path, mode: str) -> tuple[Path, Path]:
    """Print the markdown and write ``<timestamp>[-mode].md`` and ``.json``."""
    text = report.markdown(results)
    print(text)
    results_dir.mkdir(parents=True, exist_ok=True)
    stamp = results["meta"]["started"].replace(":", "").replace("-", "").replace("+0000", "Z")
    stem = stamp + ("" if mode == "full" else f"-{mode}")
    md, js = results_dir / f"{stem}.md", results_dir / f"{stem}.json"
    md.write_text(text)
    js.write_text(json.dumps(results, indent=2) + "\n")
    _log(f"wrote {md} and {js}")
    return md, js


if __name__ == "__main__":
    sys.exit(main())
