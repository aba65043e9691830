"""The request threads of the head-reading worker: one queue, no future per request.

gunicorn hands each request to a :class:`concurrent.futures.ThreadPoolExecutor` and learns it is
done through the future's callback. Per request that is a :class:`~concurrent.futures.Future`
(with its own condition variable), a work item, a semaphore probe to decide whether to start a
thread, and three passes through the future's lock (running, result, callbacks). A request whose
head and body are already read needs none of it: :meth:`RequestPool.call` queues the function and
what to do with its outcome, and the thread that runs it calls that directly.

The pool behaves as the executor does where the worker relies on it: threads start on demand up
to ``max_threads`` and are reused; :meth:`RequestPool.submit` returns a real future (gunicorn's
own paths: TLS, HTTP/2); :meth:`RequestPool.shutdown` lets each thread finish what it runs and
stop; an exception (``SystemExit`` included) raised by the function is handed on, not lost.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from concurrent import futures
from typing import Any

Done = Callable[["Outcome"], None]
_Call = tuple[Callable[..., Any], tuple[Any, ...], Done]

log = logging.getLogger(__name__)


class Outcome:
    """What a call returned or raised, read like a finished future (``result``, ``cancelled``).

    Args:
        value: The return value (``None`` when it raised).
        error: What it raised, or ``None``.
    """

    __slots__ = ("error", "value")

    def __init__(self, value: Any, error: BaseException | None) -> None:
        self.value = value
        self.error = error

    def result(self) -> Any:
        """The return value.

        Raises:
            BaseException: What the call raised.
        """
        if self.error is not None:
            raise self.error
        return self.value

    def cancelled(self) -> bool:
        """Always False: a queued call is never cancelled."""
        return False


class RequestPool:
    """Up to ``max_threads`` threads running queued calls, started as calls need them.

    Args:
        max_threads: Most threads (``ML_API_THREADS``).
        name: Prefix of the threads' names.
    """

    def __init__(self, max_threads: int, name: str = "request") -> None:
        self._max = max(1, max_threads)
        self._name = name
        self._queue: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0
        self._threads: list[threading.Thread] = []
        self._stopped = False

    def call(self, fn: Callable[..., Any], args: tuple[Any, ...], done: Done) -> None:
        """Run ``fn(*args)`` on a pool thread, then ``done(outcome)`` on that thread.

        Raises:
            RuntimeError: The pool was shut down.
        """
        if self._stopped:
            raise RuntimeError("the request pool is shut down")
        self._queue.put((fn, args, done))
        with self._lock:
            if self._idle:
                self._idle -= 1  # an idle thread takes it
                return
            if len(self._threads) >= self._max:
                return  # the next thread to finish takes it
            thread = threading.Thread(
                target=self._work, name=f"{self._name}_{len(self._threads)}", daemon=False
            )
            self._threads.append(thread)
        thread.start()

    def submit(self, fn: Callable[..., Any], *args: Any) -> futures.Future[Any]:
        """Run ``fn(*args)`` on a pool thread; a future of its outcome (the executor's API)."""
        future: futures.Future[Any] = futures.Future()

        def settle(outcome: Outcome) -> None:
            if outcome.error is None:
                future.set_result(outcome.value)
            else:
                future.set_exception(outcome.error)

        def run(*call_args: Any) -> Any:
            if not future.set_running_or_notify_cancel():
                return None
            return fn(*call_args)

        self.call(run, args, settle)
        return future

    def shutdown(self, wait: bool = False) -> None:
        """Stop every thread once it has finished what it runs; ``wait`` for them to end."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            threads = list(self._threads)
        for _ in threads:
            self._queue.put(None)
        if wait:
            for thread in threads:
                thread.join()

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            fn, args, done = item
            del item
            try:
                outcome = Outcome(fn(*args), None)
            except BaseException as exc:  # handed on, as a future would
                outcome = Outcome(None, exc)
            del fn, args
            try:
                done(outcome)
            except Exception:  # the thread stays in the pool
                log.exception("handing on a finished call failed")
            del done, outcome
            with self._lock:
                self._idle += 1
