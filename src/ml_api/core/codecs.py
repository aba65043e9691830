"""Decoding request bodies and encoding results: strict JSON in, plain JSON types out.

Accepted ``POST /predict`` bodies (the README's "Ask for a prediction" shows each)::

    {"features": [f1, f2, ...]}              one instance, positional (the simplest form)
    {"features": [[...], [...]]}             a batch of positional instances
    {"features": {"name": value, ...}}       one named instance
    {"features": [{...}, {...}]}             a batch of named instances
    {"instances": [{...} or [...], ...]}     a batch of records (TF-Serving / KServe V1 style)

JSON is parsed strictly (:mod:`ml_api.core.strict_json`: ``NaN``/``Infinity`` tokens, repeated
keys and lone surrogate escapes are refused), and encoders never emit non-finite numbers
(non-finite floats become ``null``). Dumping uses ``orjson``, with :mod:`json` behind it for the
values ``orjson`` cannot write.
"""

from __future__ import annotations

import json
import math
import zlib
from collections.abc import Mapping
from typing import Any, BinaryIO

import orjson

from ml_api.core.errors import (
    BadRequest,
    BodyTooLarge,
    PayloadTooLarge,
    Problem,
    UnsupportedMediaType,
    quote,
)
from ml_api.core.runtimes.predictor import PredictionResult, json_scalar, plain_finite, to_jsonable
from ml_api.core.strict_json import parse_json as parse_json  # where every caller finds it

ENVELOPE_KEYS = ("features", "instances")


def check_content_type(content_type: str | None) -> None:
    """Require a JSON media type (``application/json`` or any ``application/*+json``).

    Args:
        content_type: The request's ``Content-Type`` header, parameters included, or ``None``.

    Raises:
        UnsupportedMediaType: (415) missing or not JSON.
    """
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    ):
        return
    shown = quote(media) if media else "none"
    raise UnsupportedMediaType(
        f"Content-Type must be application/json, got {shown}",
        [Problem("send the header 'Content-Type: application/json'", field="Content-Type")],
    )


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
    codings = [c.strip().lower() for c in (content_encoding or "").split(",") if c.strip()]
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


def extract_instances(payload: Any, max_instances: int) -> list[Any]:
    """Unwrap the envelope into a list of instances (each a list or a mapping).

    Args:
        payload: The parsed JSON body.
        max_instances: Most instances accepted in one request.

    Returns:
        The instances, at least one; each is still unvalidated (see ``FeatureSchema.validate``).

    Raises:
        BadRequest: (400) not an object, neither or both envelope keys, an unknown top-level key,
            an empty or mis-shaped ``features``/``instances`` value.
        PayloadTooLarge: (413) more than ``max_instances`` instances.
    """
    if not isinstance(payload, Mapping):
        raise BadRequest(
            'the body must be a JSON object with a "features" or an "instances" key',
        )
    present = [k for k in ENVELOPE_KEYS if k in payload]
    unknown = [k for k in payload if k not in ENVELOPE_KEYS]
    if unknown:
        raise BadRequest(
            f'unknown key {quote(unknown[0])} in the body; expected "features" or "instances"',
            [Problem("unknown key", field=str(k)) for k in unknown],
        )
    if len(present) != 1:
        msg = (
            'the body needs a "features" or an "instances" key'
            if not present
            else 'send either "features" or "instances", not both'
        )
        raise BadRequest(msg)
    key = present[0]
    value = payload[key]
    rows = _rows_from_features(value) if key == "features" else _rows_from_instances(value)
    if not rows:
        raise BadRequest(
            f'"{key}" is empty: send at least one instance', [Problem("empty", field=key)]
        )
    if len(rows) > max_instances:
        raise PayloadTooLarge(
            f"{len(rows)} instances in one request; the limit is {max_instances}",
            [Problem(f"at most {max_instances} instances per request", field=key)],
        )
    return rows


def _rows_from_features(value: Any) -> list[Any]:
    if isinstance(value, Mapping):
        return [value]
    if not isinstance(value, list):
        raise BadRequest(
            '"features" must be an array (one instance, or a batch of arrays or objects) '
            "or an object keyed by feature name",
            [Problem(f"got {type(value).__name__}", field="features")],
        )
    if not value:
        return []
    nested = [isinstance(v, list | Mapping) for v in value]
    if all(nested):
        return value
    if not any(nested):
        return [value]  # one positional instance, the simplest form
    first = nested.index(not nested[0])
    raise BadRequest(
        '"features" mixes values and nested instances; send one flat array (one instance) '
        "or an array of arrays/objects (a batch)",
        [Problem("mixes scalars and arrays/objects", instance=first, field="features")],
    )


def _rows_from_instances(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise BadRequest(
            '"instances" must be an array of instances',
            [Problem(f"got {type(value).__name__}", field="instances")],
        )
    return value


def encode_v1(result: PredictionResult, model_ref: Mapping[str, str]) -> dict[str, Any]:
    """Encode a prediction as the ``POST /predict`` response body.

    Args:
        result: The neutral result, ``n_instances`` of them.
        model_ref: ``{"name": ..., "version": ...}`` of the model that predicted.

    Returns:
        ``{"prediction": [n_instances values], "probabilities": [n_instances {class: p}],
        "model": model_ref}``; ``probabilities`` for classifiers only, keyed by the classes as
        strings in the model's class order; non-finite numbers become ``null``. When the
        result carries values outside the training range (``ML_API_OUT_OF_RANGE=warn``), a last
        key ``warnings`` names them (:meth:`ml_api.core.model.ranges.OutOfRange.warnings`); without
        such values the key is absent.
    """
    body: dict[str, Any] = {"prediction": to_jsonable(result.labels)}
    if result.probabilities is not None:
        keys = result.class_keys
        probabilities = result.probabilities
        if plain_finite(probabilities):  # the rule: floats, all finite (the overflow check)
            body["probabilities"] = [
                dict(zip(keys, row, strict=True)) for row in probabilities.tolist()
            ]
        else:
            body["probabilities"] = [
                dict(zip(keys, [json_scalar(v) for v in row], strict=True))
                for row in probabilities.tolist()
            ]
    body["model"] = model_ref
    if result.out_of_range is not None:
        body["warnings"] = result.out_of_range.warnings()
    return body


def dumps(payload: Any) -> bytes:
    """Serialize a response body as compact strict JSON (UTF-8).

    ``orjson`` writes it (key order kept, non-ASCII characters as UTF-8, no spaces); a payload it
    cannot write (an integer beyond 64 bits, a non-string key) is written by :mod:`json` instead.

    Raises:
        ValueError: ``payload`` holds a non-finite float (a bug upstream: encoders map those to
            ``None``).
    """
    try:
        out = orjson.dumps(payload)
    except orjson.JSONEncodeError:
        return json.dumps(
            payload, allow_nan=False, separators=(",", ":"), ensure_ascii=False
        ).encode()
    if b"null" in out:  # orjson writes NaN and infinities as null: refuse them, as json does
        _refuse_non_finite(payload)
    return out


def _refuse_non_finite(value: Any) -> None:
    """Raise ``ValueError`` if ``value`` holds a non-finite float, at any depth."""
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"Out of range float values are not JSON compliant: {value!r}")
    elif isinstance(value, Mapping):
        for item in value.values():
            _refuse_non_finite(item)
    elif isinstance(value, list | tuple):
        for item in value:
            _refuse_non_finite(item)
