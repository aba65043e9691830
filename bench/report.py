"""Medians, the target ratios, and the markdown and JSON results.

A cell's reported figures are the medians over its rounds of requests/s, p50, p99 and CPU time
per request; errors are summed over the rounds (socket errors plus non-2xx responses). The ratios
against the targets (ml-api at twice MLServer's throughput, at least the seed app's under gunicorn)
are computed from these medians, all from the same run.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from typing import Any

MLSERVER_BATCH = "mlserver-batch"
SEED_GUNICORN = "seed-gunicorn"


def _median(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(statistics.median(present), 3) if present else None


def summarize(cells: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Group cells by (model, target, concurrency) and take medians over rounds.

    Returns:
        One row per group, in first-seen order: ``rps``, ``p50_ms``, ``p99_ms``,
        ``cpu_ms_per_request``, ``others_on_server_cpus_pct`` (medians), ``errors`` (sum),
        ``requests`` (sum), ``rounds`` and ``failed_rounds``.
    """
    groups: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
    for cell in cells:
        key = (cell["model"], cell["target"], cell["concurrency"])
        groups.setdefault(key, []).append(cell)
    rows = []
    for (model, target, concurrency), group in groups.items():
        ok = [c for c in group if "failed" not in c]
        rows.append(
            {
                "model": model,
                "target": target,
                "concurrency": concurrency,
                "rounds": len(ok),
                "failed_rounds": len(group) - len(ok),
                "rps": _median(c["rps"] for c in ok),
                "p50_ms": _median(c["latency_ms"]["p50"] for c in ok),
                "p99_ms": _median(c["latency_ms"]["p99"] for c in ok),
                "errors": sum(c["error_count"] for c in ok),
                "requests": sum(c["requests"] for c in ok),
                "cpu_ms_per_request": _median(c.get("cpu_ms_per_request") for c in ok),
                "others_on_server_cpus_pct": _median(
                    c.get("others_on_server_cpus_pct") for c in ok
                ),
            }
        )
    return rows


def _lookup(summary: list[dict[str, Any]], target: str, model: str, c: int) -> dict | None:
    for row in summary:
        if (row["target"], row["model"], row["concurrency"]) == (target, model, c):
            return row if row["rps"] else None
    return None


def _ratio(
    goal: str, value: float | None, wanted: str, met: bool | None, why: str = ""
) -> dict[str, Any]:
    return {
        "goal": goal,
        "value": None if value is None else round(value, 3),
        "target": wanted,
        "met": met,
        "note": why,
    }


def _inproc_ms(inprocess: list[dict[str, Any]], model: str, name: str, rows: int) -> float | None:
    for r in inprocess:
        if (r["model"], r["callable"], r["rows"]) == (model, name, rows):
            return r["ms_per_call"]
    return None


def ratios(
    summary: list[dict[str, Any]],
    inprocess: list[dict[str, Any]],
    ml_api_targets: list[str],
) -> list[dict[str, Any]]:
    """Issue 7's targets for each ml-api row, from the medians of this run.

    Args:
        summary: Output of :func:`summarize`.
        inprocess: In-process timings (see ``bench.inprocess``).
        ml_api_targets: Names of the available ml-api targets.

    Returns:
        One record per (goal, ml-api target): ``value``, ``target`` (the goal, in words),
        ``met`` (``None`` when a needed cell is missing, with the reason in ``note``).
    """
    out = []
    mlservers = sorted({r["target"] for r in summary if r["target"].startswith("mlserver")})
    for name in ml_api_targets:
        rf64 = _lookup(summary, name, "rf", 64)
        mb64 = _lookup(summary, MLSERVER_BATCH, "rf", 64)
        missing = _missing((rf64, f"{name} rf c=64"), (mb64, f"{MLSERVER_BATCH} rf c=64"))
        v = rf64["rps"] / mb64["rps"] if rf64 and mb64 else None
        out.append(_ratio(f"{name}: rf c=64 req/s / MLServer batching req/s", v, ">= 2",
                          None if v is None else v >= 2, missing))  # fmt: skip
        v = rf64["p99_ms"] / mb64["p99_ms"] if rf64 and mb64 else None
        out.append(_ratio(f"{name}: rf c=64 p99 / MLServer batching p99", v, "< 1 (lower p99)",
                          None if v is None else v < 1, missing))  # fmt: skip
        rf1 = _lookup(summary, name, "rf", 1)
        inproc = _inproc_ms(inprocess, "rf", "ml-api pipeline", 1)
        missing = _missing((rf1, f"{name} rf c=1"), (inproc, "in-process rf 1 row"))
        v = rf1["p50_ms"] - inproc if rf1 and inproc is not None else None
        out.append(_ratio(f"{name}: rf c=1 p50 minus in-process 1-row predict (ms)", v,
                          "<= 1.5 ms", None if v is None else v <= 1.5, missing))  # fmt: skip
        lr64 = _lookup(summary, name, "lr", 64)
        best = max(
            (r for m in mlservers if (r := _lookup(summary, m, "lr", 64))),
            key=lambda r: r["rps"],
            default=None,
        )
        missing = _missing((lr64, f"{name} lr c=64"), (best, "any MLServer lr c=64"))
        v = lr64["rps"] / best["rps"] if lr64 and best else None
        label = f" ({best['target']})" if best else ""
        out.append(_ratio(f"{name}: lr c=64 req/s / MLServer best{label} req/s", v, ">= 2",
                          None if v is None else v >= 2, missing))  # fmt: skip
        seed = _lookup(summary, SEED_GUNICORN, "lr", 64)
        missing = _missing((lr64, f"{name} lr c=64"), (seed, f"{SEED_GUNICORN} lr c=64"))
        v = lr64["rps"] / seed["rps"] if lr64 and seed else None
        out.append(_ratio(f"{name}: lr c=64 req/s / seed app under gunicorn req/s", v, ">= 1",
                          None if v is None else v >= 1, missing))  # fmt: skip
    return out


