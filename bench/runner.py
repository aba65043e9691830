"""Running the cells: per model, start every target's server, probe, warm up, then interleave.

For one model, all servers start together (each on its own port, pinned to the server CPUs) and
stay up for the whole model. Every available target gets a warm-up at the highest concurrency.
Then, for each round, for each concurrency, each target runs one cell of ``duration`` seconds;
odd rounds walk the targets in reverse, so no target always runs first or last. Medians over the
rounds are taken in :mod:`bench.report`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.load import LoadError, LoadResult, run_wrk
from bench.models import BenchModel
from bench.procs import CpuMeter, Pinning, TreeSample, free_port
from bench.servers import ServerProcess
from bench.slow_clients import Prober, SlowClients
from bench.targets import Context, Server, Target, Unavailable

Log = Callable[[str], None]


@dataclass(frozen=True)
class Plan:
    """What to run.

    Attributes:
        concurrency: Concurrent connections per cell, in order.
        duration_s: Seconds per cell.
        warmup_s: Seconds of warm-up per target (at the highest concurrency); 0 skips it.
        rounds: Interleaved rounds.
        timeout_s: wrk's per-request timeout (slower responses count as errors).
        ready_timeout_s: Longest wait for a server to become ready.
        soak_s: Soak duration (soak mode only).
        soak_concurrency: Soak connections (soak mode only).
    """

    concurrency: tuple[int, ...]
    duration_s: int
    warmup_s: int
    rounds: int
    timeout_s: int = 10
    ready_timeout_s: float = 120.0
    slow_clients: int = 300
    slow_seconds: int = 20
    soak_s: int = 60
    soak_concurrency: int = 64


@dataclass
class ModelRun:
    """Everything measured for one model."""

    status: dict[str, str | None] = field(default_factory=dict)
    info: dict[str, dict[str, str]] = field(default_factory=dict)
    cells: list[dict[str, Any]] = field(default_factory=list)
    servers: list[dict[str, Any]] = field(default_factory=list)
    soak: list[dict[str, Any]] = field(default_factory=list)
    slow: list[dict[str, Any]] = field(default_factory=list)


def _mib(n: int | None) -> float | None:
    return None if n is None else round(n / 2**20, 1)


class ModelBench:
    """The servers and cells of one model.

    Args:
        model: The model.
        targets: Selected targets (those that do not apply to the model are left out).
        ctx: Launch context.
        pinning: CPU split, or ``None``.
        logdir: Where server logs go.
        log: Progress messages.
        ready_timeout_s: Longest wait for a server to become ready.
    """

    def __init__(
        self,
        model: BenchModel,
        targets: list[Target],
        ctx: Context,
        pinning: Pinning | None,
        logdir: Path,
        log: Log,
        ready_timeout_s: float = 120.0,
    ) -> None:
        self.model = model
        self.ready_timeout_s = ready_timeout_s
        self.targets = [t for t in targets if model.key in t.models]
        self.ctx = ctx
        self.pinning = pinning
        self.logdir = logdir
        self.log = log
        self.servers: dict[Server, ServerProcess] = {}
        self.failed: dict[Server, str] = {}
        self.active: list[Target] = []
        self.run = ModelRun()
        self.samples: dict[Server, dict[str, TreeSample]] = {}

    # ---- servers ----------------------------------------------------------------------------

    def start(self) -> None:
        """Start every needed server, wait until ready, probe every target."""
        server_cpus = self.pinning.server_cpus if self.pinning else None
        for target in self.targets:
            server = target.server
            if server in self.servers or server in self.failed:
                continue
            port = free_port()
            try:
                launch = server.launch(self.ctx, self.model, port)
            except Unavailable as exc:
                self.failed[server] = str(exc)
                continue
            label = f"{target.name}-{self.model.key}"
            proc = ServerProcess(label, launch, port, self.logdir / f"{label}.log", server_cpus)
            proc.start()
            self.servers[server] = proc
        for server, proc in list(self.servers.items()):
            reason = proc.wait_ready(self.ready_timeout_s)
            if reason:
                self.log(f"  {proc.label}: not available: {reason}")
                self.failed[server] = reason
                proc.stop()
                del self.servers[server]
            else:
                self.samples[server] = {"start": proc.sample(memory_detail=True)}
        info = self._inspect()
        for target in self.targets:
            self.run.status[target.name] = self._probe(target)
            if target.server in info:
                self.run.info[target.name] = info[target.server]
        self.active = [t for t in self.targets if self.run.status[t.name] is None]

    def _inspect(self) -> dict[Server, dict[str, str]]:
        """Ask each server that can say it which front (and runtime) it runs.

        A server that does not run what its row asks for (``ML_API_SERVER=granian`` ignored by an
        ``ml-api serve`` that predates it) is stopped and its rows marked unavailable.
        """
        info: dict[Server, dict[str, str]] = {}
        for server, proc in list(self.servers.items()):
            inspect = getattr(server, "inspect", None)
            if inspect is None:
                continue
            try:
                reason, info[server] = inspect(proc)
            except Exception as exc:  # a harness bug must cost one row, not the run
                reason, info[server] = f"could not inspect the server: {exc!r}", {}
            if reason:
                self.log(f"  {proc.label}: not available: {reason}")
                self.failed[server] = reason
                proc.stop()
                del self.servers[server]
                del self.samples[server]
        return info

    def _probe(self, target: Target) -> str | None:
        if target.server in self.failed:
            return self.failed[target.server]
        body = self.model.body(target.body)
        if body is None:
            return f"no {target.body} request body for {self.model.key}"
        reason = self.servers[target.server].probe(target.url_path(self.model), body, target.body)
        if reason:
            self.log(f"  {target.name}/{self.model.key}: not available: {reason}")
        return reason

    def stop(self) -> None:
        """Record final memory and stop every server."""
        for server, proc in self.servers.items():
            end = proc.sample(memory_detail=True)
            samples = self.samples.get(server, {})
            samples["end"] = end
            code = proc.stop()
            self.run.servers.append(self._memory_row(server, proc, samples, code))

    def _memory_row(
        self,
        server: Server,
        proc: ServerProcess,
        samples: dict[str, TreeSample],
        code: int | None,
    ) -> dict[str, Any]:
        names = [t.name for t in self.targets if t.server == server]
        start = samples.get("start")
        warm = samples.get("after_warmup") or start
        end = samples["end"]
        growth = None
        if warm and warm.rss_bytes:
            growth = round((end.rss_bytes - warm.rss_bytes) / warm.rss_bytes * 100, 2)
        return {
            "server": names[0],
            "targets": names,
            "model": self.model.key,
            "pid": proc.pid,
            "processes": end.processes,
            "rss_mib": {
                "start": _mib(start.rss_bytes) if start else None,
                "after_warmup": _mib(warm.rss_bytes) if warm else None,
                "end": _mib(end.rss_bytes),
            },
            "pss_mib_end": _mib(end.pss_bytes),
            "rss_growth_after_warmup_pct": growth,
            "exit_status": code,
            "log": str(proc.log_path),
        }

    # ---- load ------------------------------------------------------------------------------

    def _url(self, target: Target) -> str:
        return f"http://127.0.0.1:{self.servers[target.server].port}{target.url_path(self.model)}"

    def _body(self, target: Target) -> bytes:
        body = self.model.body(target.body)
        assert body is not None
        return body

    def warm_up(self, plan: Plan) -> None:
        """Load every active target for ``warmup_s`` at the highest concurrency."""
        load_cpus = self.pinning.load_cpus if self.pinning else None
        for target in self.active:
            if plan.warmup_s > 0:
                try:
                    run_wrk(
                        self._url(target),
                        self._body(target),
                        connections=max(plan.concurrency),
                        seconds=plan.warmup_s,
                        timeout_s=plan.timeout_s,
                        cpus=load_cpus,
                    )
                except LoadError as exc:
                    self.log(f"  warm-up of {target.name}/{self.model.key} failed: {exc}")
        for server, proc in self.servers.items():
            self.samples[server]["after_warmup"] = proc.sample(memory_detail=True)

    def cell(self, target: Target, concurrency: int, seconds: int, plan: Plan) -> dict[str, Any]:
        """Run one cell and measure the server's CPU time and the server CPUs' total busy time.

        Returns:
            The cell's record: wrk's summary plus ``cpu_ms_per_request`` (server process tree)
            and, when pinned, ``others_on_server_cpus_pct``: the share of the server CPUs used
            by processes that are not this server (other users of a shared machine).
        """
        proc = self.servers[target.server]
        load_cpus = self.pinning.load_cpus if self.pinning else None
        server_cpus = self.pinning.server_cpus if self.pinning else None
        before = proc.sample()
        meter = CpuMeter(server_cpus)
        started = time.monotonic()
        record: dict[str, Any] = {
            "target": target.name,
            "model": self.model.key,
            "concurrency": concurrency,
        }
        try:
            result = run_wrk(
                self._url(target),
                self._body(target),
                connections=concurrency,
                seconds=seconds,
                timeout_s=plan.timeout_s,
                cpus=load_cpus,
            )
        except LoadError as exc:
            record["failed"] = str(exc)
            return record
        wall = time.monotonic() - started
        busy = meter.busy_seconds()
        cpu = proc.sample().cpu_seconds - before.cpu_seconds
        record.update(result.to_json())
        record["cpu_ms_per_request"] = (
            round(cpu * 1000 / result.requests, 3) if result.requests else None
        )
        record["server_cpu_s"] = round(cpu, 3)
        if server_cpus:
            capacity = wall * len(server_cpus)
            record["others_on_server_cpus_pct"] = round(max(0.0, busy - cpu) / capacity * 100, 1)
        return record

    def rounds(self, plan: Plan) -> None:
        """All rounds of all cells, interleaved."""
        for rnd in range(plan.rounds):
            order = self.active if rnd % 2 == 0 else list(reversed(self.active))
            for concurrency in plan.concurrency:
                for target in order:
                    record = self.cell(target, concurrency, plan.duration_s, plan)
                    record["round"] = rnd + 1
                    self.run.cells.append(record)
                    self.log(_cell_line(record))

    def soak(self, plan: Plan, only: tuple[str, ...] | None = None) -> None:
        """One long run per active target (those named in ``only``), sampling RSS every 5 s."""
        load_cpus = self.pinning.load_cpus if self.pinning else None
        for target in self.active:
            if only is not None and target.name not in only:
                continue
            proc = self.servers[target.server]
            warm = proc.sample(memory_detail=True)
            trace: list[list[float]] = []

            def tick(elapsed: float, proc: ServerProcess = proc, trace: list = trace) -> None:
                trace.append([round(elapsed, 1), _mib(proc.sample().rss_bytes) or 0.0])

            self.log(f"  soak {target.name}/{self.model.key}: c={plan.soak_concurrency}, "
                     f"{plan.soak_s} s")  # fmt: skip
            record: dict[str, Any] = {"target": target.name, "model": self.model.key}
            try:
                result: LoadResult = run_wrk(
                    self._url(target),
                    self._body(target),
                    connections=plan.soak_concurrency,
                    seconds=plan.soak_s,
                    timeout_s=plan.timeout_s,
                    cpus=load_cpus,
                    on_tick=tick,
                )
            except LoadError as exc:
                record["failed"] = str(exc)
                self.run.soak.append(record)
                continue
            end = proc.sample(memory_detail=True)
            growth = (end.rss_bytes - warm.rss_bytes) / warm.rss_bytes * 100
            record.update(
                {
                    "concurrency": plan.soak_concurrency,
                    **result.to_json(),
                    "rss_mib_before": _mib(warm.rss_bytes),
                    "rss_mib_after": _mib(end.rss_bytes),
                    "rss_growth_pct": round(growth, 2),
                    "rss_trace_mib": trace,
                }
            )
            self.run.soak.append(record)
            self.log(
                f"  soak {target.name}/{self.model.key}: {result.rps:.0f} req/s, "
                f"{result.error_count} errors, RSS {growth:+.2f} %"
            )

    def slow(self, plan: Plan, only: tuple[str, ...]) -> None:
        """Per target in ``only``: 64 clients without, then with, ``plan.slow_clients`` slow ones.

        Both runs probe ``/health`` and ``/ready`` every 0.5 s (3 s timeout, the Deployment's);
        the slow connections (bench/slow_clients.py) send a request head one byte a second.
        """
        load_cpus = self.pinning.load_cpus if self.pinning else None
        for target in self.active:
            if target.name not in only:
                continue
            proc = self.servers[target.server]
            port = proc.port
            before = proc.sample(memory_detail=True)
            record: dict[str, Any] = {"target": target.name, "model": self.model.key}
            for key, slow in (("alone", 0), ("with_slow", plan.slow_clients)):
                self.log(f"  slow clients {target.name}/{self.model.key}: {slow} slow + "
                         f"{plan.soak_concurrency} clients, {plan.slow_seconds} s")  # fmt: skip
                with SlowClients("127.0.0.1", port, slow) as clients:
                    if slow:
                        time.sleep(slow / 100 + 3)  # every slow connection has started its head
                    with Prober("127.0.0.1", port) as prober:
                        try:
                            result = run_wrk(
                                self._url(target),
                                self._body(target),
                                connections=plan.soak_concurrency,
                                seconds=plan.slow_seconds,
                                timeout_s=plan.timeout_s,
                                cpus=load_cpus,
                            )
                        except LoadError as exc:
                            record[key] = {"failed": str(exc)}
                            continue
                    record[key] = {
                        **result.to_json(),
                        "probes": prober.stats.to_json(),
                        "slow": clients.stats.to_json(),
                    }
            end = proc.sample(memory_detail=True)
            record["rss_mib_before"] = _mib(before.rss_bytes)
            record["rss_mib_after"] = _mib(end.rss_bytes)
            self.run.slow.append(record)
            self.log(f"  slow clients {target.name}/{self.model.key}: {_slow_line(record)}")


def _slow_line(record: dict[str, Any]) -> str:
    parts = []
    for key in ("alone", "with_slow"):
        r = record.get(key, {})
        if "failed" in r or not r:
            parts.append(f"{key}: {r.get('failed', 'not run')}")
            continue
        parts.append(
            f"{key}: {r['rps']:.0f} req/s, p99 {r['latency_ms']['p99']:.1f} ms, "
            f"{r['error_count']} errors, probes {r['probes']['failed']} failed"
        )
    return "; ".join(parts)


def _cell_line(r: dict[str, Any]) -> str:
    head = f"  r{r['round']} {r['model']:>8} {r['target']:<22} c={r['concurrency']:<3}"
    if "failed" in r:
        return f"{head} FAILED: {r['failed']}"
    lat = r["latency_ms"]
    return (
        f"{head} {r['rps']:>8.1f} req/s  p50 {lat['p50']:>7.2f} ms  p99 {lat['p99']:>8.2f} ms  "
        f"errors {r['error_count']}  cpu/req {r['cpu_ms_per_request']} ms"
    )


def run_model(
    model: BenchModel,
    targets: list[Target],
    ctx: Context,
    pinning: Pinning | None,
    plan: Plan,
    logdir: Path,
    log: Log,
    soak: bool = False,
    soak_after: tuple[str, ...] = (),
    slow_after: tuple[str, ...] = (),
) -> ModelRun:
    """Start the model's servers, run its cells (or its soak), stop the servers.

    Args:
        soak: Run only the soak (every selected target), no cells.
        soak_after: After the cells, soak these targets too (``--with-soak``).
        slow_after: After that, the slow-client scenario on these (``--with-slow-clients``).

    Returns:
        Target status (``None`` = available, else why not), front and runtime of the servers
        that say, cells, server memory, soak records.
    """
    bench = ModelBench(model, targets, ctx, pinning, logdir, log, plan.ready_timeout_s)
    try:
        bench.start()
        bench.warm_up(plan)
        if soak:
            bench.soak(plan)
        else:
            bench.rounds(plan)
            if soak_after:
                bench.soak(plan, only=soak_after)
            if slow_after:
                bench.slow(plan, only=slow_after)
    finally:
        bench.stop()
    return bench.run
