"""Prometheus metrics, defined once here and recorded by the core.

Flask and Django therefore emit the same series.

Under gunicorn, ``ml-api serve`` points ``PROMETHEUS_MULTIPROC_DIR`` at an empty directory before
this module is first imported; every worker then writes its samples there and :func:`render` merges
them (prometheus_client's multiprocess mode), so a scrape that lands on any worker sees the whole
server. Without that variable (tests, the development server) the default registry is used.

Names and units follow the Prometheus conventions (``_total`` counters, ``_seconds`` durations);
every label has a bounded set of values (route templates, not raw paths; model classes, not inputs).
"""

from __future__ import annotations

import os
import platform
import threading
from bisect import bisect_left
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as _multiprocess
from prometheus_client import values as _values

from ml_api.core.context import current

_pid = [os.getpid()]


def process_id() -> int:
    """This process's id, as ``os.getpid()`` returns it, without a system call per metric write.

    prometheus_client's multiprocess values ask for the process id on every write (to notice a
    fork and switch to the child's own files); ``os.getpid()`` is a system call, 20 of them per
    request. The id is kept here and refreshed in every forked child before it runs any Python
    (``os.register_at_fork``), so it is the same id at every moment: distinct in every live
    process, as prometheus_client's ``MultiProcessValue(process_identifier=...)`` requires.
    """
    return _pid[0]


def _forked() -> None:
    _pid[0] = os.getpid()


if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.register_at_fork(after_in_child=_forked)
    # before any metric below is created: every value of this process uses it
    _values.ValueClass = _values.MultiProcessValue(process_identifier=process_id)  # type: ignore[no-untyped-call]

LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
"""Seconds. Finer at the low end than prometheus_client's defaults: a scikit-learn prediction of a
few rows takes well under 5 ms, the smallest default bucket."""

INSTANCE_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000)
"""Instances per request; the top matches the largest sensible ``max_instances``."""

MODEL_LABELS = ("model_name", "model_version")
PREDICTION_LABELS = (*MODEL_LABELS, "runtime")
"""The prediction series also carry the runtime that served them (``sklearn`` or ``onnx``)."""

HTTP_REQUESTS = Counter(
    "ml_api_http_requests",
    "HTTP requests answered, by method, route template and status code.",
    ("method", "route", "status"),
)
HTTP_DURATION = Histogram(
    "ml_api_http_request_duration_seconds",
    "Time from the request reaching the app to the response leaving it, in seconds.",
    ("method", "route", "status"),
    buckets=LATENCY_BUCKETS,
)
IN_FLIGHT = Gauge(
    "ml_api_http_requests_in_flight",
    "HTTP requests being handled right now, across all workers.",
    multiprocess_mode="livesum",
)
PREDICTIONS = Counter(
    "ml_api_predictions",
    "Instances predicted, by model and predicted class (empty class for regressors).",
    (*PREDICTION_LABELS, "predicted_class"),
)
REQUEST_INSTANCES = Histogram(
    "ml_api_request_instances",
    "Instances per successful prediction request.",
    PREDICTION_LABELS,
    buckets=INSTANCE_BUCKETS,
)
PREDICTION_DURATION = Histogram(
    "ml_api_prediction_duration_seconds",
    "Time spent in the model's predict/predict_proba for one request, in seconds.",
    PREDICTION_LABELS,
    buckets=LATENCY_BUCKETS,
)
OUT_OF_RANGE = Counter(
    "ml_api_out_of_range",
    "Numeric values outside their feature's training range, warned about or refused "
    "(ML_API_OUT_OF_RANGE), by model and feature.",
    (*MODEL_LABELS, "feature"),
)
BATCH_ROWS = Histogram(
    "ml_api_batch_rows",
    "Rows per model call (adaptive batching merges concurrent requests of a worker).",
    PREDICTION_LABELS,
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024),
)
BATCH_QUEUE_WAIT = Histogram(
    "ml_api_batch_queue_wait_seconds",
    "Time a request waited for its model call after validation, in seconds.",
    PREDICTION_LABELS,
    buckets=LATENCY_BUCKETS,
)
MODEL_LOAD_DURATION = Gauge(
    "ml_api_model_load_duration_seconds",
    "Time the model took to load and verify, in seconds.",
    MODEL_LABELS,
    multiprocess_mode="max",
)
MODEL_INFO = Gauge(
    "ml_api_model_info",
    "The model version being served (1), with its runtime and the library versions it runs on; "
    "0 for a version this server served before a swap or an unload.",
    (*PREDICTION_LABELS, "sklearn_version", "python_version"),
    multiprocess_mode="mostrecent",
)
"""Under gunicorn each process writes its own file, the master's included (it loads the models
before forking, and swaps on SIGHUP but not on a promotion it is not told of). ``mostrecent``
exports, for each label set, the value last set in any process: a process that swaps sets the old
version's labels to 0 after the master's 1 of the start, so a scrape shows exactly one version at
1 per model. ``max`` kept the old version at 1 for as long as one file (the master's, or a dead
worker's: non-live files stay) held it; ``liveall`` would export the stale master's 1 too."""
TRAINING_CLASS_RATIO = Gauge(
    "ml_api_model_training_class_ratio",
    "Share of each class in the training data; compare with the predictions' class mix.",
    (*MODEL_LABELS, "class"),
    multiprocess_mode="max",
)

