"""Slow clients and probes: the pieces of the slow-client scenario (loopback only, bounded).

:class:`SlowClients` holds N connections open, each sending one byte of a request head per
interval and never finishing it (the "slowloris" pattern: ``POST /predict HTTP/1.1``, ``Host``,
then header lines forever). A connection the server closes is counted and opened again, so the
pressure lasts as long as the context. :class:`Prober` asks ``/health`` and ``/ready`` every
half second meanwhile and keeps each answer's status and latency. Both stop by themselves when
their ``with`` block ends; nothing is sent anywhere but the given loopback port.
"""

from __future__ import annotations

import http.client
import itertools
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

HEAD_START = b"POST /predict HTTP/1.1\r\nHost: x\r\n"
"""The first bytes each slow connection sends, one per interval; header lines follow forever."""


def _head_bytes() -> Any:
    """The endless request head a slow client sends, one byte at a time."""
    yield from HEAD_START
    for n in itertools.count():
        yield from f"X-Slow-{n}: y\r\n".encode()


@dataclass
class SlowStats:
    """What the slow connections met.

    Attributes:
        opened: Connections opened (reopenings included).
        refused: Connection attempts that failed (refused or timed out after 5 s).
        closed_by_server: Times the server closed a slow connection (it was then reopened).
        bytes_sent: Head bytes sent over all connections.
    """

    opened: int = 0
    refused: int = 0
    closed_by_server: int = 0
    bytes_sent: int = 0

    def to_json(self) -> dict[str, int]:
        """A JSON-ready dict."""
        return dict(self.__dict__)


class SlowClients:
    """``n`` connections to ``host:port`` sending one request-head byte each per ``interval``.

    Args:
        host: Server address (loopback).
        port: Server port.
        n: Connections held open.
        interval: Seconds between two bytes on one connection (1.0: the classic slowloris).
        connect_timeout: Longest wait for one connection to open, in seconds.
    """

    def __init__(
        self,
        host: str,
        port: int,
        n: int,
        interval: float = 1.0,
        connect_timeout: float = 5.0,
    ) -> None:
        self.host = host
        self.port = port
        self.n = n
        self.interval = interval
        self.connect_timeout = connect_timeout
        self.stats = SlowStats()
        self._conns: list[tuple[socket.socket | None, Any]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="slow-clients", daemon=True)

    def _open(self) -> tuple[socket.socket | None, Any]:
        try:
            sock = socket.create_connection((self.host, self.port), timeout=self.connect_timeout)
        except OSError:
            self.stats.refused += 1
            return None, _head_bytes()
        sock.settimeout(self.connect_timeout)
        self.stats.opened += 1
        return sock, _head_bytes()

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            for i, (sock, head) in enumerate(self._conns):
                if self._stop.is_set():
                    break
                if sock is None:
                    self._conns[i] = self._open()
                    continue
                try:
                    sock.send(bytes([next(head)]))
                    self.stats.bytes_sent += 1
                except OSError:
                    self.stats.closed_by_server += 1
                    sock.close()
                    self._conns[i] = self._open()
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - started)))

    def __enter__(self) -> SlowClients:
        self._conns = [self._open() for _ in range(self.n)]
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        for sock, _ in self._conns:
            if sock is not None:
                sock.close()
        self._conns = []


@dataclass
class ProbeStats:
    """Probe answers seen while :class:`Prober` ran.

    Attributes:
        answers: ``(path, status, seconds)`` per probe; status 0 when it failed or timed out.
    """

    answers: list[tuple[str, int, float]] = field(default_factory=list)

    def failed(self) -> int:
        """Probes not answered within the timeout (status 0)."""
        return sum(1 for _, status, _ in self.answers if status == 0)

    def max_seconds(self) -> float:
        """Slowest probe answer, in seconds (0.0 when none ran)."""
        return max((s for _, _, s in self.answers), default=0.0)

    def to_json(self) -> dict[str, Any]:
        """Count, failures, slowest and statuses seen."""
        return {
            "probes": len(self.answers),
            "failed": self.failed(),
            "max_ms": round(self.max_seconds() * 1000, 1),
            "statuses": sorted({status for _, status, _ in self.answers}),
        }


class Prober:
    """Asks ``/health`` and ``/ready`` every ``period`` seconds, each on a new connection.

    Args:
        host: Server address (loopback).
        port: Server port.
        period: Seconds between two rounds of probes.
        timeout: Probe timeout in seconds (the Deployment's readiness probe allows 3).
    """

    def __init__(self, host: str, port: int, period: float = 0.5, timeout: float = 3.0) -> None:
        self.host = host
        self.port = port
        self.period = period
        self.timeout = timeout
        self.stats = ProbeStats()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="prober", daemon=True)

    def probe(self, path: str) -> tuple[int, float]:
        """One ``GET path`` on a new connection: ``(status, seconds)``, status 0 on failure."""
        started = time.monotonic()
        conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            response.read()
            status = response.status
        except OSError:
            status = 0
        finally:
            conn.close()
        return status, time.monotonic() - started

    def _run(self) -> None:
        while not self._stop.is_set():
            for path in ("/health", "/ready"):
                status, seconds = self.probe(path)
                self.stats.answers.append((path, status, seconds))
            self._stop.wait(self.period)

    def __enter__(self) -> Prober:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=self.timeout * 2 + 1)
