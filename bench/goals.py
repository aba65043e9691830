"""This round's targets, computed from one run's own rows: measured value, target, met or missed.

Every figure comes from :func:`bench.report.summarize` (medians over the rounds) of the same run,
so each ratio compares rows measured minutes apart on the same machine. "ml-api" is the row
:data:`bench.targets.ML_API` (``ml-api serve --framework flask`` with every setting at its
default: the default front and runtime, named in the results).

The targets (:data:`VS_MLSERVER` and the other constants): at 64 clients, ml-api >= 2.5x
MLServer with adaptive batching on the random forest and the logistic regression, with a lower
p99; >= 0.6x the bare Flask app on the same front; Django >= 0.9x Flask; drift counting costing
at most 5 % of req/s (``ml-api-flask`` over ``ml-api-flask-nodrift``) and the prediction log at
a 10 % sample at most 10 % (``ml-api-flask-log10`` over ``ml-api-flask``); at 1 client, p50 <=
0.5 ms on the random forest and penguins; the soak (0 errors, RSS growth < 5 %); the slow
clients (:func:`slow_goals`: 0 failed normal requests, p99 within 2x of the run without them,
probes answered in < 1 s). ``python -m bench --targets-only --with-soak --with-slow-clients``
runs every row they read.

A target whose rows are missing is "not measured", with the reason: the row was not selected,
the server could not run it (the row's own reason, e.g. ``ml-api serve`` without
``ML_API_SERVER``), or every cell failed. Nothing here raises on a missing row.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bench.targets import BARE_FLASK, ML_API, ML_API_DJANGO, ML_API_LOG10, ML_API_NODRIFT

MLSERVER_BATCH = "mlserver-batch"
DEFAULT_MODEL = "penguins"
"""ml-api's default model: where a line on no model of the run is reported as not measured."""
GRANIAN_PAIRS = (("ml-api-flask-granian", "ml-api-django-granian"),)
"""Further (Flask, Django) row pairs compared like the default pair, when they ran."""
CEILING_ROWS = (ML_API, "ml-api-flask-granian")
"""ml-api Flask rows compared with the bare Flask ceiling on their own front."""
VS_MLSERVER = 2.5
"""ml-api req/s over MLServer-with-batching's, at least (rf and lr, 64 clients)."""
VS_BARE_FLASK = 0.6
"""ml-api Flask req/s over the bare Flask app's on the same front, at least."""
DJANGO_VS_FLASK = 0.9
"""ml-api Django req/s over ml-api Flask's, at least."""
P50_MS = 0.5
"""1-client p50 on the random forest and penguins, at most (milliseconds)."""
MONITORING_COSTS = (
    (ML_API, ML_API_NODRIFT, 0.95, "drift counting costs <= 5 % of req/s"),
    (ML_API_LOG10, ML_API, 0.90, "the prediction log at a 10 % sample costs <= 10 % of req/s"),
)
"""(ours, theirs, ours/theirs at least, goal): what watching the model may cost."""
SOAK_HINT = "the soak did not run: add --with-soak (or run python -m bench --soak)"

Rows = list[dict[str, Any]]