FEATURE_VALUES = Counter(
    "ml_api_feature_values",
    "Served instances by feature and bin of the model version's reference profile (deciles of "
    "a numeric feature, categories, '(other)', '(missing)'): the input distribution, for drift.",
    (*MODEL_LABELS, "feature", "bin"),
)
FEATURE_REFERENCE_RATIO = Gauge(
    "ml_api_feature_reference_ratio",
    "Share of the reference (training or import) rows in each bin of each feature; compare "
    "with ml_api_feature_values_total (the recording rules compute the PSI).",
    (*MODEL_LABELS, "feature", "bin"),
    multiprocess_mode="max",
)
PREDICTION_LOG_RECORDS = Counter(
    "ml_api_prediction_log_records",
    "Prediction log records, by outcome: written, or dropped because the log's queue was full "
    "(a request never waits for the log) or the sink failed.",
    ("outcome",),
)
MODEL_MEMORY = Gauge(
    "ml_api_model_memory_bytes",
    "Resident memory a served model took when its version was loaded in a process, in bytes "
    "(at least its model file's size); the largest of the live processes.",
    ("model_name",),
    multiprocess_mode="livemax",
)
SERVING_VERSION = Gauge(
    "ml_api_model_serving_version",
    "The version each served model answers with (the one the most recent swap of any process "
    "set; processes converge within ML_API_RELOAD_SECONDS).",
    ("model_name",),
    multiprocess_mode="mostrecent",
)
"""``mostrecent`` for the reason of :data:`MODEL_INFO`: ``livemax`` kept a rolled-back model at the
higher version the master still held."""
SWAP_FAILURES = Counter(
    "ml_api_model_swap_failures",
    "Loads and swaps refused because the new version failed verification, warm-up or the "
    "memory budget (the old version kept serving).",
    ("model_name",),
)

REQUESTS_SHED = Counter(
    "ml_api_requests_shed",
    "Requests refused unstarted with 503 because their worker was overloaded, by reason: "
    "queue_full (ML_API_MAX_QUEUED_REQUESTS) or queue_wait (ML_API_MAX_QUEUE_WAIT_SECONDS).",
    ("reason",),
)
QUEUED_REQUESTS = Gauge(
    "ml_api_http_requests_queued",
    "Complete requests waiting for a request thread, across all workers (each worker's count as "
    "its event loop last saw it).",
    multiprocess_mode="livesum",
)


Write = tuple[Any, float]
"""One deferred write: a prometheus_client value (a ``MutexValue`` or ``MmapedValue``) and the
amount to add to it."""


def _lock_of(value_class: type) -> Any:
    """The lock prometheus_client's ``MultiProcessValue`` shares between all its values.

    It is a local of the factory that made ``value_class``, held by every ``inc``/``set``;
    :func:`apply` takes the same lock, so its writes and the library's never interleave.
    """
    inc = value_class.inc  # type: ignore[attr-defined]
    cell = inc.__closure__[inc.__code__.co_freevars.index("lock")]
    return cell.cell_contents


_MMAPED = _values.ValueClass if getattr(_values.ValueClass, "_multiprocess", False) else None
_MMAP_LOCK = _lock_of(_MMAPED) if _MMAPED is not None else None


