"""A per-request time limit that answers in JSON instead of a killed worker.

gunicorn's own worker ``timeout`` kills a stuck worker with SIGABRT: the client gets a dropped
connection. :func:`deadline` arms a ``SIGALRM`` timer around the work instead, so an overrun raises
:class:`~ml_api.core.errors.RequestTimeout` (504) in the request's own thread, which the adapters
render like any other error. Signals are delivered to the main thread only, which is where
gunicorn's sync workers run requests; in other threads (development servers, tests) the limit is
not enforced and gunicorn's timeout remains the backstop. The alarm interrupts Python code between
bytecodes, so a single long C call (one huge ``predict``) finishes before the 504 is raised.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ml_api.core.errors import RequestTimeout


@contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Raise :class:`RequestTimeout` (504) if the block runs longer than ``seconds``.

    Args:
        seconds: The limit, in seconds (> 0).

    Raises:
        RequestTimeout: (504) the block overran; raised inside the block.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def _expired(signum: int, frame: Any) -> None:
        raise RequestTimeout(
            f"the request took longer than {seconds:g} s and was abandoned; send fewer instances "
            f"or retry"
        )

    previous = signal.signal(signal.SIGALRM, _expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
