"""Property-based tests (hypothesis) of the V2 tensor decoder and the CSV reader (issue 12).

Derandomized and bounded, so each run is the same run. Properties: whatever is sent, the answer
is a result or a client error (4xx) whose body stays under the error-body bound, never a 5xx or
an unexpected exception; a value is accepted in a V2 tensor exactly when it is a value of the
tensor's datatype.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ml_api.core.errors import MAX_ERROR_BODY_BYTES, ServingError, to_payload
from ml_api.core.protocols.request import Request
from ml_api.core.protocols.tensors import FLOAT_MAXIMA, INTEGER_RANGES, KNOWN_TYPES
from ml_api.core.protocols.v2 import OpenInferenceProtocol
from ml_api.predict import score_csv
from tests.contract.table import FEATURES, ROW, _v2_tensors

BOUNDED = settings(
    max_examples=2 * int(os.environ.get("FUZZ_EXAMPLES", "75")),
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4), max_leaves=12)


_V2 = {}


def _infer(service, body: bytes):
    """Call the V2 endpoint's core; return ``(status, payload)`` like an adapter would render."""
    if id(service) not in _V2:
        _V2[id(service)] = OpenInferenceProtocol(service)
    try:
        request = Request.of(body, {"Content-Type": "application/json"})
        return 200, _V2[id(service)].infer(request, "penguins")
    except ServingError as exc:
        return exc.status.value, to_payload(exc, "r")


def _assert_client_error_or_ok(status: int, payload) -> None:
    assert status == 200 or 400 <= status < 500, (status, payload)
    if status != 200:
        size = len(json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode())
        assert size <= MAX_ERROR_BODY_BYTES


tensor = st.fixed_dictionaries(
    {
        "name": st.sampled_from(FEATURES) | st.text(max_size=20),
        "datatype": st.sampled_from(sorted(KNOWN_TYPES)) | st.text(max_size=8),
        "shape": st.lists(st.integers(min_value=-2, max_value=3), max_size=3) | json_values,
        "data": st.lists(json_values, max_size=4) | json_values,
    }
)


@BOUNDED
@given(
    inputs=st.lists(tensor, max_size=7) | json_values,
    extra=st.dictionaries(
        st.sampled_from(["id", "parameters", "outputs", "other"]), json_values, max_size=2
    ),
)
def test_any_v2_request_is_answered_or_refused_cleanly(service, inputs, extra):  # fmt: skip
    body = json.dumps({"inputs": inputs, **extra}).encode()
    _assert_client_error_or_ok(*_infer(service, body))


@BOUNDED
@given(
    datatype=st.sampled_from(sorted(INTEGER_RANGES) + sorted(FLOAT_MAXIMA)),
    value=st.integers(min_value=-(2**65), max_value=2**65)
    | st.floats(min_value=-1e300, max_value=1e300, allow_nan=False),
)
def test_a_value_is_accepted_exactly_when_its_datatype_holds_it(service, datatype, value):
    if datatype in INTEGER_RANGES:
        low, high = INTEGER_RANGES[datatype]
        holds = isinstance(value, int) and low <= value <= high
    else:
        holds = abs(value) <= FLOAT_MAXIMA[datatype]
    body = _v2_tensors(ROW)
    flipper = body["inputs"][FEATURES.index("flipper_length_mm")]
    flipper.update(datatype=datatype, data=[value])
    status, payload = _infer(service, json.dumps(body).encode())
    assert status == (200 if holds else 400), payload
    if not holds:
        assert datatype in payload["error"] and "flipper_length_mm" in payload["error"]


# ---- the CSV reader of ml-api predict ---------------------------------------------------------

cell = (
    st.none()
    | st.sampled_from(["Biscoe", "Dream", "male", "female", "NA", "", "01067", "True"])
    | st.floats(allow_nan=False, allow_infinity=False).map(repr)
    | st.integers(min_value=-(10**30), max_value=10**30).map(str)
    | st.text(max_size=15)
)


@BOUNDED
@given(
    header=st.permutations([*FEATURES, "id"]).map(list)
    | st.lists(st.sampled_from([*FEATURES, "x", ""]), min_size=1, max_size=8),
    rows=st.lists(st.lists(cell, min_size=0, max_size=9), max_size=6),
)
def test_any_csv_scores_or_is_refused_as_the_cli_reports_it(service, header, rows):
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(header)
    writer.writerows([["" if c is None else c for c in row] for row in rows])
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "in.csv"
        path.write_text(text.getvalue())
        try:
            scored = score_csv(service, path, Path(tmp) / "out.csv", chunk_rows=2)
        except ServingError as exc:  # the CLI prints these as lines, exit 1
            assert 400 <= exc.status.value < 500
            return
        except (pd.errors.ParserError, UnicodeDecodeError):
            return  # the CLI prints "cannot read <path>: ...", exit 1
        assert scored == len(pd.read_csv(path, dtype=str))


@pytest.mark.parametrize("chunk_rows", [1, 5000])
def test_the_penguins_file_scores_the_same_in_any_chunking(service, tmp_path, chunk_rows):
    from ml_api import preprocess

    frame = pd.read_csv(preprocess.PENGUINS_CSV).dropna()
    path = tmp_path / "in.csv"
    frame.head(40).to_csv(path, index=False)
    assert score_csv(service, path, tmp_path / "out.csv", chunk_rows=chunk_rows) == 40


# ---- raw requests, both frameworks: headers and bodies no document describes ----------------


@pytest.fixture(scope="module")
def both_apps(settings, service, django_app):
    from django.test import Client

    from ml_api.api.flask_app import create_app

    return create_app(settings, service).test_client(), Client()


def _encode(body: bytes, coding: str) -> bytes:
    import gzip
    import zlib

    if coding.startswith("gzip"):
        return gzip.compress(body)
    if coding == "deflate":
        return zlib.compress(body)
    return body


@BOUNDED
@given(
    path=st.sampled_from(["/predict", "/v2/models/penguins/infer"]),
    payload=json_values | st.fixed_dictionaries({"features": json_values})
    | st.fixed_dictionaries({"instances": json_values}) | st.binary(max_size=60).map(bytes.hex),
    content_type=st.sampled_from(["application/json", "application/json; charset=latin-1",
                                  "text/plain", "application/x+json", ""]),
    coding=st.sampled_from(["", "identity", "gzip", "deflate", "br", "gzip, gzip", "GZIP"]),
    really_encode=st.booleans(),
)  # fmt: skip
def test_raw_requests_get_the_same_clean_answer_from_both(
    both_apps, path, payload, content_type, coding, really_encode
):
    from tests.clients import django_call, flask_call

    body = json.dumps(payload).encode()
    if really_encode:
        body = _encode(body, coding.lower())
    headers = {"X-Request-ID": "fuzz-1", **({"Content-Encoding": coding} if coding else {})}
    flask, django = both_apps
    f = flask_call(flask, "POST", path, body, content_type or None, headers)
    d = django_call(django, "POST", path, body, content_type or None, headers)
    assert f.status < 500 and (f.status, f.body) == (d.status, d.body)
    if f.status >= 400:
        assert len(f.body) <= MAX_ERROR_BODY_BYTES
