"""Adaptive batching: concurrent requests inside one worker share one model call.

scikit-learn's per-call overhead dominates small inputs (a 100-tree random forest costs about the
same for 1 row as for 32), so when several requests are waiting, predicting them together costs
little more than predicting one.

The scheme is leader/follower, with no background thread and no timer:

- a request whose worker is not predicting becomes the *leader* and predicts at once in its own
  thread: a request that arrives alone never waits;
- requests that arrive while a prediction runs queue up (their values already validated);
- when the leader's model call returns, it hands every result back and promotes the oldest queued
  request to leader, which takes everything queued (oldest first) up to ``max_rows`` rows and runs
  one model call for all of it.

Batches therefore grow with load by themselves. Rows, not requests, are capped: a request is never
merged if that would pass ``max_rows`` (one larger than the cap runs alone, never split, and the
queue stays first-in first-out so nothing starves). ``max_wait_seconds`` optionally lets a leader
wait for more rows, but only when other requests were already queued (evidence of concurrency), so
an idle server still adds no wait. Each request's values are validated before it joins a batch, so
one bad instance cannot fail other requests; if a merged model call still raises, each request of
that batch is predicted alone so only the offending one gets the error.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ml_api.core import metrics


@dataclass(eq=False)
class _Item:
    columns: list[list[Any]]
    rows: int
    queued_at: float = field(default_factory=time.perf_counter)
    done: threading.Event | None = None
    """Set when the item is predicted or promoted; made only for an item that must wait (a
    request that arrives alone leads at once and never needs one)."""
    lead: bool = False
    result: Any = None
    error: BaseException | None = None


class Batcher:
    """Groups concurrent predictions of one worker process into shared model calls.

    Args:
        predict: Runs the model on merged columns (``n_features`` lists of equal length) and
            returns one result per row range: it is called as ``predict(columns, sizes)`` with
            ``sizes`` the row count of each merged request, and returns a list of per-request
            results of the same length.
        max_rows: Most rows in one model call (requests are never split).
        max_wait_seconds: How long a leader may wait for more rows when others are already queued
            (0: never wait).
        labels: Metric labels ``(model_name, model_version, runtime)``.
    """

    def __init__(
        self,
        predict: Callable[[list[list[Any]], list[int]], list[Any]],
        max_rows: int,
        max_wait_seconds: float = 0.0,
        labels: tuple[str, str, str] = ("", "", ""),
    ) -> None:
        self._predict = predict
        self.max_rows = max_rows
        self.max_wait = max_wait_seconds
        self._labels = labels
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._queue: deque[_Item] = deque()
        self._busy = False

    def submit(self, columns: list[list[Any]], rows: int, timeout: float | None = None) -> Any:
        """Predict one request's validated columns, possibly together with others.

        Args:
            columns: ``n_features`` lists of ``rows`` values (``Validator.validate_columns``).
            rows: Instances in this request.
            timeout: Longest wait for a turn, in seconds (``None``: no limit).

        Returns:
            This request's result from ``predict``.

        Raises:
            TimeoutError: The request waited longer than ``timeout`` without being predicted.
            Exception: Whatever ``predict`` raised for this request.
        """
        arrived = time.perf_counter()
        with self._lock:
            if not self._busy and not self._queue:
                # Alone: no queue, no item, no wake-up, no collection. A request arriving
                # meanwhile queues, and the next leader is promoted from the queue as usual.
                self._busy = True
                item = None
            else:
                item = _Item(columns, rows, arrived)
                self._queue.append(item)
                self._arrived.notify_all()
                if not self._busy:
                    self._busy = True
                    item.lead = True
                else:
                    item.done = done = threading.Event()
        if item is None:
            return self._alone(columns, rows, arrived)
        if not item.lead and not done.wait(timeout):
            with self._lock:
                if not done.is_set() and item in self._queue:
                    self._queue.remove(item)
                    raise TimeoutError(f"not predicted within {timeout} s")
            done.wait()
        if item.lead:
            self._lead(self._take())
        return _outcome(item)

    def _alone(self, columns: list[list[Any]], rows: int, arrived: float) -> Any:
        """Predict a request that found the batcher idle, as :meth:`_run` would a batch of one.

        The same metrics (its queue wait, its rows) and the same result or error, without the
        bookkeeping of a batch; then the next leader is promoted as after any batch.
        """
        try:
            started = time.perf_counter()
            metrics.child(metrics.BATCH_QUEUE_WAIT, *self._labels).observe(started - arrived)
            metrics.child(metrics.BATCH_ROWS, *self._labels).observe(rows)
            return self._predict(columns, [rows])[0]
        finally:
            self._hand_over()

    def _hand_over(self) -> None:
        """Wake the oldest queued request as the next leader, or mark the batcher idle."""
        with self._lock:
            if self._queue:
                successor = self._queue[0]
                successor.lead = True
                assert successor.done is not None  # queued behind a busy leader
                successor.done.set()  # wakes it as the next leader
            else:
                self._busy = False

    def _lead(self, batch: list[_Item]) -> None:
        try:
            self._run(batch)
        finally:
            self._hand_over()

    def _take(self) -> list[_Item]:
        with self._lock:
            concurrent = len(self._queue) > 1
            batch = self._collect()
            rows = sum(i.rows for i in batch)
            if not (concurrent and self.max_wait > 0):
                return batch
            deadline = time.perf_counter() + self.max_wait
            # Wait for more rows only while they would still fit and time is left.
            while rows < self.max_rows and not self._queue:
                left = deadline - time.perf_counter()
                if left <= 0:
                    break
                self._arrived.wait(left)
                more = self._collect(rows)
                batch += more
                rows += sum(i.rows for i in more)
        return batch

    def _collect(self, rows: int = 0) -> list[_Item]:
        batch: list[_Item] = []
        while self._queue:
            nxt = self._queue[0]
            if (batch or rows) and rows + nxt.rows > self.max_rows:
                break
            batch.append(self._queue.popleft())
            rows += nxt.rows
        return batch

    def _run(self, batch: Sequence[_Item]) -> None:
        if len(batch) == 1:
            self._call_model(batch)
            return
        with metrics.writes_now():  # the other requests may answer before this one ends
            self._call_model(batch)

    def _call_model(self, batch: Sequence[_Item]) -> None:
        started = time.perf_counter()
        for item in batch:
            metrics.child(metrics.BATCH_QUEUE_WAIT, *self._labels).observe(started - item.queued_at)
        metrics.child(metrics.BATCH_ROWS, *self._labels).observe(sum(i.rows for i in batch))
        try:
            if len(batch) == 1:
                results = self._predict(batch[0].columns, [batch[0].rows])
            else:
                merged = [
                    [v for item in batch for v in item.columns[j]]
                    for j in range(len(batch[0].columns))
                ]
                results = self._predict(merged, [i.rows for i in batch])
            for item, result in zip(batch, results, strict=True):
                item.result = result
        except Exception as exc:
            if len(batch) == 1:
                batch[0].error = exc
            else:  # isolate the request that broke the merged call
                for item in batch:
                    try:
                        item.result = self._predict(item.columns, [item.rows])[0]
                    except Exception as own:
                        item.error = own
        finally:
            for item in batch:
                if not item.lead and item.done is not None:
                    item.done.set()


def _outcome(item: _Item) -> Any:
    """The item's result, or raise its error."""
    if item.error is not None:
        raise item.error
    return item.result