def apply(writes: list[Write]) -> None:
    """Add each amount to its value: under one lock, one fork check, in multiprocess mode.

    prometheus_client's ``MmapedValue.inc`` takes the process-wide lock, checks the process id
    and packs the value into the process's mmap file, once per write; here that is done once for
    all of a request's writes, and each write is what ``inc`` does: the value grows by the amount,
    its timestamp is 0 and ``MmapedDict.write_value`` stores both. Single-process values
    (``MutexValue``) are incremented one by one, as ``inc`` does.

    Args:
        writes: ``(value, amount)`` pairs; a value may appear more than once.
    """
    if _MMAP_LOCK is None:
        for value, amount in writes:
            value.inc(amount)
        return
    with _MMAP_LOCK:
        if writes:
            # after a fork, reopens this process's files for every value, as inc() does
            writes[0][0]._MmapedValue__check_for_pid_change()
        for value, amount in writes:
            value._value += amount
            value._timestamp = 0.0
            value._file.write_value(value._key, value._value, 0.0)


def _deferred() -> list[Write] | None:
    """The current request's pending writes, or ``None`` to write at once."""
    ctx = current()
    return None if ctx is None else ctx.tally


class CountingChild:
    """A labelled counter whose increments during a request are written when the request ends.

    Inside a request (:func:`ml_api.core.telemetry.begin_request` to ``end_request``) an
    increment joins the request's pending writes, which ``end_request`` applies together
    (:func:`apply`) before the response leaves, so a scrape after the response sees it; outside
    a request it is written at once. Either way the exported value is the one
    ``Counter.labels(...).inc(amount)`` gives.

    Args:
        child: The prometheus_client child (``Counter.labels(...)``).
    """

    __slots__ = ("_child", "_value")

    def __init__(self, child: Any) -> None:
        self._child = child
        self._value = child._value

    def inc(self, amount: float = 1) -> None:
        """Add ``amount`` (>= 0).

        Raises:
            ValueError: ``amount`` is negative (as prometheus_client's counter).
        """
        if amount < 0:
            raise ValueError("Counters can only be incremented by non-negative amounts.")
        pending = _deferred()
        if pending is None:
            self._child.inc(amount)
        else:
            pending.append((self._value, amount))


class ObservingChild:
    """A labelled histogram whose observations during a request are written when it ends.

    As :class:`CountingChild`: an observation adds its amount to ``_sum`` and 1 to the first
    bucket whose upper bound is >= the amount (none for NaN), exactly as
    ``Histogram.labels(...).observe(amount)``.

    Args:
        child: The prometheus_client child (``Histogram.labels(...)``).
    """

    __slots__ = ("_bounds", "_buckets", "_child", "_sum")

    def __init__(self, child: Any) -> None:
        self._child = child
        self._sum = child._sum
        self._buckets = child._buckets
        self._bounds = child._upper_bounds

    def observe(self, amount: float) -> None:
        """Observe ``amount`` (seconds, rows, ... in the histogram's unit)."""
        pending = _deferred()
        if pending is None:
            self._child.observe(amount)
            return
        pending.append((self._sum, amount))
        if amount == amount:  # NaN falls in no bucket
            pending.append((self._buckets[bisect_left(self._bounds, amount)], 1.0))


_children: dict[tuple[object, tuple[str, ...]], Any] = {}
_children_lock = threading.Lock()


def child(metric: Counter | Histogram | Gauge, *labels: str) -> Any:
    """``metric.labels(*labels)``, looked up once per process and kept, writes deferred.

    prometheus_client's ``.labels()`` converts the values, takes a lock and looks the child up on
    every call; the hot path calls this instead. The child is created on first use, as
    ``.labels()`` creates it, so ``/metrics`` shows the same series at the same moment. A
    counter's or histogram's child comes wrapped (:class:`CountingChild`,
    :class:`ObservingChild`): inside a request its writes are applied together at the request's
    end, under one lock; a gauge's child is prometheus_client's own (its writes are immediate).

    Args:
        metric: A labelled metric of this module.
        *labels: Its label values, in its label order, as strings.

    Returns:
        The labelled child (``inc``/``observe``/``set`` as usual).
    """
    key = (metric, labels)
    found = _children.get(key)
    if found is None:
        with _children_lock:
            found = _children.get(key)
            if found is None:
                raw = metric.labels(*labels)
                if isinstance(metric, Counter):
                    found = CountingChild(raw)
                elif isinstance(metric, Histogram):
                    found = ObservingChild(raw)
                else:
                    found = raw
                _children[key] = found
    return found