class Run:
    """Look-ups into one run's summary rows and target statuses.

    Args:
        summary: :func:`bench.report.summarize` rows (``target``, ``model``, ``concurrency``,
            ``rps``, ``p50_ms``, ``p99_ms``, ``rounds``...).
        statuses: One record per (target, model) selected: ``target``, ``model``,
            ``available``, ``reason`` and, for servers that say, ``front`` and ``runtime``.
    """

    def __init__(self, summary: Rows, statuses: Rows) -> None:
        self.summary = summary
        self.statuses = {(s["target"], s["model"]): s for s in statuses}

    def row(self, target: str, model: str, c: int) -> tuple[dict[str, Any] | None, str]:
        """The summary row of a cell, or ``None`` and why it is missing."""
        status = self.statuses.get((target, model))
        if status is None:
            return None, f"{target}/{model} was not in this run"
        if not status["available"]:
            return None, f"{target}/{model} not available: {status['reason']}"
        for r in self.summary:
            if (r["target"], r["model"], r["concurrency"]) == (target, model, c):
                if r["rps"]:
                    return r, ""
                if not r.get("rounds"):
                    return None, f"{target}/{model} c={c}: every round failed"
                others = r.get("others_on_server_cpus_pct")
                busy = f" (others on the server CPUs: {others:.0f} %)" if others is not None else ""
                return None, f"{target}/{model} c={c}: no request answered in the cell{busy}"
        return None, f"{target}/{model} c={c} was not measured (concurrency not in this run)"

    def info(self, target: str, model: str, key: str) -> str | None:
        """``front`` or ``runtime`` of a row, as its server reported it."""
        status = self.statuses.get((target, model))
        return status.get(key) if status else None

    def models(self) -> list[str]:
        """Models of this run, in first-seen order."""
        return list(dict.fromkeys(m for _, m in self.statuses))

    def targets(self) -> set[str]:
        """Targets selected in this run."""
        return {t for t, _ in self.statuses}


def _goal(
    goal: str,
    model: str,
    target: str,
    value: float | None,
    measured: str,
    met: bool | None,
    note: str = "",
) -> dict[str, Any]:
    return {
        "goal": goal,
        "model": model,
        "target": target,
        "value": None if value is None else round(value, 3),
        "measured": measured,
        "met": met,
        "status": "not measured" if met is None else "met" if met else "missed",
        "note": note,
    }


def _not_measured(goal: str, model: str, target: str, *reasons: str) -> dict[str, Any]:
    return _goal(goal, model, target, None, "", None, "; ".join(r for r in reasons if r))


def _label(run: Run, target: str, model: str) -> str:
    front, runtime = run.info(target, model, "front"), run.info(target, model, "runtime")
    parts = [p for p in (front, runtime) if p and p != "unknown"]
    return f"{target} ({', '.join(parts)})" if parts else target


def _ratio_goal(
    run: Run,
    goal: str,
    model: str,
    ours: str,
    theirs: str,
    c: int,
    at_least: float,
) -> dict[str, Any]:
    """``ours`` req/s over ``theirs`` req/s at ``c`` connections, met when >= ``at_least``."""
    wanted = f">= {at_least:g}x"
    a, why_a = run.row(ours, model, c)
    b, why_b = run.row(theirs, model, c)
    if a is None or b is None:
        return _not_measured(goal, model, wanted, why_a, why_b)
    ratio = a["rps"] / b["rps"]
    measured = (
        f"{ratio:.2f}x ({_label(run, ours, model)} {a['rps']:,.0f} req/s, "
        f"{_label(run, theirs, model)} {b['rps']:,.0f} req/s)"
    )
    return _goal(goal, model, wanted, ratio, measured, ratio >= at_least)


def _best(run: Run, model: str, c: int, pick: Callable[[str], bool]) -> tuple[str | None, str]:
    """The fastest (req/s) available row among the targets ``pick`` accepts."""
    best, best_rps, reasons = None, 0.0, []
    for target in sorted(t for t in run.targets() if pick(t)):
        row, why = run.row(target, model, c)
        if row is None:
            reasons.append(why)
        elif row["rps"] > best_rps:
            best, best_rps = target, row["rps"]
    if best is None:
        return None, "; ".join(reasons) or f"no MLServer row in this run for {model}"
    return best, ""


