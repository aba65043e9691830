"""A request as the protocols see it, a reply as they give it, and the API-key check before both.

An adapter turns its framework's request into a :class:`Request` (headers looked up by name, the
declared length, a function reading the body, the path's parameters), calls the endpoint's handler
(:mod:`ml_api.core.protocols.routes`) and renders the :class:`Reply`: JSON with the core's encoder,
or the bytes with their content type. Nothing here imports a web framework.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from ml_api.core.auth import ApiKeyAuth


class Headers(Protocol):
    """Request headers looked up by name (case-insensitively in both adapters).

    Werkzeug's ``Headers`` (Flask), ``ml_api.api.shared.EnvironHeaders`` (Django) and, in tests,
    a plain ``dict`` keyed by the canonical names all fit.
    """

    def get(self, key: str, /) -> str | None:
        """Return the header's value, or ``None`` when absent."""
        ...


@dataclass(frozen=True, slots=True)
class Request:
    """One HTTP request, as much of it as a protocol reads.

    Attributes:
        headers: The request headers.
        content_length: The declared ``Content-Length`` in bytes, or ``None`` (chunked).
        read_body: Reads the whole body (the adapter caps it at ``max_body_bytes``; see
            :func:`ml_api.core.protocols.body.read_wsgi_body`).
        params: The path's parameters by name (``{"name": ..., "version": ...}``).
        path: The path as requested (``/docs/``); ``""`` outside HTTP.
    """

    headers: Headers
    content_length: int | None = None
    read_body: Callable[[], bytes] = bytes
    params: Mapping[str, str] = field(default_factory=dict)
    path: str = ""

    @classmethod
    def of(cls, body: bytes, headers: Mapping[str, str] | None = None, **params: str) -> Request:
        """A request holding ``body`` (tests, and callers outside HTTP).

        Args:
            body: The body bytes; its length is the declared ``Content-Length``.
            headers: Headers by their canonical names (``Content-Type``, ...).
            **params: The path's parameters.
        """
        return cls(dict(headers or {}), len(body), lambda: body, params)


@dataclass(frozen=True, slots=True)
class Reply:
    """A successful answer (200, or a redirect); errors are raised as ``ServingError`` instead.

    Attributes:
        body: A JSON value when ``content_type`` is ``None`` (the adapter encodes it with
            :func:`ml_api.core.codecs.dumps`), else the bytes or text sent as they are.
        content_type: The ``Content-Type`` of a body that is not JSON.
        status: The HTTP status (200; 308 for a redirect).
        headers: Extra response headers (``Location`` of a redirect).
    """

    body: Any
    content_type: str | None = None
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)


def authenticate(auth: ApiKeyAuth, path: str, headers: Headers) -> None:
    """Apply the optional API-key check to a request, before routing (every protocol, every path).

    Args:
        auth: The configured keys and public paths.
        path: The request path.
        headers: The request headers (``Authorization: Bearer <key>`` or ``X-API-Key: <key>``).

    Raises:
        Unauthorized: (401, with ``WWW-Authenticate``) keys are configured, the path is not
            public, and no presented key matches.
    """
    auth.check(path, headers.get("Authorization"), headers.get("X-API-Key"))
