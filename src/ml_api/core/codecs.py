r"""Strict JSON in and out: request bodies parsed strictly, responses written compactly.

JSON is parsed strictly (RFC 8259), one reading of a body or a 400 that says why not. Refused,
besides malformed JSON: the ``NaN``, ``Infinity`` and ``-Infinity`` tokens; an object that
repeats a key (``{"island": "Dream", "island": "Biscoe"}``: RFC 8259 section 4 leaves such a
body's meaning to the parser, and a client that sends two values for one field has a bug the
server must not hide by keeping one); a string holding a lone UTF-16 surrogate escape
(``"\ud83d"``: not Unicode text, RFC 8259 section 8.2, and it cannot be written back as UTF-8).
The encoder never emits non-finite numbers (the protocols map them to ``null`` first).

``orjson`` parses every body first (about 3x the standard library's speed on a 64-row request).
It keeps the last of repeated keys, so its result is checked for them cheaply: every key/value
pair of a JSON text has exactly one ``:`` outside strings, so when the body's ``:`` count equals
the pairs ``orjson`` kept, no key was repeated. Counting the pairs walks the parsed value level by
level and stops as soon as all colons are accounted for (for ordinary bodies, after the envelope
and the instances or tensors, never their values: about 4 us on a 64-row named body). Only a body
with colons inside strings, or one that repeats keys, goes on to an exact check. Where ``orjson``
refuses a body or would read it differently (a number too large for a double, an integer beyond
64 bits, a lone surrogate, nesting past 1,024 levels), the standard library's :mod:`json` parses
it, so every answer, error messages included, is the one :mod:`json` gives.

Reading a body (media type, coding, size) is :mod:`ml_api.core.protocols.body`; the V1 envelope
is :mod:`ml_api.core.protocols.v1`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Mapping
from typing import Any

import orjson

from ml_api.core.errors import QUOTE_CHARS, BadRequest, Problem

_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_LONG_DIGITS = b"0" * 19
_LONG_DIGITS_STR = re.compile(r"\d{19}")
"""A run of 19 digits: a number ``orjson`` may read differently from :mod:`json` (an integer
beyond 64 bits becomes a float there), so such a body goes to :mod:`json`. Bytes are checked by
mapping every digit to ``0`` and looking for 19 of them in a row (two C-level passes, a tenth of
the cost of a regular expression on a 64-row body)."""

_STRING_BYTES = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_STRING_TEXT = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
"""A JSON string token (in a body already known to be valid JSON)."""

_SURROGATE = re.compile("[\ud800-\udfff]")
"""A lone surrogate in a parsed string (paired escapes are joined into one character)."""


def _has_long_digits(body: bytes | str) -> bool:
    if isinstance(body, str):
        return _LONG_DIGITS_STR.search(body) is not None
    return _LONG_DIGITS in bytes(body).translate(_DIGITS_AS_ZERO)


def parse_json(body: bytes | str) -> Any:
    """Parse a request body as strict JSON (RFC 8259): one value, or a 400 saying what is wrong.

    Args:
        body: The raw body, UTF-8 encoded (or already decoded).

    Returns:
        The decoded value (objects as ``dict``, keys in body order).

    Raises:
        BadRequest: (400) empty body, invalid UTF-8, malformed JSON, a ``NaN``/``Infinity``
            token (the message gives the position of the first error); an object that repeats a
            key (the message names the key and where it is, the problem's ``instance`` is the
            first array index on the way, e.g. ``instances[3]`` is instance 3); a lone surrogate
            escape in a string (named by where it is).
    """
    if not _has_long_digits(body):
        try:
            value = orjson.loads(body)
        except orjson.JSONDecodeError:
            pass  # refused (or a number beyond a double): json says what is wrong, as before
        else:
            if not _may_repeat_keys(body, value):
                return value
    return _parse_json_stdlib(body)


def _may_repeat_keys(body: bytes | str, value: Any) -> bool:
    """Whether ``orjson``'s ``value`` may have lost a repeated key of ``body`` (cheap, exact no)."""
    if isinstance(body, bytes | bytearray):
        colons = body.count(b":")
        pairs = _pairs_up_to(value, colons) if colons else 0
        return pairs != colons and pairs != _STRING_BYTES.sub(b"", body).count(b":")
    colons = body.count(":")
    pairs = _pairs_up_to(value, colons) if colons else 0
    return pairs != colons and pairs != _STRING_TEXT.sub("", body).count(":")


