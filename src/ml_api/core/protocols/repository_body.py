"""The bodies of the Open Inference Protocol's model repository extension.

``POST /v2/repository/index`` takes an optional ``{"ready": true}``;
``POST /v2/repository/models/{name}/load`` and ``/unload`` an optional ``{"parameters": {...}}``
(Triton's client sends ``unload_dependents``; ml-api has no dependents and ignores it). An empty
body is an empty object. What the endpoints answer is
:meth:`ml_api.core.repository.Repository.index`, ``load`` and ``unload``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ml_api.core.errors import BadRequest, Problem, quote
from ml_api.core.protocols.body import check_headers, read_json
from ml_api.core.protocols.request import Request

MAX_REPOSITORY_BODY_BYTES = 65_536
"""Largest repository request body, in bytes (the bodies are a few flags)."""

KNOWN_KEYS = ("ready", "parameters")


def read_repository_body(request: Request) -> Mapping[str, Any]:
    """Read a repository extension request's optional JSON object.

    Args:
        request: The request (no ``Content-Type`` is taken as JSON, as Triton's client sends).

    Returns:
        The object; ``{}`` for an empty body.

    Raises:
        BadRequest: (400) not JSON, not an object, an unknown key, ``ready`` not a boolean or
            ``parameters`` not an object (keys quoted, bounded).
        PayloadTooLarge: (413) over :data:`MAX_REPOSITORY_BODY_BYTES`.
    """
    if request.content_length == 0:
        return {}
    limit = MAX_REPOSITORY_BODY_BYTES
    codings = check_headers(request, limit, refusal=BadRequest, media_type_optional=True)
    body = request.read_body()
    if not body:  # no Content-Length and nothing sent
        return {}
    payload = read_json(Request(request.headers, len(body), lambda: body), codings, limit)
    if not isinstance(payload, Mapping):
        raise BadRequest("the body must be a JSON object")
    unknown = [k for k in payload if k not in KNOWN_KEYS]
    if unknown:
        raise BadRequest(
            f"unknown key {quote(unknown[0])}; expected {' or '.join(KNOWN_KEYS)}",
            [Problem("unknown key", field=quote(k)) for k in unknown[:10]],
        )
    if "ready" in payload and not isinstance(payload["ready"], bool):
        raise BadRequest('"ready" must be true or false', [Problem("not a boolean", field="ready")])
    if "parameters" in payload and not isinstance(payload["parameters"], Mapping):
        raise BadRequest(
            '"parameters" must be an object', [Problem("not an object", field="parameters")]
        )
    return payload
