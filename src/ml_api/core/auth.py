"""Optional API-key authentication, identical for both adapters.

Off when no key is configured. When on, every path except the public ones (health, readiness and
metrics by default) needs ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``. Keys are compared
in constant time (:func:`hmac.compare_digest`, against every configured key, so the time does not
say which key nearly matched) and never logged.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable

from ml_api.core.errors import Problem, Unauthorized

CHALLENGE = 'Bearer realm="ml-api"'


class ApiKeyAuth:
    """Checks request credentials against configured keys.

    Args:
        keys: Accepted keys; empty disables authentication.
        public_paths: Paths open without a key (compared with any trailing slash removed).
    """

    def __init__(self, keys: Iterable[str], public_paths: Iterable[str] = ()) -> None:
        self._keys = [k.encode() for k in keys if k]
        self._public = {self._norm(p) for p in public_paths}

    @property
    def enabled(self) -> bool:
        """Whether any key is configured."""
        return bool(self._keys)

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
        if not self._keys or self._norm(path) in self._public:
            return
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
        for key in self._keys:
            matched |= hmac.compare_digest(candidate, key)
        if not matched:
            raise Unauthorized(
                "invalid API key",
                [Problem("not a valid key", field="Authorization")],
                headers={"WWW-Authenticate": f'{CHALLENGE}, error="invalid_token"'},
            )