def _pairs_up_to(value: Any, limit: int) -> int:
    """Key/value pairs in all objects of ``value``, counted level by level until ``limit``."""
    pairs = 0
    level = [value]
    while level:
        for item in level:
            if type(item) is dict:
                pairs += len(item)
        if pairs >= limit:
            return pairs
        level = [
            child
            for item in level
            for child in (item.values() if type(item) is dict else item)
            if type(child) is dict or type(child) is list
        ]
    return pairs


class _Repeated(dict[str, Any]):
    """An object whose body repeated a key (kept to say where; never returned to callers)."""

    repeated: str = ""


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``object_pairs_hook`` of the standard library parse: notes a repeated key, keeps order."""
    out = dict(pairs)
    if len(out) == len(pairs):
        return out
    seen: set[str] = set()
    marked = _Repeated(pairs)
    marked.repeated = next(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
    return marked


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
        value = json.loads(body, parse_constant=_reject_constant, object_pairs_hook=_object)
    except json.JSONDecodeError as exc:
        raise BadRequest(
            f"malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except ValueError as exc:  # from _reject_constant
        raise BadRequest(f"malformed JSON: {exc}") from None
    except RecursionError:
        raise BadRequest("malformed JSON: nested too deeply") from None
    _refuse_repeats_and_surrogates(value)
    return value


def _reject_constant(token: str) -> Any:
    raise ValueError(f"{token} is not valid JSON; send null for a missing value")


def _refuse_repeats_and_surrogates(value: Any) -> None:
    """Raise the 400 for the first repeated key or lone surrogate in ``value``, if any."""
    for path, item, is_key in _walk(value, []):
        if isinstance(item, _Repeated):
            key = item.repeated
            raise BadRequest(
                f"malformed JSON: key {_shown(key)} is repeated in {_where(path)}; "
                "send each key once",
                [Problem("repeated key", instance=_instance(path), field=_shown_field(key))],
            )
        if isinstance(item, str) and _SURROGATE.search(item):
            raise BadRequest(
                f"malformed JSON: {'the key' if is_key else 'the string at'} {_where(path)} "
                f"holds a lone surrogate escape ({_shown(item)}); send Unicode text (UTF-8, or "
                "paired surrogate escapes)",
                [Problem("lone surrogate", instance=_instance(path), field=_field(path))],
            )


def _walk(value: Any, path: list[str | int]) -> Iterator[tuple[list[str | int], Any, bool]]:
    """Every value and key in ``value``: ``(path, item, is_key)``, depth-first, in body order."""
    stack: list[tuple[list[str | int], Any]] = [(path, value)]
    while stack:
        where, item = stack.pop()
        yield where, item, False
        if isinstance(item, dict):
            children: list[tuple[list[str | int], Any]] = []
            for key, child in item.items():
                yield [*where, key], key, True
                children.append(([*where, key], child))
            stack.extend(reversed(children))
        elif isinstance(item, list):
            stack.extend(([*where, i], child) for i, child in reversed(list(enumerate(item))))


def _shown(text: str) -> str:
    r"""``text`` quoted for a message, bounded, every non-ASCII character escaped (``'\ud83d'``)."""
    if len(text) <= QUOTE_CHARS:
        return ascii(text)
    return f"{text[:QUOTE_CHARS]!a}... ({len(text)} characters)"


def _shown_field(text: str) -> str:
    return text if not _SURROGATE.search(text) else ascii(text)[1:-1]


def _where(path: list[str | int]) -> str:
    """A JSON path as a client reads it: ``the body``, ``features``, ``instances[3].sex``."""
    if not path:
        return "the body"
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (("." if out else "") + _shown_field(part))
    return out


def _instance(path: list[str | int]) -> int | None:
    """The first array index on ``path`` (the instance, or V2's input tensor), if any."""
    return next((p for p in path if isinstance(p, int)), None)


def _field(path: list[str | int]) -> str | None:
    """The last key on ``path`` (the feature or request field), if any."""
    key = next((p for p in reversed(path) if isinstance(p, str)), None)
    return None if key is None else _shown_field(key)


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
