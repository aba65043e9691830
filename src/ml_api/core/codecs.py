"""Strict JSON in and out: request bodies parsed strictly, responses written compactly.

JSON is parsed strictly: ``NaN``, ``Infinity`` and ``-Infinity`` tokens are refused, and the
encoder never emits them (the protocols map non-finite floats to ``null`` first).

Parsing and dumping use ``orjson`` (about 3x the standard library's speed on a 64-row request);
where ``orjson`` refuses a body or would read it differently (a malformed body, a number too large
for a double, an integer beyond 64 bits, a lone surrogate, nesting past 1,024 levels), the body is
parsed by the standard library's :mod:`json` as before, so every answer, error messages included,
stays what it was. Reading a body (media type, coding, size) is
:mod:`ml_api.core.protocols.body`; the V1 envelope is :mod:`ml_api.core.protocols.v1`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

import orjson

from ml_api.core.errors import BadRequest


def _reject_constant(token: str) -> Any:
    raise ValueError(f"{token} is not valid JSON; send null for a missing value")


_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_LONG_DIGITS = b"0" * 19
_LONG_DIGITS_STR = re.compile(r"\d{19}")
"""A run of 19 digits: a number ``orjson`` may read differently from :mod:`json` (an integer
beyond 64 bits becomes a float there), so such a body goes to :mod:`json`. Bytes are checked by
mapping every digit to ``0`` and looking for 19 of them in a row (two C-level passes, a tenth of
the cost of a regular expression on a 64-row body)."""


def _has_long_digits(body: bytes | str) -> bool:
    if isinstance(body, str):
        return _LONG_DIGITS_STR.search(body) is not None
    return _LONG_DIGITS in bytes(body).translate(_DIGITS_AS_ZERO)


def parse_json(body: bytes | str) -> Any:
    """Parse a request body as strict JSON (RFC 8259).

    ``orjson`` parses it; a body ``orjson`` refuses, or one with a 19-digit run of digits (an
    integer ``orjson`` would turn into a float), is parsed by :mod:`json` as before, which gives
    the same values and the same error messages as ever.

    Args:
        body: The raw body, UTF-8 encoded (or already decoded).

    Returns:
        The decoded value.

    Raises:
        BadRequest: (400) empty body, invalid UTF-8, malformed JSON, or a ``NaN``/``Infinity``
            token; the message gives the position of the first error.
    """
    if not _has_long_digits(body):
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            pass  # refused (or a number beyond a double): json says what is wrong, as before
    return _parse_json_stdlib(body)


def _parse_json_stdlib(body: bytes | str) -> Any:
    """:func:`parse_json` by the standard library alone (the messages the API always gave)."""
    if isinstance(body, bytes | bytearray):
        try:
            body = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BadRequest(f"request body is not valid UTF-8 (byte {exc.start})") from None
    if not body.strip():
        raise BadRequest('request body is empty; send a JSON object such as {"features": [...]}')
    try:
        return json.loads(body, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise BadRequest(
            f"malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except ValueError as exc:  # from _reject_constant
        raise BadRequest(f"malformed JSON: {exc}") from None
    except RecursionError:
        raise BadRequest("malformed JSON: nested too deeply") from None


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
