"""The request path's shortcuts give the model's own answers, to the byte.

The ONNX feed is built in one conversion at the request's size (a lone instance padded while it
is built), the overflow check and the label counting skip their general path when every answer is
finite, V1/V2 encode whole arrays at once, and V2 validates its tensors as columns (no rows
built). Here random valid requests (hypothesis) go through the service and both protocols, and
the answer bytes are compared with an oracle written out in full: the feed built column by column
as the ONNX Runtime docs describe it, the session run directly, labels and probabilities taken
from its outputs, each value mapped one by one.
"""

from __future__ import annotations

import json
import math
import random

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ml_api.core.codecs import dumps
from ml_api.core.errors import InvalidInput
from ml_api.core.model.schema import FeatureKind
from ml_api.core.protocols.request import Request
from ml_api.core.protocols.tensors import KNOWN_TYPES, check_datatype, plainly_of
from ml_api.core.protocols.v1 import V1Protocol, probability_rows
from ml_api.core.protocols.v2 import OpenInferenceProtocol
from ml_api.core.runtimes.onnx_runtime import onnx_input_names
from ml_api.core.runtimes.predictor import PredictionResult, json_scalar, to_jsonable
from tests.conftest import VALID_ROW

JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def onnx_service(service):
    assert service.predictor.runtime == "onnxruntime"  # the conftest model passed the gate
    return service


def _instances(schema):
    """Valid named instances of ``schema``: values inside the training range, nulls allowed."""
    fields = {}
    for f in schema.features:
        if f.kind is FeatureKind.NUMERIC:
            value = st.floats(float(f.minimum), float(f.maximum), allow_nan=False)
        else:
            value = st.sampled_from(list(f.categories))
        fields[f.name] = st.one_of(st.none(), value) if f.nullable else value
    return st.lists(st.fixed_dictionaries(fields), min_size=1, max_size=70)


def _oracle(service, instances):
    """The model's own answer for ``instances``: the session run on a feed built per column."""
    schema = service.schema
    session = service.predictor.primary.session
    n = len(instances)
    copies = 2 if n == 1 else 1  # a lone instance is evaluated as two copies (batch invariance)
    feed = {}
    for f, name in zip(schema.features, onnx_input_names(schema.names), strict=True):
        values = [row[f.name] for row in instances] * copies
        if f.kind is FeatureKind.NUMERIC:
            numbers = [math.nan if v is None else float(v) for v in values]
            feed[name] = np.array(numbers, dtype=np.float32).reshape(-1, 1)
        else:
            feed[name] = np.array(["" if v is None else v for v in values], object).reshape(-1, 1)
    raw_labels, raw_proba = session._session.run(None, feed)
    labels = [str(v) for v in raw_labels[:n]]
    proba = np.asarray(raw_proba, dtype=np.float32)[:n].astype(np.float64)
    keys = [str(c) for c in service.predictor.classes]
    return labels, proba, keys


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_v1_and_v2_answer_the_models_own_numbers(onnx_service, data):
    service = onnx_service
    instances = data.draw(_instances(service.schema))
    labels, proba, keys = _oracle(service, instances)
    n = len(instances)

    body = V1Protocol(service).predict(Request.of(dumps({"instances": instances}), JSON))
    expected_v1 = {
        "prediction": labels,
        "probabilities": [
            {k: json_scalar(p) for k, p in zip(keys, row, strict=True)} for row in proba.tolist()
        ],
        "model": service.model_ref,
    }
    assert dumps(body) == dumps(expected_v1)
    assert json.loads(dumps(body)) == expected_v1

    inputs = []
    for f in service.schema.features:
        datatype = "FP64" if f.kind is FeatureKind.NUMERIC else "BYTES"
        column = [row[f.name] for row in instances]
        inputs.append({"name": f.name, "datatype": datatype, "shape": [n], "data": column})
    v2 = OpenInferenceProtocol(service)
    answer = v2.infer(Request.of(dumps({"inputs": inputs}), JSON), service.artifact.name)
    outputs = {o["name"]: o for o in answer["outputs"]}
    assert [o["name"] for o in answer["outputs"]] == list(outputs)
    label_out = next(iter(outputs.values()))
    assert label_out["shape"] == [n] and label_out["data"] == labels
    proba_out = list(outputs.values())[1]
    assert proba_out["shape"] == [n, len(keys)]
    assert dumps(proba_out["data"]) == dumps([json_scalar(p) for p in proba.ravel().tolist()])


