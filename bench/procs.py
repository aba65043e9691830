"""Processes: free ports, CPU pinning, and CPU time and memory of a server's process tree.

The figures come from psutil (``/proc`` on Linux). A server's "tree" is its main process and every
descendant alive at the moment of measurement (gunicorn master and workers; MLServer's HTTP
process and its inference workers).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass

import psutil


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the OS picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class Pinning:
    """Which CPUs the load generator and the servers may run on.

    Attributes:
        load_cpus: CPUs for wrk and this harness.
        server_cpus: CPUs for every server process (inherited by their children).
    """

    load_cpus: tuple[int, ...]
    server_cpus: tuple[int, ...]

    def describe(self) -> str:
        """One line for the report."""
        return (
            f"load generator (wrk, 1 thread) pinned to CPU {_cpus(self.load_cpus)}, "
            f"servers pinned to CPU {_cpus(self.server_cpus)}"
        )


def _cpus(cpus: tuple[int, ...]) -> str:
    return ",".join(str(c) for c in cpus)


def plan_pinning(enabled: bool) -> Pinning | None:
    """Split the CPUs this process may use: the first for load, the rest for servers.

    Returns:
        ``None`` when pinning is off or fewer than two CPUs are usable.
    """
    cpus = tuple(sorted(os.sched_getaffinity(0)))
    if not enabled or len(cpus) < 2:
        return None
    return Pinning(load_cpus=cpus[:1], server_cpus=cpus[1:])


def pin_to(cpus: tuple[int, ...] | None) -> Callable[[], None] | None:
    """A ``preexec_fn`` that pins the child to ``cpus`` (``None``: no pinning)."""
    if not cpus:
        return None
    return lambda: os.sched_setaffinity(0, cpus)


def process_tree(pid: int) -> list[psutil.Process]:
    """The process and its live descendants (empty when the process is gone)."""
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


@dataclass(frozen=True)
class TreeSample:
    """CPU time and memory of a process tree at one moment.

    Attributes:
        cpu_seconds: User plus system CPU time of the live processes, in seconds.
        rss_bytes: Sum of resident set sizes (pages shared after fork count once per process).
        pss_bytes: Sum of proportional set sizes (shared pages split between sharers), or ``None``
            where ``/proc/<pid>/smaps_rollup`` cannot be read.
        processes: How many processes were measured.
    """

    cpu_seconds: float
    rss_bytes: int
    pss_bytes: int | None
    processes: int


def sample_tree(pid: int, memory_detail: bool = False) -> TreeSample:
    """Measure a process tree; with ``memory_detail`` also PSS (slower: reads smaps)."""
    cpu = 0.0
    rss = 0
    pss: int | None = 0 if memory_detail else None
    procs = process_tree(pid)
    for proc in procs:
        try:
            times = proc.cpu_times()
            cpu += times.user + times.system
            if memory_detail and pss is not None:
                info = proc.memory_full_info()
                rss += info.rss
                pss += getattr(info, "pss", 0)
            else:
                rss += proc.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return TreeSample(cpu_seconds=cpu, rss_bytes=rss, pss_bytes=pss, processes=len(procs))


class CpuMeter:
    """Busy time of a set of CPUs between two calls, from ``/proc/stat`` (all processes)."""

    def __init__(self, cpus: tuple[int, ...] | None) -> None:
        self.cpus = cpus
        self._start = self._busy()

    def _busy(self) -> float:
        per_cpu = psutil.cpu_times(percpu=True)
        chosen = self.cpus if self.cpus else range(len(per_cpu))
        total = 0.0
        for i in chosen:
            t = per_cpu[i]
            idle = t.idle + getattr(t, "iowait", 0.0)
            total += sum(t) - idle - getattr(t, "guest", 0.0) - getattr(t, "guest_nice", 0.0)
        return total

    def busy_seconds(self) -> float:
        """CPU seconds these CPUs were busy since the meter was made."""
        return self._busy() - self._start