def compute(summary: Rows, statuses: Rows, soak: Rows, soak_ran: bool) -> Rows:
    """Every target of this round (:data:`TARGETS`), from this run.

    Args:
        summary: :func:`bench.report.summarize` rows.
        statuses: The run's target statuses (see :class:`Run`).
        soak: Soak records (``target``, ``model``, ``error_count``, ``rss_growth_pct``, or
            ``failed``).
        soak_ran: Whether a soak was part of the run (``--soak`` or ``--with-soak``).

    Returns:
        One record per target line: ``goal``, ``model``, ``target`` (in words), ``value``
        (the ratio or milliseconds; ``None`` when not measured), ``measured`` (the value with
        the rows it came from), ``met`` (``None``: not measured), ``status`` (``met``,
        ``missed`` or ``not measured``) and ``note`` (why not measured).
    """
    run = Run(summary, statuses)
    out: Rows = []
    # random forest and logistic regression, 64 clients: >= 2.5x MLServer with adaptive
    # batching, and a lower p99
    for model, name in (("rf", "random forest"), ("lr", "logistic regression")):
        goal = f"{name}, 64 clients: req/s vs MLServer with adaptive batching"
        out.append(_ratio_goal(run, goal, model, ML_API, MLSERVER_BATCH, 64, VS_MLSERVER))
        out.append(_p99_goal(run, f"{name}, 64 clients: p99 lower than MLServer with adaptive "
                             "batching", model))  # fmt: skip
    # forest and penguins, 1 client: p50 <= 0.5 ms
    for model, name in (("rf", "random forest"), ("penguins", "penguins")):
        goal = f"{name}, 1 client: p50"
        wanted = f"<= {P50_MS:g} ms"
        row, why = run.row(ML_API, model, 1)
        if row is None:
            out.append(_not_measured(goal, model, wanted, why))
        else:
            measured = f"{row['p50_ms']:.2f} ms ({_label(run, ML_API, model)})"
            met = row["p50_ms"] <= P50_MS
            out.append(_goal(goal, model, wanted, row["p50_ms"], measured, met))
    # ml-api Flask vs the bare Flask ceiling on the same front, 64 clients: >= 0.6x
    for flask_row in CEILING_ROWS:
        ceilings = set(BARE_FLASK.values())
        for model in _models_with(run, flask_row, ceilings, required=flask_row == ML_API):
            goal = f"{flask_row} vs the bare Flask ceiling on the same front, 64 clients"
            wanted = f">= {VS_BARE_FLASK:g}x"
            front = run.info(flask_row, model, "front")
            ceiling = BARE_FLASK.get(front or "")
            if ceiling is None:
                _, why = run.row(flask_row, model, 64)
                why = why or f"{flask_row}/{model}: front {front or 'not reported'} has no ceiling"
                out.append(_not_measured(goal, model, wanted, why))
                continue
            out.append(_ratio_goal(run, goal, model, flask_row, ceiling, 64, VS_BARE_FLASK))
    # Django vs Flask, 64 clients: >= 0.9x
    for flask_row, django_row in ((ML_API, ML_API_DJANGO), *GRANIAN_PAIRS):
        for model in _models_with(run, flask_row, {django_row}, required=flask_row == ML_API):
            goal = f"Django vs Flask, 64 clients ({django_row} / {flask_row})"
            out.append(_ratio_goal(run, goal, model, django_row, flask_row, 64, DJANGO_VS_FLASK))
    # what watching the model costs, 64 clients: drift counting <= 5 %, the log at 10 % <= 10 %
    for ours, theirs, at_least, what in MONITORING_COSTS:
        for model in _models_with(run, ours, {theirs}, required=True):
            goal = f"{what}, 64 clients ({ours} / {theirs})"
            out.append(_ratio_goal(run, goal, model, ours, theirs, 64, at_least))
    out += soak_goals(soak, soak_ran)
    return out


def _p99_goal(run: Run, goal: str, model: str) -> dict[str, Any]:
    """ml-api's p99 at 64 clients below MLServer-with-batching's."""
    wanted = "< MLServer's p99"
    a, why_a = run.row(ML_API, model, 64)
    b, why_b = run.row(MLSERVER_BATCH, model, 64)
    if a is None or b is None:
        return _not_measured(goal, model, wanted, why_a, why_b)
    measured = f"{a['p99_ms']:.2f} ms vs {b['p99_ms']:.2f} ms ({MLSERVER_BATCH})"
    return _goal(goal, model, wanted, a["p99_ms"], measured, a["p99_ms"] < b["p99_ms"])