@contextmanager
def writes_now() -> Iterator[None]:
    """Write at once, not at the request's end, inside this block (this thread's request).

    For writes one request makes on behalf of others (a batch leader recording each merged
    request's queue wait): those requests may answer before this one ends.
    """
    ctx = current()
    pending = None if ctx is None else ctx.tally
    if ctx is not None:
        ctx.tally = None
    try:
        yield
    finally:
        if ctx is not None:
            ctx.tally = pending


def record_http(method: str, route: str, status: int, seconds: float) -> None:
    """Count one answered request and observe its duration (:data:`HTTP_REQUESTS`, ``_DURATION``).

    Through :func:`child`, so the labelled children are looked up once per ``(method, route,
    status)`` in this process; the samples written, and so what ``/metrics`` shows, are the same as
    ``.labels(...).inc()`` and ``.observe()`` make.

    Args:
        method: HTTP method.
        route: The normalized route label (``telemetry.normalize_route``).
        status: HTTP status code sent.
        seconds: Time spent on the request, in seconds.
    """
    labels = (method, route, str(status))
    child(HTTP_REQUESTS, *labels).inc()
    child(HTTP_DURATION, *labels).observe(seconds)


def multiprocess_enabled() -> bool:
    """Whether samples go to ``PROMETHEUS_MULTIPROC_DIR`` (set before this module was imported)."""
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


def record_model(
    name: str,
    version: str,
    load_seconds: float,
    sklearn_version: str,
    class_ratios: Mapping[str, float] | None,
    runtime: str = "sklearn",
) -> None:
    """Publish a loaded model version's load time and training class mix.

    Which version serves is :func:`publish_serving`'s, once a repository has switched to it.

    Args:
        name: Model name.
        version: Model version.
        load_seconds: Load and verification time, in seconds.
        sklearn_version: scikit-learn version the model runs on.
        class_ratios: Class label to its share of the training rows (sums to 1), or ``None``.
        runtime: The runtime serving it (``sklearn`` or ``onnx``).
    """
    MODEL_LOAD_DURATION.labels(name, version).set(load_seconds)
    for label, ratio in (class_ratios or {}).items():
        TRAINING_CLASS_RATIO.labels(name, version, label).set(ratio)


_serving: dict[str, tuple[str, ...]] = {}
"""The :data:`MODEL_INFO` labels this process last set to 1, by model name (a forked worker
inherits the master's, so its first swap zeroes them)."""


def publish_serving(name: str, version: str, runtime: str, sklearn_version: str) -> None:
    """Export ``version`` as the one serving ``name`` (:data:`MODEL_INFO` and ``SERVING_VERSION``).

    Its :data:`MODEL_INFO` goes to 1, the labels this process published for ``name`` before to 0.

    Args:
        name: Model name.
        version: The version now serving (a number, as text).
        runtime: The runtime serving it (``sklearn`` or ``onnx``).
        sklearn_version: scikit-learn version the model runs on.
    """
    labels = (name, version, runtime, sklearn_version, platform.python_version())
    withdraw_serving(name, keep=labels)
    MODEL_INFO.labels(*labels).set(1)
    _serving[name] = labels
    SERVING_VERSION.labels(name).set(float(version))


def withdraw_serving(name: str, keep: tuple[str, ...] = ()) -> None:
    """Set the :data:`MODEL_INFO` this process published for ``name`` to 0 (an unload, a swap).

    Args:
        name: Model name.
        keep: Labels not to zero (the version being published).
    """
    old = _serving.pop(name, None)
    if old is not None and old != keep:
        MODEL_INFO.labels(*old).set(0)


def render() -> tuple[bytes, str]:
    """Return the exposition body and its content type for ``GET /metrics``.

    Returns:
        ``(body, content_type)`` in the Prometheus text format (version 0.0.4).
    """
    if multiprocess_enabled():
        registry = CollectorRegistry()
        _multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def mark_process_dead(pid: int) -> None:
    """Drop a dead worker's live gauges (gunicorn's ``child_exit`` hook calls this)."""
    if multiprocess_enabled():
        _multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
