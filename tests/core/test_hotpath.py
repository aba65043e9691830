"""The hot path's shortcuts give what the general path gives: values, errors, bytes, series.

``parse_json`` and ``dumps`` use orjson with the standard library behind it; the validator checks a
plainly valid request column by column; ``encode_v1`` skips per-value mapping for finite floats;
metric children are kept per process; Django reads headers from ``META``. Each is compared here
with what the general path (or the library it replaces) gives on the same input.
"""

from __future__ import annotations

import json
import math
import random

import numpy as np
import pytest

from ml_api.core import metrics
from ml_api.core.codecs import _parse_json_stdlib, dumps, parse_json
from ml_api.core.errors import BadRequest, InvalidInput
from ml_api.core.model.validation import Validator
from ml_api.core.protocols.v1 import encode_v1
from ml_api.core.runtimes.predictor import PredictionResult
from tests.conftest import VALID_NAMED, VALID_ROW

PARSE_CASES = [
    b'{"features": [1, 2.5, -0.0, 1e-7, "\xc3\xa9\\u00e9", null, true]}',
    b'{"a": 1, "b": {"c": [], "d": {}}}',
    b'{"t": "12:30", "u": {"v": ":", "w": "\\":"}}',  # colons inside strings
    b'{"z": 1, "a": 2, "m": 3}',  # key order kept
    b"123456789012345678901234567890",  # beyond 64 bits: an int, never a float
    b"-9223372036854775809",
    b"18446744073709551616",
    b"[0.1234567890123456789]",
    b"[1e400, -1e400]",  # beyond a double: inf, left to the schema's "finite number" check
    b'"\\ud83d\\ude00"',  # a surrogate pair: one character
    b"[" * 900 + b"]" * 900,
    b"  {}  ",
    '{"s": "\u2028 ☃"}'.encode(),
]

REFUSED = [
    b"",
    b" \n",
    b"{",
    b"[1,]",
    b'{"a": NaN}',
    b'{"a": Infinity}',
    b'{"a": -Infinity}',
    b"\xff\xfe",
    b"\xef\xbb\xbf{}",  # a UTF-8 byte order mark
    b'"\x01"',
    b"[" * 1500 + b"]" * 1500,  # deeper than orjson goes (json: "nested too deeply")
    b"[" * 100_000 + b"]" * 100_000,
    b'{"a": 1, "a": 2, "b": {"c": [], "d": {}}}',  # a repeated key
    b'{"t": "12:30", "u": {"v": 1, "v": 1}}',  # repeated, behind colons inside strings
    b'"\\ud800"',  # a lone surrogate escape
    b'{"\\udc00": 1}',
]


@pytest.mark.parametrize("body", PARSE_CASES)
def test_parse_json_reads_as_the_standard_library_does(body):
    got, want = parse_json(body), _parse_json_stdlib(body)
    assert repr(got) == repr(want)  # same values, same types (int stays int), same key order
    assert repr(parse_json(body.decode("utf-8", "surrogatepass"))) == repr(want)


@pytest.mark.parametrize("body", REFUSED)
def test_parse_json_refuses_with_the_standard_librarys_message(body):
    with pytest.raises(BadRequest) as got:
        parse_json(body)
    with pytest.raises(BadRequest) as want:
        _parse_json_stdlib(body)
    assert got.value.status == want.value.status == 400
    assert got.value.message == want.value.message
    assert got.value.details == want.value.details


def test_nan_message_names_the_token():
    with pytest.raises(BadRequest) as info:
        parse_json(b'{"features": [1, NaN]}')
    assert info.value.message == (
        "malformed JSON: NaN is not valid JSON; send null for a missing value"
    )


@pytest.mark.parametrize(
    "payload",
    [
        {"prediction": ["Adelie", 2, 0.1, 1e-7, 1e16, None, True], "model": {"name": "é☃"}},
        {"b": 1, "a": [{"z": 0.30000000000000004}, []]},
        {"big": 2**70},  # beyond orjson: written by json
        {1: "non-string key"},  # beyond orjson: written by json, as "1"
    ],
)
def test_dumps_is_compact_utf8_json_with_the_same_values(payload):
    out = dumps(payload)
    assert json.loads(out) == json.loads(json.dumps(payload))
    assert b" " not in out.replace(b"non-string key", b"")
    assert list(json.loads(out)) == [str(k) for k in payload]  # key order


@pytest.mark.parametrize(
    "payload", [{"a": math.nan}, {"a": [1.0, {"b": math.inf}]}, [None, -math.inf]]
)
def test_dumps_refuses_non_finite_floats_at_any_depth(payload):
    with pytest.raises(ValueError):
        dumps(payload)


def test_dumps_keeps_nulls():
    assert dumps({"a": None, "b": [None]}) == b'{"a":null,"b":[null]}'


def _slow(validator: Validator, rows, first_index=0):
    """The per-value path alone (what every request took before the column-wise check)."""
    original = validator._valid_columns
    validator._valid_columns = lambda rows: None  # type: ignore[method-assign]
    try:
        return validator.validate_columns(rows, first_index)
    finally:
        validator._valid_columns = original  # type: ignore[method-assign]


def _outcome(fn):
    try:
        return ("ok", fn())
    except InvalidInput as exc:
        return ("error", exc.message, [repr(p) for p in exc.details])


