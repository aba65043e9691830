"""The one error hierarchy of ml-api and its JSON rendering.

Every error a client can cause is a :class:`ServingError` subclass carrying its HTTP status, a
one-line message and, where it concerns the request's content, a list of :class:`Problem` records
naming the instance and the field. Adapters (Flask, Django) render them with :func:`to_payload`, so
both frameworks return the same body for the same request::

    {"error": "<one line>", "details": [{"instance": 0, "field": "sex", "problem": "..."}],
     "request_id": "..."}

``error`` stays a string, as the Open Inference Protocol's error responses have it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from http import HTTPStatus
from typing import Any


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a request.

    Attributes:
        problem: What is wrong, in words a client can act on.
        instance: 0-based index of the instance in the request (``None`` when it concerns the whole
            request). The batch CLI reports 1-based row numbers instead.
        field: Name of the feature or envelope key concerned (``None`` when none applies).
    """

    problem: str
    instance: int | None = None
    field: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """Return the JSON form, with keys ``instance``, ``field``, ``problem`` in that order."""
        d = asdict(self)
        return {"instance": d["instance"], "field": d["field"], "problem": d["problem"]}


class ServingError(Exception):
    """Base of every error ml-api reports to a client.

    Attributes:
        status: The HTTP status the adapters answer with (class attribute).
        message: One line for the ``error`` field.
        details: Per-instance, per-field problems (may be empty).
        headers: Extra response headers the adapters must send (``Allow`` on 405,
            ``WWW-Authenticate`` on 401).
    """

    status: HTTPStatus = HTTPStatus.INTERNAL_SERVER_ERROR

    def __init__(
        self,
        message: str,
        details: list[Problem] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = list(details or [])
        self.headers = dict(headers or {})


class BadRequest(ServingError):
    """Malformed JSON or a body whose envelope is not one the contract accepts (400)."""

    status = HTTPStatus.BAD_REQUEST


class UnsupportedMediaType(ServingError):
    """The request body is not declared as JSON (415)."""

    status = HTTPStatus.UNSUPPORTED_MEDIA_TYPE


class PayloadTooLarge(ServingError):
    """The body exceeds the byte limit or carries more instances than allowed (413)."""

    status = HTTPStatus.REQUEST_ENTITY_TOO_LARGE


class InvalidInput(ServingError):
    """Well-formed JSON whose values break the model's feature schema (422)."""

    status = HTTPStatus.UNPROCESSABLE_ENTITY


class Unauthorized(ServingError):
    """No API key, or a wrong one, when keys are configured (401, with ``WWW-Authenticate``)."""

    status = HTTPStatus.UNAUTHORIZED


class RequestTimeout(ServingError):
    """The request ran past ``request_timeout_seconds`` and was abandoned (504)."""

    status = HTTPStatus.GATEWAY_TIMEOUT


class NotFound(ServingError):
    """No such route, model or model version (404)."""

    status = HTTPStatus.NOT_FOUND


class MethodNotAllowed(ServingError):
    """The route exists but not for this HTTP method (405)."""

    status = HTTPStatus.METHOD_NOT_ALLOWED


class ModelNotReady(ServingError):
    """The model is not loaded yet, or the process is draining before shutdown (503)."""

    status = HTTPStatus.SERVICE_UNAVAILABLE


class InternalError(ServingError):
    """A bug of ours (500). The message never carries the exception's text or a traceback."""

    status = HTTPStatus.INTERNAL_SERVER_ERROR

    def __init__(self, message: str = "internal server error") -> None:
        super().__init__(message)


def to_payload(exc: ServingError, request_id: str | None = None) -> dict[str, Any]:
    """Render an error as the contract's JSON body.

    Args:
        exc: The error.
        request_id: The request's id, echoed so a client can quote it; omitted when ``None``.

    Returns:
        ``{"error": str, "details": [...], "request_id": str}`` (``details`` always present,
        possibly empty).
    """
    payload: dict[str, Any] = {
        "error": exc.message,
        "details": [p.as_dict() for p in exc.details],
    }
    if request_id is not None:
        payload["request_id"] = request_id
    return payload


def from_http_status(code: int, description: str | None = None) -> ServingError:
    """Map a framework's own HTTP error (routing, method, size) onto the hierarchy.

    Args:
        code: The HTTP status the framework chose (404, 405, 413, ...).
        description: Optional text; the standard reason phrase is used when ``None``.

    Returns:
        A :class:`ServingError` whose ``status`` is ``code``.
    """
    classes: dict[int, type[ServingError]] = {
        c.status.value: c
        for c in (
            BadRequest,
            UnsupportedMediaType,
            PayloadTooLarge,
            InvalidInput,
            Unauthorized,
            NotFound,
            MethodNotAllowed,
            ModelNotReady,
            RequestTimeout,
        )
    }
    try:
        status = HTTPStatus(code)
    except ValueError:
        status = HTTPStatus.INTERNAL_SERVER_ERROR
    cls = classes.get(status.value)
    message = description or status.phrase.lower()
    if cls is None:
        err = ServingError(message)
        err.status = status
        return err
    return cls(message)


# ---- Errors that write their own message: one wording for both adapters --------------------


class RouteNotFound(NotFound):
    """No route matches the request's path (404); the message points to the route list.

    Args:
        method: The request's HTTP method, e.g. ``"POST"``.
        path: The request's path, e.g. ``"/predict//"``.
    """

    def __init__(self, method: str, path: str) -> None:
        super().__init__(f"no route {method} {path}; see GET /openapi.json")


class RouteMethodNotAllowed(MethodNotAllowed):
    """The path is a route, but not for this method (405, with ``Allow`` when it is known).

    Args:
        method: The request's HTTP method, e.g. ``"GET"``.
        path: The request's path, e.g. ``"/predict"``.
        allowed: The methods the route answers; sent sorted as the ``Allow`` header, which is left
            out when ``allowed`` is empty or ``None`` (the framework did not say).
    """

    def __init__(self, method: str, path: str, allowed: Iterable[str] | None = None) -> None:
        methods = sorted(allowed or ())
        super().__init__(
            f"method {method} is not allowed on {path}",
            headers={"Allow": allow_header(methods)} if methods else None,
        )


class BodyTooLarge(PayloadTooLarge):
    """The request body is longer than the byte limit (413), found while reading it.

    Args:
        limit: The largest body accepted, in bytes (``Settings.max_body_bytes``).
    """

    def __init__(self, limit: int) -> None:
        super().__init__(f"request body is larger than the limit of {limit} bytes")


def allow_header(methods: Iterable[str]) -> str:
    """Return the ``Allow`` header value for ``methods``: sorted, comma-separated (as Flask)."""
    return ", ".join(sorted(methods))
