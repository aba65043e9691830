"""Medians, and the markdown and JSON results.

A cell's reported figures are the medians over its rounds of requests/s, p50, p99 and CPU time
per request; errors are summed over the rounds (socket errors plus non-2xx responses). The targets
(bench/goals.py) are computed from these medians, all from the same run.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from typing import Any


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


def in_process_markdown(in_process: list[dict[str, Any]]) -> str:
    """The in-process section: model calls without HTTP, and the batcher's rows/s."""
    lines = ["## In-process limit (no HTTP)", ""]
    lines += _table(
        ["model", "callable", "rows", "ms/call", "rows/s"],
        [
            [r["model"], r["callable"], r["rows"], _fmt(r["ms_per_call"], 3),
             _fmt(r["rows_per_s"], 0)]
            for r in in_process
        ],
    )  # fmt: skip
    return "\n".join(lines)


def goals_markdown(goals: list[dict[str, Any]], ml_api_row: str | None) -> list[str]:
    """The "Targets" section: each target, the value measured, met / missed / not measured."""
    lines = ["## Targets, from this run", ""]
    if ml_api_row:
        lines += [
            f'"ml-api" is the row `{ml_api_row}`: `ml-api serve --framework flask` with every '
            "setting at its default (its front and runtime are in the Rows table).",
            "",
        ]
    met = sum(g["status"] == "met" for g in goals)
    missed = sum(g["status"] == "missed" for g in goals)
    lines += [f"{met} met, {missed} missed, {len(goals) - met - missed} not measured.", ""]
    lines += _table(
        ["target", "model", "wanted", "measured", "result"],
        [
            [g["goal"], g["model"], g["target"], g["measured"] or "-",
             g["status"].upper() if g["status"] == "missed" else
             g["status"] if g["status"] == "met" else f"not measured: {g['note']}"]
            for g in goals
        ],
    )  # fmt: skip
    return lines


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
        "## Rows",
        "",
    ]
    info = {(s["target"], s["model"]): s for s in results["targets"]}
    lines += _table(
        ["row", "model", "front", "runtime", "status", "what"],
        [
            [t["target"], t["model"], t.get("front", "-"), t.get("runtime", "-"),
             "ok" if t["available"] else f"not available: {t['reason']}", t["description"]]
            for t in results["targets"]
        ],
    )  # fmt: skip
    if results["summary"]:
        lines += ["## Results", ""]
        lines += _table(
            ["model", "row", "c", "req/s", "p50 ms", "p99 ms", "errors", "CPU ms/req",
             "others on server CPU %", "front", "runtime"],
            [
                [r["model"], r["target"], r["concurrency"], _fmt(r["rps"], 0), _fmt(r["p50_ms"]),
                 _fmt(r["p99_ms"]), r["errors"], _fmt(r["cpu_ms_per_request"]),
                 _fmt(r["others_on_server_cpus_pct"], 0),
                 info.get((r["target"], r["model"]), {}).get("front", "-"),
                 info.get((r["target"], r["model"]), {}).get("runtime", "-")]
                for r in results["summary"]
            ],
        )  # fmt: skip
    if results["in_process"]:
        lines += in_process_markdown(results["in_process"]).split("\n")
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
    if results.get("slow_clients"):
        lines += ["## Slow clients", ""]
        lines += _table(
            ["target", "model", "slow", "req/s", "p99 ms", "errors", "probes failed",
             "slowest probe ms", "alone req/s", "alone p99 ms", "RSS before", "RSS after"],
            [
                [s["target"], s["model"], s.get("with_slow", {}).get("slow", {}).get("opened"),
                 _fmt(s.get("with_slow", {}).get("rps"), 0),
                 _fmt(s.get("with_slow", {}).get("latency_ms", {}).get("p99")),
                 s.get("with_slow", {}).get("error_count", s.get("with_slow", {}).get("failed")),
                 s.get("with_slow", {}).get("probes", {}).get("failed"),
                 _fmt(s.get("with_slow", {}).get("probes", {}).get("max_ms"), 0),
                 _fmt(s.get("alone", {}).get("rps"), 0),
                 _fmt(s.get("alone", {}).get("latency_ms", {}).get("p99")),
                 _fmt(s.get("rss_mib_before"), 1), _fmt(s.get("rss_mib_after"), 1)]
                for s in results["slow_clients"]
            ],
        )  # fmt: skip
    if results["goals"]:
        lines += goals_markdown(results["goals"], results["meta"].get("ml_api_row"))
    if results.get("notes"):
        lines += ["## Notes", ""] + [f"- {n}" for n in results["notes"]] + [""]
    return "\n".join(lines)