def test_fast_path_takes_plainly_valid_requests(service):
    validator = service.validator
    with_ints = [dict(VALID_NAMED, body_mass_g=5000 + i) for i in range(64)]  # ints, floats
    assert validator._valid_columns(with_ints) is not None
    assert validator._valid_columns([list(VALID_ROW)] * 3) is not None
    for rows in ([VALID_NAMED] * 2, [list(VALID_ROW)] * 64, with_ints):
        fast = validator.validate_columns(rows)
        slow = _slow(validator, rows)
        assert repr(fast) == repr(slow)
        assert all(type(v) is float for v in fast[1])


def _mutations():
    """Rows that break, or merely leave, the fast path's pattern, one way each."""
    yield "null", dict(VALID_NAMED, flipper_length_mm=None)  # nullable: valid, slow path
    yield "null-not-nullable", dict(VALID_NAMED, island=None)
    yield "string-number", dict(VALID_NAMED, bill_length_mm="50")
    yield "bool-number", dict(VALID_NAMED, bill_length_mm=True)
    yield "inf", dict(VALID_NAMED, bill_length_mm=math.inf)
    yield "nan", dict(VALID_NAMED, bill_length_mm=math.nan)
    yield "huge-int", dict(VALID_NAMED, body_mass_g=10**400)
    yield "overflowing-sum", dict(VALID_NAMED, body_mass_g=1.7e308)
    yield "unknown-category", dict(VALID_NAMED, island="Atlantis")
    yield "number-category", dict(VALID_NAMED, island=3)
    yield "missing", {k: v for k, v in VALID_NAMED.items() if k != "sex"}
    yield "unknown-key", dict(VALID_NAMED, colour="blue")
    yield "short-list", list(VALID_ROW)[:-1]
    yield "tuple", tuple(VALID_ROW)
    yield "scalar", 3
    yield "object-in-list", [*VALID_ROW[:-1], {"a": 1}]


@pytest.mark.parametrize(("name", "bad"), list(_mutations()), ids=[n for n, _ in _mutations()])
@pytest.mark.parametrize("position", [0, 5, 63])
@pytest.mark.parametrize("form", ["named", "positional"])
def test_fast_path_gives_the_same_columns_or_errors(service, name, bad, position, form):
    validator = service.validator
    good = VALID_NAMED if form == "named" else list(VALID_ROW)
    rows = [good] * 64
    rows[position] = bad
    fast = _outcome(lambda: validator.validate_columns(rows, 1))
    slow = _outcome(lambda: _slow(validator, rows, 1))
    assert repr(fast) == repr(slow)


def test_fast_path_matches_on_random_rows(service):
    validator = service.validator
    rng = random.Random(7)
    choices = [None, 1, 2.5, "Biscoe", "Dream", "male", True, math.inf, "x", 10**30]
    for _ in range(300):
        rows = [list(VALID_ROW) for _ in range(rng.randint(2, 5))]
        for row in rows:
            if rng.random() < 0.5:
                row[rng.randrange(6)] = rng.choice(choices)
        fast = _outcome(lambda rows=rows: validator.validate_columns(rows))
        slow = _outcome(lambda rows=rows: _slow(validator, rows))
        assert repr(fast) == repr(slow)


def _result(probabilities: np.ndarray, labels: np.ndarray) -> PredictionResult:
    return PredictionResult(
        labels=labels, probabilities=probabilities, classes=("Adelie", "Chinstrap", "Gentoo")
    )


@pytest.mark.parametrize(
    "probabilities",
    [
        np.array([[0.1, 0.2, 0.7], [1e-9, 0.5, 0.5 - 1e-9]]),
        np.array([[np.nan, 0.5, 0.5], [0.2, np.inf, 0.3]]),
        np.array([[0.1, 0.2, 0.7], [0.3, 0.3, 0.4]], dtype=np.float32),
    ],
)
def test_encode_v1_same_body_as_per_value_mapping(probabilities):
    labels = np.array(["Gentoo", "Adelie"], dtype=object)
    body = encode_v1(_result(probabilities, labels), {"name": "p", "version": "1"})
    keys = ("Adelie", "Chinstrap", "Gentoo")
    want = [
        {k: (v if math.isfinite(v) else None) for k, v in zip(keys, row, strict=True)}
        for row in probabilities.tolist()
    ]
    assert body["probabilities"] == want
    assert body["prediction"] == ["Gentoo", "Adelie"]
    assert all(
        type(v) in (float, type(None)) for row in body["probabilities"] for v in row.values()
    )


def test_metric_children_are_the_labelled_children():
    labels = ("m", "1", "onnx")
    kept = metrics.child(metrics.REQUEST_INSTANCES, *labels)
    assert kept._child is metrics.REQUEST_INSTANCES.labels(*labels)  # wrapped: deferred writes
    assert metrics.child(metrics.REQUEST_INSTANCES, *labels) is metrics.child(
        metrics.REQUEST_INSTANCES, *labels
    )


def test_record_http_counts_like_labels():
    before = metrics.HTTP_REQUESTS.labels("PATCH", "/t", "418")._value.get()
    duration_sum = metrics.HTTP_DURATION.labels("PATCH", "/t", "418")._sum.get()
    metrics.record_http("PATCH", "/t", 418, 0.25)
    metrics.record_http("PATCH", "/t", 418, 0.5)
    assert metrics.HTTP_REQUESTS.labels("PATCH", "/t", "418")._value.get() == before + 2
    assert metrics.HTTP_DURATION.labels("PATCH", "/t", "418")._sum.get() == duration_sum + 0.75
