import io
import json
import math

import numpy as np
import pytest

from ml_api.core.codecs import dumps, parse_json
from ml_api.core.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType
from ml_api.core.protocols.body import check_content_type, read_capped
from ml_api.core.protocols.v1 import extract_instances
from ml_api.core.runtimes.predictor import to_jsonable


@pytest.mark.parametrize(
    "ct",
    [
        "application/json",
        "application/json; charset=utf-8",
        "Application/JSON",
        "application/vnd.api+json",
    ],
)
def test_json_media_types_accepted(ct):
    check_content_type(ct)


@pytest.mark.parametrize(
    "ct",
    [
        None,
        "",
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/jsonx",
    ],
)
def test_other_media_types_refused(ct):
    with pytest.raises(UnsupportedMediaType) as info:
        check_content_type(ct)
    assert info.value.status == 415


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"", "empty"),
        (b"   \n", "empty"),
        (b"{", "malformed JSON"),
        (b'{"a": NaN}', "NaN"),
        (b'{"a": -Infinity}', "-Infinity"),
        (b"\xff\xfe", "UTF-8"),
        (b"[" * 100_000 + b"]" * 100_000, "malformed JSON"),
    ],
)
def test_parse_json_refuses(body, fragment):
    with pytest.raises(BadRequest) as info:
        parse_json(body)
    assert fragment in info.value.message


def test_parse_json_overflow_is_parsed_as_inf_and_left_to_schema():
    assert parse_json(b"[1e400]") == [math.inf]


def test_envelope_forms():
    row = ["a", 1.0]
    assert extract_instances({"features": row}, 10) == [row]
    assert extract_instances({"features": [row, row]}, 10) == [row, row]
    assert extract_instances({"features": {"x": 1}}, 10) == [{"x": 1}]
    assert extract_instances({"features": [{"x": 1}]}, 10) == [{"x": 1}]
    assert extract_instances({"instances": [{"x": 1}, row]}, 10) == [{"x": 1}, row]


def test_instance_cap_counts_instances():
    with pytest.raises(PayloadTooLarge) as info:
        extract_instances({"features": [[1]] * 11}, 10)
    assert info.value.status == 413
    assert "11" in info.value.message and "10" in info.value.message


def test_to_jsonable_plain_types_and_no_nan():
    values = np.array([np.float32(1.5), np.nan, np.inf], dtype=np.float64)
    assert to_jsonable(values) == [1.5, None, None]
    out = to_jsonable(np.array([np.int64(3), np.int64(4)]))
    assert out == [3, 4] and all(type(v) is int for v in out)
    assert to_jsonable(np.array([True, False])) == [True, False]
    assert type(to_jsonable(np.array([np.bool_(True)]))[0]) is bool
    assert to_jsonable(np.array(["a", "b"], dtype=object)) == ["a", "b"]


def test_dumps_is_strict():
    assert json.loads(dumps({"a": [1, "é"]})) == {"a": [1, "é"]}
    with pytest.raises(ValueError):
        dumps({"a": float("nan")})


class _Trickle(io.RawIOBase):
    """A stream that hands out at most 7 bytes per read, like a socket."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        return self._data.read(min(size, 7) if size >= 0 else 7)


@pytest.mark.parametrize("size", [0, 1, 99, 100])
def test_read_capped_returns_bodies_up_to_the_limit(size):
    data = bytes(range(256))[:size]
    assert read_capped(_Trickle(data), 100) == data


@pytest.mark.parametrize("size", [101, 10_000])
def test_read_capped_refuses_past_the_limit_reading_at_most_one_byte_more(size):
    stream = _Trickle(b"x" * size)
    with pytest.raises(PayloadTooLarge, match="larger than the limit of 100 bytes") as info:
        read_capped(stream, 100)
    assert info.value.status == 413
    assert stream._data.tell() == 101