def soak_goals(soak: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Zero errors and RSS growth under 5 % for every soak record."""
    out = []
    for r in soak:
        label = f"{r['target']}/{r['model']}"
        if "failed" in r:
            out.append(_ratio(f"{label}: soak", None, "ran", None, r["failed"]))
            continue
        out.append(_ratio(f"{label}: soak errors", r["error_count"], "0", r["error_count"] == 0))
        g = r["rss_growth_pct"]
        out.append(_ratio(f"{label}: soak RSS growth %", g, "< 5", g < 5))
    return out


def _missing(*pairs: tuple[Any, str]) -> str:
    absent = [label for value, label in pairs if value is None]
    return f"missing: {', '.join(absent)}" if absent else ""


# ---- markdown --------------------------------------------------------------------------------


def _fmt(v: Any, digits: int = 2) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, bool):
        return "yes" if v else "NO"
    if isinstance(v, float):
        return f"{v:,.{digits}f}"
    return str(v)


def _table(headers: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return [*lines, ""]


def markdown(results: dict[str, Any]) -> str:
    """The results as a markdown document (also what the harness prints)."""
    meta = results["meta"]
    cfg = meta["config"]
    lines = [f"# ml-api benchmark: {meta['started']} ({meta['mode']})", ""]
    lines += [f"> {meta['noise_note']}", ""]
    lines += [
        f"- machine: {meta['cpus']} CPUs; load average {meta['loadavg_before']} before, "
        f"{meta['loadavg_after']} after",
        f"- pinning: {meta['pinning']}",
        f"- load generator: {meta['wrk']}, 1 thread, request timeout {cfg['timeout_s']} s",
        f"- cells: {cfg['duration_s']} s each, warm-up {cfg['warmup_s']} s per target, "
        f"{cfg['rounds']} interleaved rounds; medians of req/s, p50, p99, CPU/request; errors "
        "(socket errors + non-2xx) summed over rounds",
        f"- versions: {', '.join(f'{k} {v}' for k, v in meta['versions'].items())}",
        "",
        "## Targets",
        "",
    ]
    lines += _table(
        ["target", "model", "status", "what"],
        [
            [t["target"], t["model"], "ok" if t["available"] else f"not available: {t['reason']}",
             t["description"]]
            for t in results["targets"]
        ],
    )  # fmt: skip
    if results["summary"]:
        lines += ["## Results", ""]
        lines += _table(
            ["model", "target", "c", "req/s", "p50 ms", "p99 ms", "errors", "CPU ms/req",
             "others on server CPU %"],
            [
                [r["model"], r["target"], r["concurrency"], _fmt(r["rps"], 0), _fmt(r["p50_ms"]),
                 _fmt(r["p99_ms"]), r["errors"], _fmt(r["cpu_ms_per_request"]),
                 _fmt(r["others_on_server_cpus_pct"], 0)]
                for r in results["summary"]
            ],
        )  # fmt: skip
    if results["in_process"]:
        lines += ["## In-process limit (no HTTP)", ""]
        lines += _table(
            ["model", "callable", "rows", "ms/call", "rows/s"],
            [
                [r["model"], r["callable"], r["rows"], _fmt(r["ms_per_call"], 3),
                 _fmt(r["rows_per_s"], 0)]
                for r in results["in_process"]
            ],
        )  # fmt: skip
    if results["servers"]:
        lines += ["## Memory (RSS of each server's process tree, MiB)", ""]
        lines += _table(
            ["server", "model", "processes", "start", "after warm-up", "end",
             "growth after warm-up %", "PSS end"],
            [
                [s["server"], s["model"], s["processes"], _fmt(s["rss_mib"]["start"], 1),
                 _fmt(s["rss_mib"]["after_warmup"], 1), _fmt(s["rss_mib"]["end"], 1),
                 _fmt(s["rss_growth_after_warmup_pct"]), _fmt(s["pss_mib_end"], 1)]
                for s in results["servers"]
            ],
        )  # fmt: skip
    if results["soak"]:
        lines += ["## Soak", ""]
        lines += _table(
            ["target", "model", "c", "seconds", "req/s", "p99 ms", "errors", "RSS before",
             "RSS after", "growth %"],
            [
                [s["target"], s["model"], s.get("concurrency", "n/a"), _fmt(s.get("seconds")),
                 _fmt(s.get("rps"), 0), _fmt(s.get("latency_ms", {}).get("p99")),
                 s.get("error_count", s.get("failed")), _fmt(s.get("rss_mib_before"), 1),
                 _fmt(s.get("rss_mib_after"), 1), _fmt(s.get("rss_growth_pct"))]
                for s in results["soak"]
            ],
        )  # fmt: skip
    if any(g["value"] is not None for g in results["goals"]):
        lines += ["## Issue 7 targets, from this run", ""]
        lines += _table(
            ["goal", "value", "wanted", "met", "note"],
            [[g["goal"], _fmt(g["value"], 3), g["target"], _fmt(g["met"]), g["note"]]
             for g in results["goals"]],
        )  # fmt: skip
    elif results["goals"]:
        lines += ["Issue 7 targets: not computed (this run lacks the cells they need).", ""]
    if results.get("notes"):
        lines += ["## Notes", ""] + [f"- {n}" for n in results["notes"]] + [""]
    return "\n".join(lines)