def _models_with(run: Run, row: str, others: set[str], required: bool) -> list[str]:
    """Models on which ``row`` and one of ``others`` were both selected.

    With none: ``[DEFAULT_MODEL]`` when the line is ``required`` (so it shows as not measured,
    with the reason), else nothing (extra lines appear only when their rows were selected).
    """
    found = [
        m
        for m in run.models()
        if (row, m) in run.statuses and any((o, m) in run.statuses for o in others)
    ]
    return found or ([DEFAULT_MODEL] if required else [])


def soak_goals(soak: Rows, soak_ran: bool) -> Rows:
    """Soak, 64 clients: 0 errors and RSS growth under 5 %, one line per soaked row."""
    wanted = "0 errors, RSS growth < 5 %"
    if not soak_ran:
        return [_not_measured("soak, 64 clients", "all", wanted, SOAK_HINT)]
    if not soak:
        return [_not_measured("soak, 64 clients", "all", wanted, "no row was available to soak")]
    out = []
    for r in soak:
        goal = (
            f"soak {r.get('seconds', 0):.0f} s, {r.get('concurrency', '?')} clients: {r['target']}"
        )
        if "failed" in r:
            out.append(_not_measured(goal, r["model"], wanted, r["failed"]))
            continue
        errors, growth = r["error_count"], r["rss_growth_pct"]
        measured = (
            f"{errors} errors, RSS {growth:+.2f} % "
            f"({r['rss_mib_before']} -> {r['rss_mib_after']} MiB)"
        )
        out.append(_goal(goal, r["model"], wanted, growth, measured, errors == 0 and growth < 5))
    return out


def slow_goals(slow: Rows, ran: bool) -> Rows:
    """Slow clients + 64 clients: 0 failed normal requests, p99 within 2x alone, probes < 1 s.

    Args:
        slow: The slow-client records (``target``, ``model``, ``alone``, ``with_slow``).
        ran: Whether the scenario was asked for (``--with-slow-clients``).

    Returns:
        One goal line per record (none when the scenario was not asked for).
    """
    if not ran:
        return []
    wanted = "0 failed, p99 <= 2x alone, probes < 1 s"
    out = []
    for r in slow:
        alone, loaded = r.get("alone", {}), r.get("with_slow", {})
        n = loaded.get("slow", {}).get("opened", "?")
        goal = f"{n} slow connections + 64 clients: {r['target']}"
        if "failed" in alone or "failed" in loaded or not alone or not loaded:
            why = loaded.get("failed") or alone.get("failed") or "a run did not finish"
            out.append(_not_measured(goal, r["model"], wanted, why))
            continue
        p99, p99_alone = loaded["latency_ms"]["p99"], alone["latency_ms"]["p99"]
        errors, probes = loaded["error_count"], loaded["probes"]
        ratio = p99 / p99_alone if p99_alone else None
        served = loaded["requests"] > 0
        measured = (
            f"{loaded['requests']} answered, {errors} failed; p99 {p99:.1f} ms vs {p99_alone:.1f} "
            f"ms alone ({ratio or 0:.2f}x); probes: {probes['failed']} of {probes['probes']} "
            f"failed, slowest {probes['max_ms']:.0f} ms"
        )
        if r.get("rss_mib_before") is not None:  # memory bounded: the server's RSS around it
            measured += f"; RSS {r['rss_mib_before']} -> {r.get('rss_mib_after')} MiB"
        met = (
            served
            and errors == 0
            and ratio is not None
            and ratio <= 2
            and probes["failed"] == 0
            and probes["max_ms"] < 1000
        )
        out.append(_goal(goal, r["model"], wanted, ratio, measured, met))
    return out
