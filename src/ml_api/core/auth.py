"""Optional API-key authentication, identical for both adapters.

Off when no key is configured. When on, every path except the public ones (health, readiness and
metrics by default) needs ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``. Keys are compared
in constant time (:func:`hmac.compare_digest`, against every configured key, so the time does not
say which key nearly matched) and never logged.

Keys from a file (``ML_API_API_KEYS_FILE``, e.g. a mounted Kubernetes Secret) are re-read when the
file changes: a request checks the file's modification time, size and inode at most once per
second (:data:`RELOAD_INTERVAL_SECONDS`) and re-reads it when any of them changed, so a revoked key
stops working within about a second of the file changing in the pod (the kubelet updates a mounted
Secret within its sync period, about a minute) without a restart. A file that cannot be read for a
moment (the kubelet swaps the Secret's directory atomically, but an editor may not) keeps the keys
last read; a file emptied of keys refuses every request rather than turning authentication off.
Configuring a keys file turns authentication on, even while the file holds no key yet (a Secret
created empty, to be filled later): the API starts closed and opens to the first key written,
never the other way round.
"""

from __future__ import annotations

import hmac
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from ml_api.core.errors import Problem, Unauthorized

CHALLENGE = 'Bearer realm="ml-api"'

RELOAD_INTERVAL_SECONDS = 1.0
"""How often, at most, a request checks whether the keys file changed (seconds)."""

log = logging.getLogger(__name__)


def read_keys_file(path: Path) -> list[str]:
    """Return the keys in a keys file: one per line, blank lines and ``#`` comments skipped.

    Raises:
        OSError: The file cannot be read.
    """
    lines = path.read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def _stamp(path: Path) -> tuple[int, int, int]:
    st = os.stat(path)  # follows the Secret volume's symlinks to the current file
    return st.st_mtime_ns, st.st_size, st.st_ino


class ApiKeyAuth:
    """Checks request credentials against configured keys.

    Args:
        keys: Accepted keys, fixed for the process's life; empty, with no ``keys_file``,
            disables authentication.
        public_paths: Paths open without a key (compared with any trailing slash removed).
        keys_file: File of more keys (:func:`read_keys_file`), re-read when it changes. Giving
            one turns authentication on even if it holds no key yet (fail closed).
        clock: Monotonic seconds (tests pass a fake one).

    Raises:
        OSError: ``keys_file`` is given but cannot be read at construction.
    """

    def __init__(
        self,
        keys: Iterable[str],
        public_paths: Iterable[str] = (),
        keys_file: Path | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._static = [k.encode() for k in keys if k]
        self._public = {self._norm(p) for p in public_paths}
        self._file = keys_file
        self._clock = clock
        self._lock = threading.Lock()
        self._next_check = 0.0
        self._file_stamp: tuple[int, int, int] | None = None
        file_keys: list[bytes] = []
        if keys_file is not None:
            self._file_stamp = _stamp(keys_file)
            file_keys = [k.encode() for k in read_keys_file(keys_file)]
            self._next_check = clock() + RELOAD_INTERVAL_SECONDS
        self._keys = self._static + file_keys
        # Decided once, and closed whenever a keys file is configured: a keys file that holds no
        # key (yet, or any more) locks the API, it never opens it.
        self._enabled = bool(self._keys) or keys_file is not None
        if keys_file is not None and not self._keys:
            log.warning(
                "API keys file %s holds no key: every request outside the public paths is refused "
                "until a key is written to it",
                keys_file,
            )

    @property
    def enabled(self) -> bool:
        """Whether requests need a key: a key or a keys file was configured at start."""
        return self._enabled

    def _maybe_reload(self) -> None:
        """Re-read the keys file if it changed; at most one check per interval, by one thread."""
        if self._file is None or self._clock() < self._next_check:
            return
        if not self._lock.acquire(blocking=False):
            return  # another request thread is checking; use the keys as they are
        try:
            self._next_check = self._clock() + RELOAD_INTERVAL_SECONDS
            try:
                stamp = _stamp(self._file)
                if stamp == self._file_stamp:
                    return
                keys = [k.encode() for k in read_keys_file(self._file)]
            except OSError as exc:
                log.warning(
                    "API keys file %s unreadable, keeping the keys read before: %s",
                    self._file,
                    exc.strerror or exc,
                )
                return
            self._keys = self._static + keys
            self._file_stamp = stamp
            log.info("API keys file %s changed: %d keys now accepted", self._file, len(self._keys))
        finally:
            self._lock.release()

    @staticmethod
    def _norm(path: str) -> str:
        return "/" + path.strip("/")

    def check(self, path: str, authorization: str | None, api_key: str | None) -> None:
        """Allow or refuse a request.

        Args:
            path: Request path.
            authorization: The ``Authorization`` header, or ``None``.
            api_key: The ``X-API-Key`` header, or ``None``.

        Raises:
            Unauthorized: (401, with ``WWW-Authenticate``) keys are configured, the path is not
                public, and no presented credential matches.
        """
        if not self._enabled or self._norm(path) in self._public:
            return
        self._maybe_reload()
        presented = api_key
        if presented is None and authorization:
            scheme, _, token = authorization.partition(" ")
            if scheme.lower() == "bearer":
                presented = token.strip()
        if presented is None:
            raise Unauthorized(
                "missing API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'",
                [Problem("missing", field="Authorization")],
                headers={"WWW-Authenticate": CHALLENGE},
            )
        candidate = presented.encode()
        matched = False
        for key in self._keys:  # one list object: a reload swaps it whole
            matched |= hmac.compare_digest(candidate, key)
        if not matched:
            raise Unauthorized(
                "invalid API key",
                [Problem("not a valid key", field="Authorization")],
                headers={"WWW-Authenticate": f'{CHALLENGE}, error="invalid_token"'},
            )
