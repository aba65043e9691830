"""The one error hierarchy of ml-api and its JSON rendering.

Every error a client can cause is a :class:`ServingError` subclass carrying its HTTP status, a
one-line message and, where it concerns the request's content, a list of :class:`Problem` records
naming the instance and the field. Adapters (Flask, Django) render them with :func:`to_payload`, so
both frameworks return the same body for the same request::

    {"error": "<one line>", "details": [{"instance": 0, "field": "sex", "problem": "..."}],
     "request_id": "..."}

``error`` stays a string, as the Open Inference Protocol's error responses have it.

Error bodies are bounded whatever the request (:data:`MAX_ERROR_BODY_BYTES`): a message that quotes
client input quotes it through :func:`quote` (the first :data:`QUOTE_CHARS` characters and the
original length), and :class:`Problem`, :class:`ServingError` and :func:`to_payload` cap field
names, messages and the number of details, so no call site can forget it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from http import HTTPStatus
from typing import Any

MAX_ERROR_BODY_BYTES = 16 * 1024
"""Largest error body ml-api sends, in bytes (UTF-8 JSON), whatever the request."""

QUOTE_CHARS = 60
"""Characters of client input a message quotes before shortening it (see :func:`quote`)."""

MAX_FIELD_CHARS = 100
"""Longest ``field`` in a problem (feature names, header names, client-sent keys), in characters."""

MAX_PROBLEM_CHARS = 400
"""Longest ``problem`` text, in characters."""

MAX_MESSAGE_CHARS = 1_000
"""Longest ``error`` message, in characters."""

MAX_DETAILS = 50
"""Most problems listed in one error body."""


def shorten(text: str, limit: int = QUOTE_CHARS) -> str:
    """Return ``text`` unchanged if it has at most ``limit`` characters, else a bounded stand-in.

    The stand-in is the first ``limit`` characters, an ellipsis and the original length, e.g.
    ``AAAA... (200000 characters)``, so a reader can still recognise the value.

    Args:
        text: Any string, possibly client input of any length.
        limit: Characters kept (default :data:`QUOTE_CHARS`).

    Returns:
        At most ``limit + 30`` characters.
    """
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text)} characters)"


def quote(value: Any, limit: int = QUOTE_CHARS) -> str:
    """Quote client input for a message: ``repr`` of a string, shortened past ``limit`` characters.

    Every message that repeats what a client sent (a category, a key, a tensor name, a path)
    goes through this, so an error body never grows with the input.

    Args:
        value: The value to quote; non-strings are quoted by their ``repr``.
        limit: Characters of the value kept (default :data:`QUOTE_CHARS`).

    Returns:
        ``'abc'`` for short strings; ``'AAAA...' (200000 characters)`` for long ones.
    """
    if isinstance(value, str):
        if len(value) <= limit:
            return repr(value)
        return f"{value[:limit]!r}... ({len(value)} characters)"
    return shorten(repr(value), limit)


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

    def __post_init__(self) -> None:
        # Bounded here, once, for every call site: field names may be client-sent keys.
        if self.field is not None and len(self.field) > MAX_FIELD_CHARS:
            object.__setattr__(self, "field", shorten(self.field, MAX_FIELD_CHARS - 30))
        if len(self.problem) > MAX_PROBLEM_CHARS:
            object.__setattr__(self, "problem", shorten(self.problem, MAX_PROBLEM_CHARS - 30))

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
        message = shorten(message, MAX_MESSAGE_CHARS - 30)
        super().__init__(message)
        self.message = message
        self.details = list(details or [])[:MAX_DETAILS]
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


class ModelOutputError(ServingError):
    """The model answered another number of predictions than it was given instances (500).

    No prediction is sent: which answer belongs to which instance is unknown (a text vectorizer
    given a DataFrame, say, iterates its column names and answers once whatever the rows).
    ``ml-api import`` refuses such models; this guards versions written some other way.
    """

    status = HTTPStatus.INTERNAL_SERVER_ERROR


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
        possibly empty), at most :data:`MAX_ERROR_BODY_BYTES` once encoded: details past that
        are dropped (the message still says how many problems there were).
    """
    payload: dict[str, Any] = {
        "error": shorten(exc.message, MAX_MESSAGE_CHARS - 30),
        "details": [p.as_dict() for p in exc.details[:MAX_DETAILS]],
    }
    if request_id is not None:
        payload["request_id"] = request_id
    while payload["details"] and _encoded_size(payload) > MAX_ERROR_BODY_BYTES:
        payload["details"] = payload["details"][: len(payload["details"]) // 2]
    return payload


def _encoded_size(payload: dict[str, Any]) -> int:
    """Bytes of ``payload`` as the adapters send it (compact UTF-8 JSON; escapes counted)."""
    return len(json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode())


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


def wsgi_path_text(path_info: str) -> str:
    """A WSGI path as Django shows it (``request.path_info``): UTF-8, broken bytes as ``%XX``.

    WSGI's ``PATH_INFO`` holds the percent-decoded bytes as ``latin-1`` text (PEP 3333). Werkzeug
    decodes them replacing a broken UTF-8 sequence with U+FFFD; Django re-percent-encodes it
    (``%FF``). The Flask adapter shows this function's text in its 404 and 405 messages, so both
    adapters answer the same bytes and the bytes the client sent stay readable.

    Args:
        path_info: The WSGI environ's ``PATH_INFO`` (``""`` means ``/``).

    Returns:
        The path as text, e.g. ``/predict/../%FF`` for ``/predict/%2e%2e/%ff``.
    """
    raw = path_info.encode("latin-1", "replace")
    text = raw.decode("utf-8", "surrogateescape")
    return _BROKEN_BYTE.sub(lambda m: f"%{ord(m.group()) - 0xDC00:02X}", text) or "/"


_BROKEN_BYTE = re.compile("[\udc80-\udcff]")


class RouteNotFound(NotFound):
    """No route matches the request's path (404); the message points to the route list.

    Args:
        method: The request's HTTP method, e.g. ``"POST"``.
        path: The request's path, e.g. ``"/predict//"``.
    """

    def __init__(self, method: str, path: str) -> None:
        super().__init__(f"no route {method} {shorten(path, 200)}; see GET /openapi.json")


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
            f"method {shorten(method, 20)} is not allowed on {shorten(path, 200)}",
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


# ---- The request's HTTP framing, found while reading it (the server's WSGI layer raises these) --


class MalformedBody(BadRequest):
    """The body's chunked framing is broken: a bad chunk size, a chunk without its CRLF (400).

    Args:
        reason: What the server's HTTP parser found, e.g. ``"Invalid chunk size: '-1'"``.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(
            f"the request body is not valid chunked transfer coding: {shorten(reason, 120)}",
            [Problem("malformed chunked body (RFC 9112 section 7.1)", field="Transfer-Encoding")],
        )


class UnsupportedFraming(BadRequest):
    """A ``Transfer-Encoding`` other than one plain ``chunked`` (400; the connection is closed).

    A server that read ``chunked, chunked`` as one chunked body while a proxy in front read it
    otherwise would answer a request smuggled inside the body.

    Args:
        value: The ``Transfer-Encoding`` received (repeated headers joined by commas).
    """

    def __init__(self, value: str) -> None:
        super().__init__(
            f"Transfer-Encoding {quote(value)} is not accepted: send one 'chunked' or a "
            "Content-Length",
            [Problem("only a single 'chunked' is accepted", field="Transfer-Encoding")],
        )


class ClientClosedRequest(BadRequest):
    """The client closed the connection before sending the whole body it announced.

    Answered 400 (the client is gone and reads nothing), but not a client error to count: the
    HTTP metrics and the access record give it status 499, nginx's "client closed request",
    logged at INFO (see :func:`ml_api.core.telemetry.end_request`).

    Args:
        received: Body bytes that arrived before the connection closed.
        declared: The ``Content-Length`` it announced, ``None`` for a chunked body.
    """

    def __init__(self, received: int, declared: int | None) -> None:
        expected = f"of {declared} " if declared is not None else ""
        super().__init__(
            f"the client closed the connection after {received} bytes {expected}of the body"
        )


class BodyReadTimeout(ServingError):
    """The body stopped arriving: no byte for longer than the read timeout (408).

    Args:
        seconds: The read timeout that ran out, in seconds (``ML_API_REQUEST_TIMEOUT_SECONDS``).
    """

    status = HTTPStatus.REQUEST_TIMEOUT

    def __init__(self, seconds: float) -> None:
        super().__init__(
            f"the request body stopped arriving: nothing for {seconds:g} s "
            "(ML_API_REQUEST_TIMEOUT_SECONDS)"
        )


class MissingHost(BadRequest):
    """A request without a ``Host`` header, with two, or with one that is no host (400).

    RFC 9112 section 3.2 requires this answer for HTTP/1.1; ml-api gives it to HTTP/1.0 too.

    Args:
        value: The ``Host`` value received, ``None`` when there was none.
    """

    def __init__(self, value: str | None) -> None:
        problem = "missing" if not value else f"not a host[:port]: {quote(value)}"
        super().__init__(
            "the request needs one Host header naming this server (RFC 9112 section 3.2)",
            [Problem(problem, field="Host")],
        )


RETRY_AFTER_SECONDS = 1
"""``Retry-After`` of an overload refusal, in seconds: a queue that was full or too slow a moment
ago is usually not a second later (or the balancer sends the retry to another replica)."""


class ServerOverloaded(ServingError):
    """The request was refused unstarted because its worker was overloaded (503, ``Retry-After``).

    Nothing of the request ran, so any client or proxy may retry it, POST included.

    Args:
        reason: ``"queue_full"`` (the worker's queue already held ``limit`` requests) or
            ``"queue_wait"`` (it waited ``waited`` seconds for a thread, more than ``limit``).
        limit: ``ML_API_MAX_QUEUED_REQUESTS`` or ``ML_API_MAX_QUEUE_WAIT_SECONDS``.
        waited: Seconds the request waited, for ``"queue_wait"``.
    """

    status = HTTPStatus.SERVICE_UNAVAILABLE

    def __init__(self, reason: str, limit: float, waited: float = 0.0) -> None:
        if reason == "queue_full":
            why = f"{limit:g} requests already wait for a thread (ML_API_MAX_QUEUED_REQUESTS)"
        else:
            why = (
                f"the request waited {waited:.1f} s for a thread, more than {limit:g} s "
                "(ML_API_MAX_QUEUE_WAIT_SECONDS)"
            )
        super().__init__(
            f"the server is overloaded: {why}; nothing was done, retry later",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
        self.reason = reason
