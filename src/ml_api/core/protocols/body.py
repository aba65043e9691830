"""Reading a JSON request body, for every protocol: a body's 415s, 413s and 400s, in one order.

V1 and V2 read their bodies here, so a body is refused alike on every route and in both adapters:

1. ``Content-Type`` is JSON (``application/json`` or any ``application/*+json``), else 415 (the
   Open Inference Protocol answers 400: :func:`check_content_type`'s ``refusal``);
   ``Content-Encoding`` is ``gzip``, ``deflate`` or ``identity``, else 415;
2. the declared ``Content-Length`` is within ``max_body_bytes``, else 413 before a byte is read;
   a body without one (``Transfer-Encoding: chunked``) is read by :func:`read_wsgi_body`, 413 past
   the limit;
3. the body decodes (``Content-Encoding``) to at most ``max_body_bytes`` (else 413; 400 if it is
   not what its coding says) and is strict JSON (:func:`~ml_api.core.codecs.parse_json`), else 400.

Steps 1 and 2 are :func:`check_headers`, step 3 :func:`read_json` (run within the request's time
limit by the protocol).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping
from typing import Any, BinaryIO

from ml_api.core.codecs import parse_json
from ml_api.core.errors import (
    BadRequest,
    BodyTooLarge,
    PayloadTooLarge,
    Problem,
    ServingError,
    UnsupportedMediaType,
    quote,
)
from ml_api.core.protocols.request import Request


def check_headers(
    request: Request,
    limit: int,
    *,
    refusal: type[ServingError] = UnsupportedMediaType,
    media_type_optional: bool = False,
) -> list[str]:
    """Check a body's headers before reading it (steps 1 and 2 of the module docstring).

    Args:
        request: The request (``Content-Type``, ``Content-Encoding``, declared length).
        limit: Largest body accepted, in bytes (``Limits.max_body_bytes``).
        refusal: The error a media type other than JSON raises (415 in V1, 400 in V2).
        media_type_optional: Accept a request without ``Content-Type`` as JSON (V2: Triton's
            client sends none).

    Returns:
        The codings to undo, first applied first (:func:`check_content_encoding`).

    Raises:
        ServingError: ``refusal`` (415 by default) for a media type other than JSON.
        UnsupportedMediaType: (415) an unknown ``Content-Encoding``.
        PayloadTooLarge: (413) the declared length is over ``limit``.
    """
    content_type = request.headers.get("Content-Type")
    if content_type or not media_type_optional:
        check_content_type(content_type, refusal)
    codings = check_content_encoding(request.headers.get("Content-Encoding"))
    check_declared_length(request.content_length, limit)
    return codings


def read_json(request: Request, codings: list[str], limit: int) -> Any:
    """Read, decode and parse the body whose headers :func:`check_headers` passed (step 3).

    Args:
        request: The request.
        codings: From :func:`check_headers`.
        limit: Most decoded bytes accepted (``Limits.max_body_bytes``).

    Returns:
        The parsed JSON value.

    Raises:
        PayloadTooLarge: (413) the body, or the body decoded, is longer than ``limit``.
        BadRequest: (400) not valid data of its coding, or not strict JSON.
    """
    return parse_json(decode_content(request.read_body(), codings, limit))


def check_content_type(
    content_type: str | None, refusal: type[ServingError] = UnsupportedMediaType
) -> None:
    """Require a JSON media type (``application/json`` or any ``application/*+json``).

    Args:
        content_type: The request's ``Content-Type`` header, parameters included, or ``None``.
        refusal: The error raised otherwise (the protocol's status for it).

    Raises:
        ServingError: ``refusal`` (415 by default): missing or not JSON; the problem names
            ``Content-Type``.
    """
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    ):
        return
    shown = quote(media) if media else "none"
    raise refusal(
        f"Content-Type must be application/json, got {shown}",
        [Problem("send the header 'Content-Type: application/json'", field="Content-Type")],
    )


def content_length(environ: Mapping[str, Any]) -> int | None:
    """The declared ``Content-Length`` in bytes, or ``None`` when absent or not a number.

    Args:
        environ: The WSGI environ (Django's ``request.META``).
    """
    try:
        return int(environ["CONTENT_LENGTH"])
    except (KeyError, TypeError, ValueError):
        return None


def read_wsgi_body(
    environ: Mapping[str, Any],
    declared_length: int | None,
    limit: int,
    read_declared: Callable[[], bytes],
) -> bytes:
    """Return the whole body of a WSGI request, chunked or not.

    A body with a ``Content-Length`` is read by the framework (``read_declared``), which caps it
    at the same limit: Werkzeug's ``MAX_CONTENT_LENGTH`` (``RequestEntityTooLarge``) under Flask,
    Django's ``DATA_UPLOAD_MAX_MEMORY_SIZE`` (``RequestDataTooBig``), both rendered as the same
    413. A ``Transfer-Encoding: chunked`` body has no length: gunicorn and Werkzeug mark it with
    the WSGI extension ``wsgi.input_terminated``, Werkzeug's capped stream would silently truncate
    it at the limit and Django's ``WSGIRequest`` would read nothing, so it is read here with
    :func:`read_capped` (413 past the limit).

    Args:
        environ: The WSGI environ of the request.
        declared_length: Its ``Content-Length`` in bytes, ``None`` when it has none.
        limit: Most bytes accepted (``Limits.max_body_bytes``; the framework's own cap is the
            same number).
        read_declared: Reads the body through the framework (used unless the body is chunked).

    Returns:
        The body bytes.

    Raises:
        BodyTooLarge: (413) a chunked body is longer than ``limit``.
        Exception: whatever ``read_declared`` raises for a body over the framework's cap
            (``RequestEntityTooLarge``, ``RequestDataTooBig``; 413 once rendered).
    """
    if declared_length is None and environ.get("wsgi.input_terminated"):
        return read_capped(environ["wsgi.input"], limit)
    return read_declared()


def read_capped(stream: BinaryIO, limit: int) -> bytes:
    """Read a body of undeclared length (``Transfer-Encoding: chunked``); 413 past ``limit``.

    Servers mark such bodies with the WSGI extension ``wsgi.input_terminated`` (gunicorn and
    Werkzeug do) and end the stream at the body's end. At most ``limit + 1`` bytes are read, so
    an endless body is never held in memory. (Werkzeug's own capped stream stops at the limit
    without an error, and Django's reads nothing without a ``Content-Length``.)

    Args:
        stream: The server's input stream (``environ["wsgi.input"]``).
        limit: Most bytes accepted (``Settings.max_body_bytes``).

    Returns:
        The whole body, at most ``limit`` bytes.

    Raises:
        PayloadTooLarge: (413) the body is longer than ``limit``.
    """
    chunks: list[bytes] = []
    size = 0
    while size <= limit:
        chunk = stream.read(limit + 1 - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    if size > limit:
        raise BodyTooLarge(limit)
    return b"".join(chunks)


def check_declared_length(content_length: int | None, limit: int) -> None:
    """Refuse a body by its declared ``Content-Length`` before a byte of it is read.

    Args:
        content_length: The declared length in bytes, or ``None`` (chunked: the reader caps it).
        limit: Largest body accepted, in bytes.

    Raises:
        PayloadTooLarge: (413) the declared length is over ``limit``.
    """
    if content_length is not None and content_length > limit:
        raise PayloadTooLarge(
            f"request body is {content_length} bytes; the limit is {limit}",
            [Problem(f"at most {limit} bytes", field="Content-Length")],
        )


CONTENT_CODINGS = {"gzip": 31, "x-gzip": 31, "deflate": 15}
"""Accepted ``Content-Encoding`` codings and their zlib ``wbits`` (``deflate`` is the zlib format,
RFC 9110 section 8.4.1.2); ``identity`` is accepted too and means no coding."""


def _any_case(name: str) -> str:
    return "".join(f"[{c}{c.upper()}]" if c.isalpha() else c for c in name)  # "-": literal


_CODING = "(?:" + "|".join(_any_case(c) for c in [*CONTENT_CODINGS, "identity"]) + ")"

CONTENT_ENCODING_PATTERN = f"^[ \t]*{_CODING}?[ \t]*(?:,[ \t]*{_CODING}?[ \t]*)*$"
"""The ``Content-Encoding`` values :func:`check_content_encoding` accepts, as a regular expression
(the OpenAPI document's ``pattern``): a comma-separated list, any case, of the accepted codings and
``identity``, with optional spaces and tabs and empty elements (an empty header means no coding,
RFC 9110 section 5.6.1). A property test checks the two agree."""


_INFLATE_STEP = 64 * 1024
"""Compressed bytes fed to the decompressor at a time."""


def check_content_encoding(content_encoding: str | None) -> list[str]:
    """Parse ``Content-Encoding`` into the codings to undo, in the order they were applied.

    Args:
        content_encoding: The header, e.g. ``"gzip"`` or ``"deflate, gzip"``, or ``None``.

    Returns:
        The codings other than ``identity`` (lower case), first applied first; empty for none.

    Raises:
        UnsupportedMediaType: (415) a coding other than ``gzip``, ``x-gzip``, ``deflate`` and
            ``identity``; the problem names ``Content-Encoding``.
    """
    # RFC 9110 section 5.6.1: elements separated by commas and optional spaces or tabs; empty
    # elements (an empty header included) are ignored. CONTENT_ENCODING_PATTERN says the same.
    codings = [
        c.strip(" \t").lower() for c in (content_encoding or "").split(",") if c.strip(" \t")
    ]
    unknown = [c for c in codings if c != "identity" and c not in CONTENT_CODINGS]
    if unknown:
        raise UnsupportedMediaType(
            f"Content-Encoding {quote(unknown[0])} is not supported; send gzip, deflate or "
            "identity",
            [Problem("one of gzip, deflate, identity", field="Content-Encoding")],
        )
    return [c for c in codings if c != "identity"]


def decode_content(body: bytes, codings: list[str], limit: int) -> bytes:
    """Undo ``Content-Encoding`` codings, capping the decoded size at ``limit`` bytes.

    Decompression is incremental and never produces more than ``limit + 1`` bytes, so a small
    body that would inflate to gigabytes (a "zip bomb") costs at most ``limit`` bytes of memory.

    Args:
        body: The body as received (already within ``limit``).
        codings: From :func:`check_content_encoding`, in the order applied.
        limit: Most decoded bytes accepted (``Settings.max_body_bytes``).

    Returns:
        The decoded body (``body`` itself when there are no codings).

    Raises:
        PayloadTooLarge: (413) the decoded body is longer than ``limit``.
        BadRequest: (400) the body is not valid data of its declared coding (corrupt, truncated,
            or not compressed at all).
    """
    for coding in reversed(codings):
        body = _inflate(body, coding, limit)
    return body


def _inflate(data: bytes, coding: str, limit: int) -> bytes:
    out: list[bytes] = []
    size = 0
    view = memoryview(data)
    while True:  # one iteration per gzip member (a gzip body may hold several)
        d = zlib.decompressobj(CONTENT_CODINGS[coding])
        pending = b""
        offset = 0
        try:
            while not d.eof:
                if not pending and offset < len(view):
                    pending = bytes(view[offset : offset + _INFLATE_STEP])
                    offset += len(pending)
                chunk = d.decompress(pending, limit + 1 - size)
                pending = d.unconsumed_tail
                size += len(chunk)
                if size > limit:
                    raise PayloadTooLarge(
                        f"request body decodes (Content-Encoding: {coding}) to more than the "
                        f"limit of {limit} bytes",
                        [Problem(f"at most {limit} bytes once decoded", field="Content-Encoding")],
                    )
                out.append(chunk)
                if not chunk and not pending and offset >= len(view):
                    raise zlib.error("truncated")
        except zlib.error:
            raise BadRequest(
                f"request body is not valid {coding} data, as its Content-Encoding says",
                [Problem(f"not {coding} data", field="Content-Encoding")],
            ) from None
        rest = d.unused_data + bytes(view[offset:])
        if not rest or coding == "deflate" or not rest.strip(b"\0"):
            if rest and coding == "deflate":
                raise BadRequest(
                    "request body has data after its deflate stream",
                    [Problem("trailing data", field="Content-Encoding")],
                )
            return b"".join(out)
        view = memoryview(rest)
