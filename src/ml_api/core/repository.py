"""The model repository: every model a server serves, each at its serving version, swapped live.

One :class:`Repository` per server process tree. It holds one entry per served model (the
model's service and protocols, built by the composition root), answers which entry serves a
request, and keeps the entries in step with the registry on disk (``<model_root>/<name>/``):

- **Serving version.** Each model serves the version its pin names (``ML_API_MODEL_VERSION`` for
  the default model, ``name:version`` in ``ML_API_MODELS``; a number or an alias), else its
  ``production`` alias, else its newest version: what ``resolve`` (the composition root's
  :func:`~ml_api.core.model.artifact.resolve_version_dir`) says now.
- **Verified hot swap.** :meth:`Repository.refresh` compares every loaded model's entry with the
  version that should serve; a difference builds the new version with the same ``build`` as at
  start (sha256, version gate, runtime choice with the ONNX gate's record, warm-up), checks the
  memory budget, and replaces the entry in one assignment of a new dict. A request takes its
  entry once (:meth:`Repository.model`), so requests in flight finish on the version they began
  with, and each answer names its version. A build that fails leaves the old entry serving; the
  reason is logged, counted (``ml_api_model_swap_failures_total``) and listed by
  :meth:`Repository.index`.
- **Every worker.** gunicorn's workers are processes forked from a master that built the
  repository. What must agree across them lives in shared memory created before the fork: a
  generation counter and one "wanted loaded" flag per model. ``load``/``unload`` (the Open
  Inference Protocol's repository extension) and SIGHUP bump the generation; each process has a
  watcher thread (started on its first request) that refreshes when the generation moved, and
  every ``reload_seconds`` to follow ``ml-api promote`` written by another process. The design
  and its limits are in ``docs/models.md``.

Nothing here reads settings or imports a web framework: the composition root passes the names,
the builder and the resolver.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import logging
import multiprocessing
import os
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Protocol

from ml_api.core import metrics
from ml_api.core.errors import BadRequest, NotFound, ServingError, quote
from ml_api.core.protocols.routes import Model
from ml_api.core.service import PredictionService

log = logging.getLogger("ml_api.repository")

MAX_MODELS = 100
"""Most models one repository serves (a bound on metric labels and the index)."""

NAME_BYTES = 128
"""Longest model name (UTF-8 bytes) a repository takes from the model root after start."""


class OverMemoryBudget(ServingError):
    """Loading a model would take the server past its memory budget (507)."""

    status = HTTPStatus.INSUFFICIENT_STORAGE


class Entry(Model, Protocol):
    """One served model version: its service and what the transports answer with.

    ``ml_api.composition.ServedModel`` is one.
    """

    @property
    def service(self) -> PredictionService:
        """Validation and prediction of this version."""
        ...


Builder = Callable[[str, str], Entry]
"""``build(name, version)``: a verified, warmed-up entry; raises on any failed check."""

Resolver = Callable[[str], str]
"""``resolve(name)``: the version (number, as text) that should serve now; raises if none."""


@dataclass(frozen=True, slots=True)
class Loaded:
    """A loaded entry and what loading it cost.

    Attributes:
        entry: The served version.
        memory_bytes: Resident memory the process grew by while building it (at least the model
            file's size), in bytes.
    """

    entry: Entry
    memory_bytes: int


def release_memory() -> None:
    """Free a replaced model's memory now and hand it back to the system.

    A collection frees the old version's reference cycles at once; ``malloc_trim`` (glibc)
    returns the freed heap pages, which glibc otherwise keeps for later allocations: without it a
    process that swaps back and forth grows by a fraction of a model each time (the bench's
    ``--swaps`` measures it).
    """
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to trim
        ctypes.CDLL(None).malloc_trim(0)


def resident_bytes() -> int:
    """This process's resident set size, in bytes (``/proc/self/statm``; 0 where unavailable)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):  # pragma: no cover - not Linux
        return 0


class Repository:
    """The served models of one server, kept in step with the registry in every worker.

    Args:
        names: Every model this server may serve (at most :data:`MAX_MODELS`); the index lists
            them, ``load`` accepts only them.
        default: The model ``POST /predict`` and the unprefixed paths serve.
        loaded: The entries built at start, by name (the default model's among them).
        build: Builds a verified, warmed-up entry of ``(name, version)``; ``None`` for a fixed
            repository (tests, ``create_app(service=...)``): no swap, no load.
        resolve: The version that should serve a model now; ``None`` with ``build``.
        failures: Why a model of ``names`` could not be loaded at start, by name.
        memory_budget_bytes: Most resident memory the loaded models may take together, in
            bytes (``ML_API_MEMORY_BUDGET_MB``); ``None`` for no budget.
        reload_seconds: How often each process compares its entries with the registry, in
            seconds (``ML_API_RELOAD_SECONDS``); 0 to follow only SIGHUP and ``load``.
        discover: Lists the models on disk now (the registry's model directories), for a
            server that serves the whole model root: ``load`` and the index take models created
            after start (added unloaded, up to :data:`MAX_MODELS`; every worker agrees on them
            through shared memory); ``None``: only ``names``.

    Raises:
        ValueError: ``default`` is not loaded, or more than :data:`MAX_MODELS` names.
    """

    def __init__(
        self,
        names: Sequence[str],
        default: str,
        loaded: Mapping[str, Loaded],
        *,
        build: Builder | None = None,
        resolve: Resolver | None = None,
        failures: Mapping[str, str] | None = None,
        memory_budget_bytes: int | None = None,
        reload_seconds: float = 2.0,
        discover: Callable[[], Sequence[str]] | None = None,
    ) -> None:
        if default not in loaded:
            raise ValueError(f"the default model {default!r} is not loaded")
        if len(names) > MAX_MODELS:
            raise ValueError(f"{len(names)} models; a server serves at most {MAX_MODELS}")
        self.names = tuple(names)
        self.default = default
        self._index = {name: i for i, name in enumerate(self.names)}
        self._loaded: dict[str, Loaded] = dict(loaded)
        self._build = build
        self._resolve = resolve
        self._failures: dict[str, str] = dict(failures or {})
        self._refused: dict[str, str] = {}  # the version of each model that last failed
        self.memory_budget_bytes = memory_budget_bytes
        self.reload_seconds = reload_seconds
        # shared by every process forked after this (gunicorn's workers): see the module doc
        self._generation = multiprocessing.RawValue(ctypes.c_long, 0)
        self._wanted = multiprocessing.RawArray(ctypes.c_bool, MAX_MODELS)
        self._discover = discover
        # the names every process agrees on: the start's, then each discovered one, in order
        self._shared_names = multiprocessing.RawArray(ctypes.c_char, MAX_MODELS * NAME_BYTES)
        self._shared_count = multiprocessing.RawValue(ctypes.c_int, 0)
        self._names_lock = multiprocessing.Lock()
        for name in self.names:
            self._share(name)
        for name in loaded:
            self._wanted[self._index[name]] = True
        self._seen = 0
        self._lock = threading.RLock()
        self._watching = False
        self._stop = threading.Event()
        ref = weakref.ref(self)
        os.register_at_fork(after_in_child=lambda: _after_fork(ref))
        for name, item in self._loaded.items():
            self._publish(name, item)

    # ---- the request path ------------------------------------------------------------------

    def model(self, name: str | None = None, version: str | None = None) -> Entry:
        """The entry serving ``name`` (the default model for ``None``), taken once per request.

        Args:
            name: A model name from the path, or ``None``.
            version: A version from the path; it must be the one serving, or ``None``.

        Returns:
            The entry; the caller uses this one object for the whole request.

        Raises:
            NotFound: (404) the model is not served (unknown or unloaded) or ``version`` is not
                its serving version; the name is quoted, bounded (:func:`quote`).
        """
        if not self._watching and self._build is not None:
            self._start_watching()
        return self.current(name, version)

    def current(self, name: str | None = None, version: str | None = None) -> Entry:
        """:meth:`model` without starting this process's watcher (the master, before forking).

        Raises:
            NotFound: (404) as :meth:`model`.
        """
        loaded = self._loaded  # one read: a swap replaces the dict, never mutates it
        found = loaded.get(self.default if name is None else name)
        if found is None:
            raise NotFound(
                f"unknown model {quote(name)}; this server serves: {', '.join(sorted(loaded))}"
            )
        entry = found.entry
        if version is not None and version != entry.service.artifact.version:
            raise NotFound(
                f"unknown version {quote(version)} of model {quote(name)}; serving version: "
                f"{entry.service.artifact.version}"
            )
        return entry

    @property
    def entries(self) -> dict[str, Entry]:
        """The loaded entries by name (a snapshot)."""
        return {name: item.entry for name, item in self._loaded.items()}

    # ---- the repository extension -----------------------------------------------------------

    def index(self) -> list[dict[str, Any]]:
        """The Open Inference Protocol repository index: every model this server may serve.

        Returns:
            ``[{"name", "version", "state", "reason"}]`` sorted by name; ``state`` is ``READY``
            (``version`` is the serving one) or ``UNAVAILABLE`` (``reason`` says why: unloaded,
            or the last load or swap that failed); a ready model whose last swap failed keeps
            ``READY`` and the failure in ``reason``.
        """
        self._find_new()
        loaded = self._loaded
        rows = []
        for name in sorted(self.names):
            item = loaded.get(name)
            reason = self._failures.get(name, "")
            if item is not None:
                version = item.entry.service.artifact.version
                rows.append({"name": name, "version": version, "state": "READY", "reason": reason})
            else:
                wanted = self._wanted[self._index[name]]
                reason = reason or ("not loaded" if wanted else "unloaded")
                rows.append({"name": name, "version": "", "state": "UNAVAILABLE", "reason": reason})
        return rows

    def load(self, name: str) -> None:
        """Load (or re-verify and swap to the serving version of) a model, in every process.

        This process loads it before returning; the others follow at their next refresh.

        Args:
            name: One of :attr:`names`.

        Raises:
            NotFound: (404) not a model of this server (quoted, bounded).
            BadRequest: (400) this repository is fixed, or the version failed verification
                (the reason in the message).
            OverMemoryBudget: (507) loading it would exceed the memory budget.
        """
        index = self._known(name)
        if self._build is None:
            raise BadRequest("this server's models are fixed: it cannot load models")
        with self._lock:
            self._wanted[index] = True
            failure = self._sync(name, force=True)
            if failure is not None:
                if name not in self._loaded:
                    self._wanted[index] = False
                raise failure
            self._bump()

    def unload(self, name: str) -> None:
        """Stop serving a model in every process (requests in flight finish on it).

        Args:
            name: One of :attr:`names`.

        Raises:
            NotFound: (404) not a model of this server.
            BadRequest: (400) the default model (``POST /predict`` serves it), or a fixed
                repository.
        """
        index = self._known(name)
        if self._build is None:
            raise BadRequest("this server's models are fixed: it cannot unload models")
        if name == self.default:
            raise BadRequest(
                f"model {name!r} is the default model (POST /predict serves it); it cannot be "
                "unloaded"
            )
        with self._lock:
            self._wanted[index] = False
            self._sync(name)
            self._bump()

    # ---- keeping in step ---------------------------------------------------------------------

    def refresh(self, *, force: bool = False) -> None:
        """Bring every model of this process in line with the registry and the shared flags.

        Never raises for a model: a failure is logged, counted and kept for :meth:`index`, and
        the old entry keeps serving.

        Args:
            force: Retry versions that failed before (a signalled refresh); the periodic one
                does not.
        """
        with self._lock:
            self._adopt()
            moved = self._seen != self._generation.value
            self._seen = self._generation.value
            for name in self.names:
                self._sync(name, force=force or moved)

    def signal_reload(self) -> None:
        """Ask every process to refresh now (SIGHUP): this one refreshes, the others follow."""
        self.refresh(force=True)
        self._bump()

    def close(self) -> None:
        """Stop this process's watcher thread (tests; the process's exit does it otherwise)."""
        self._stop.set()

    def _known(self, name: str) -> int:
        index = self._index.get(name)
        if index is None:
            self._find_new()
            index = self._index.get(name)
        if index is None:
            raise NotFound(
                f"unknown model {quote(name)}; the repository holds: {', '.join(self.names)}"
            )
        return index

    def _share(self, name: str) -> None:
        """Append ``name`` to the shared names (the caller holds ``_names_lock`` or is alone)."""
        slot = self._shared_count.value
        start = slot * NAME_BYTES
        data = name.encode().ljust(NAME_BYTES, b"\0")
        ctypes.memmove(ctypes.addressof(self._shared_names) + start, data, NAME_BYTES)
        self._shared_count.value = slot + 1

    def _adopt(self) -> None:
        """Take the names another process discovered (in the shared order)."""
        count = self._shared_count.value
        if count == len(self.names):
            return
        with self._lock:
            raw = ctypes.string_at(ctypes.addressof(self._shared_names), count * NAME_BYTES)
            names = [
                raw[i : i + NAME_BYTES].rstrip(b"\0").decode()
                for i in range(0, len(raw), NAME_BYTES)
            ]
            self.names = tuple(names)
            self._index = {name: i for i, name in enumerate(names)}

    def _find_new(self) -> None:
        """Add the model directories created since start (unloaded) to every process's names."""
        if self._discover is None or self._build is None:
            self._adopt()
            return
        try:
            found = self._discover()
        except OSError as exc:  # the model root went away: keep what is known
            log.warning("cannot list the model root: %s", exc)
            found = []
        with self._names_lock:
            self._adopt()
            for name in sorted(set(found) - set(self.names)):
                if self._shared_count.value >= MAX_MODELS or len(name.encode()) > NAME_BYTES:
                    log.warning("model %r is not served: the repository is full", name)
                    continue
                self._share(name)
                log.info("model %s found in the model root (not loaded)", name)
            self._adopt()

    def _bump(self) -> None:
        self._generation.value += 1
        self._seen = self._generation.value

    def _sync(self, name: str, *, force: bool = False) -> ServingError | None:
        """Load, swap or unload one model as the flags and the registry say (holding the lock).

        A version that failed is not tried again by the periodic refresh (once refused, logged
        once), only when ``force`` (SIGHUP, a repository ``load``).

        Returns:
            The failure, when one happened (also logged, counted and kept), else ``None``.
        """
        current = self._loaded.get(name)
        if not self._wanted[self._index[name]]:
            if current is not None:
                self._replace(name, None)
                metrics.withdraw_serving(name)
                log.info("model %s version %s unloaded", name, self._version(current))
                del current
                release_memory()
            self._failures.pop(name, None)
            return None
        assert self._build is not None and self._resolve is not None
        try:
            version = self._resolve(name)
        except Exception as exc:
            return self._failed(name, current, None, exc)
        if current is not None and self._version(current) == version:
            return None
        if self._refused.get(name) == version and not force:
            return None  # refused already; SIGHUP or a repository load retries it
        try:
            item = self._measure(name, version, current)
        except Exception as exc:
            self._refused[name] = version
            return self._failed(name, current, version, exc)
        self._refused.pop(name, None)
        self._replace(name, item)
        self._failures.pop(name, None)
        self._publish(name, item)
        if current is None:
            log.info("model %s version %s loaded and verified", name, version)
            return None
        log.info(
            "model %s: version %s verified and serving (was version %s)",
            name,
            version,
            self._version(current),
        )
        del current  # requests still on it keep it alive until they finish
        release_memory()
        return None

    def _measure(self, name: str, version: str, current: Loaded | None) -> Loaded:
        assert self._build is not None
        before = resident_bytes()
        entry = self._build(name, version)
        grown = max(0, resident_bytes() - before)
        model_bytes = int(entry.service.artifact.card.model_file.bytes or 0)
        item = Loaded(entry, max(grown, model_bytes))
        budget = self.memory_budget_bytes
        if budget is not None:
            others = sum(v.memory_bytes for k, v in self._loaded.items() if k != name)
            if others + item.memory_bytes > budget:
                raise OverMemoryBudget(
                    f"loading model {name!r} version {version} needs about "
                    f"{item.memory_bytes / 1e6:.1f} MB; the other models hold "
                    f"{others / 1e6:.1f} MB of the {budget / 1e6:.1f} MB budget "
                    "(ML_API_MEMORY_BUDGET_MB): unload a model or raise the budget"
                )
        return item

    def _failed(
        self, name: str, current: Loaded | None, version: str | None, exc: Exception
    ) -> ServingError:
        what = f"version {version}" if version is not None else "its serving version"
        keeps = (
            f"version {self._version(current)} keeps serving"
            if current is not None
            else "not served"
        )
        reason = f"model {name!r} {what} failed verification ({keeps}): {exc}"
        if isinstance(exc, OverMemoryBudget):
            reason = f"{exc} ({keeps})"
        self._failures[name] = reason
        log.error("%s", reason)
        metrics.SWAP_FAILURES.labels(name).inc()
        return exc if isinstance(exc, ServingError) else BadRequest(reason)

    def _replace(self, name: str, item: Loaded | None) -> None:
        loaded = dict(self._loaded)
        if item is None:
            loaded.pop(name, None)
        else:
            loaded[name] = item
        self._loaded = loaded  # one assignment: a request sees the old dict or the new one

    @staticmethod
    def _version(item: Loaded) -> str:
        return item.entry.service.artifact.version

    @staticmethod
    def _publish(name: str, item: Loaded) -> None:
        metrics.MODEL_MEMORY.labels(name).set(item.memory_bytes)
        metrics.SWAP_FAILURES.labels(name)  # exported at 0 from the start
        service = item.entry.service
        metrics.publish_serving(
            name, service.artifact.version, service.predictor.runtime, service.sklearn_version
        )

    # ---- the watcher ---------------------------------------------------------------------------

    def _after_fork(self) -> None:
        self._watching = False
        self._stop = threading.Event()
        self._lock = threading.RLock()

    def _start_watching(self) -> None:
        with self._lock:
            if self._watching:
                return
            # a worker forked from a stale master catches up before answering: with polling on,
            # to the registry; with it off (only SIGHUP and load move models), only when a
            # SIGHUP or load moved the shared generation since the fork
            if self.reload_seconds > 0 or self._generation.value != self._seen:
                self.refresh()
            self._watching = True
            threading.Thread(target=self._watch, name="ml-api-repository", daemon=True).start()

    def _watch(self) -> None:
        next_poll = time.monotonic() + self.reload_seconds
        while not self._stop.wait(0.2):
            now = time.monotonic()
            polled = self.reload_seconds > 0 and now >= next_poll
            if self._generation.value != self._seen or polled:
                try:
                    self.refresh()
                except Exception:  # pragma: no cover - refresh catches per model
                    log.exception("refreshing the model repository failed")
                next_poll = now + self.reload_seconds


def _after_fork(ref: weakref.ref[Repository]) -> None:
    repository = ref()
    if repository is not None:
        repository._after_fork()