@given(
    rows=st.lists(
        st.lists(
            st.floats(allow_nan=True, allow_infinity=True, width=64), min_size=2, max_size=4
        ).map(lambda r: (r + [0.5] * 4)[:4]),
        min_size=1,
        max_size=20,
    )
)
def test_probability_rows_are_dict_of_zip(rows):
    for width in (2, 3, 4):
        keys = ["a", "b", "c", "d"][:width]
        cut = [row[:width] for row in rows]
        assert probability_rows(keys, cut) == [dict(zip(keys, r, strict=True)) for r in cut]
        assert [list(d) for d in probability_rows(keys, cut)] == [keys] * len(cut)
    same = probability_rows(["x", "x"], [[0.1, 0.2]])
    assert same == [dict(zip(["x", "x"], [0.1, 0.2], strict=True))] == [{"x": 0.2}]


@pytest.mark.parametrize(
    "values",
    [
        ["Adelie", "Gentoo"],
        [1, 2, 3],
        [True, False],
        ["a", 1, True],
        [1.5, float("nan")],
        [np.int64(3), "b"],
        [None, "x"],
        [float("inf"), 2],
        [object(), "y"],
    ],
)
def test_object_label_arrays_encode_as_per_value(values):
    array = np.empty(len(values), dtype=object)
    array[:] = values
    fast = to_jsonable(array)
    assert fast == [json_scalar(v) for v in array.tolist()]
    assert [type(v) for v in fast] == [type(json_scalar(v)) for v in array.tolist()]


def test_overflow_check_still_names_every_non_finite_answer():
    from ml_api.core.service import _refuse_overflow

    finite = PredictionResult(np.array(["a", "b"], dtype=object), np.array([[0.5, 0.5]] * 2))
    _refuse_overflow(finite, 0)  # nothing refused
    mixed = PredictionResult(
        np.array([1.0, np.inf, 2.0, np.nan]), None
    )  # a regressor: labels are the values
    with pytest.raises(InvalidInput) as raised:
        _refuse_overflow(mixed, 5)
    assert [p.instance for p in raised.value.details] == [6, 8]
    proba = PredictionResult(
        np.array(["a", "b", "c"], dtype=object), np.array([[0.5, 0.5], [np.nan, 1.0], [0, 1]])
    )
    with pytest.raises(InvalidInput, match=r"^instance 1: the model's arithmetic overflows"):
        _refuse_overflow(proba, 0)


def _outcome(fn):
    try:
        return ("ok", repr(fn()))
    except InvalidInput as exc:
        return ("error", exc.message, [repr(p) for p in exc.details])


def test_feature_columns_validate_as_their_rows(service):
    """V2's columns are validated without rows: same columns, same errors as the rows."""
    validator = service.validator
    rng = random.Random(11)
    choices = [None, 1, 2.5, "Biscoe", "Dream", "male", True, math.inf, math.nan, "x", 10**400]
    for _ in range(300):
        rows = [list(VALID_ROW) for _ in range(rng.choice([1, 2, 3, 17]))]
        for row in rows:
            if rng.random() < 0.4:
                row[rng.randrange(len(row))] = rng.choice(choices)
        columns = [list(c) for c in zip(*rows, strict=True)]
        by_columns = _outcome(lambda c=columns: validator.validate_feature_columns(c))
        by_rows = _outcome(lambda r=rows: validator.validate_columns(r))
        assert by_columns == by_rows


_JSON_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([10**400, -(10**400), 2**64, 2**63, -(2**63) - 1, 65504, 65505]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([3.4028234663852886e38, 3.4028235e38, 1.7976931348623157e308, 65504.0]),
    st.text(max_size=3),
)


@given(values=st.lists(_JSON_VALUES, max_size=8), datatype=st.sampled_from(sorted(KNOWN_TYPES)))
def test_plainly_of_accepts_only_what_each_value_check_accepts(values, datatype):
    if plainly_of(datatype, values):
        for value in values:
            check_datatype("x", datatype, value)  # raises BadRequest if the shortcut was wrong


@pytest.mark.parametrize(
    ("datatype", "values"),
    [
        ("FP64", [1.5, 2, -3.25]),
        ("FP32", [3.4028234663852886e38, 0.0]),
        ("INT64", [2**63 - 1, -(2**63)]),
        ("UINT8", [0, 255]),
        ("BYTES", ["a", ""]),
        ("BOOL", [True, False]),
    ],
)
def test_plainly_of_takes_the_common_tensors(datatype, values):
    assert plainly_of(datatype, values)
