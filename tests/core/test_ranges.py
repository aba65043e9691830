"""The out-of-range check on validated columns (``ml_api.core.model.ranges``)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ml_api.core.errors import InvalidInput
from ml_api.core.model.ranges import SMALL_REQUEST_ROWS, OutOfRangeInput, RangeCheck
from ml_api.core.model.schema import Feature, FeatureKind, FeatureSchema

SCHEMA = FeatureSchema(
    [
        Feature("sqft", FeatureKind.NUMERIC, "float64", False, minimum=600.0, maximum=4500.0),
        Feature("city", FeatureKind.CATEGORICAL, "object", False, categories=("a", "b")),
        Feature("rate", FeatureKind.NUMERIC, "float64", True, minimum=-0.5, maximum=0.25),
        Feature("unknown_range", FeatureKind.NUMERIC, "float64", False),  # an imported card
    ]
)


def test_the_bounds_are_inclusive_and_null_is_never_outside():
    columns = [[600.0, 4500.0, 599.0], ["a", "b", "a"], [math.nan, 0.25, -0.5], [1e9, 0, 0]]
    found = RangeCheck(SCHEMA).find(columns)
    assert found is not None and found.total == 1
    assert found.problems()[0].as_dict() == {
        "instance": 2,
        "field": "sqft",
        "problem": "599 is outside the training range 600 to 4500",
    }
    assert RangeCheck(SCHEMA).find([[600.0], ["a"], [math.nan], [5.0]]) is None


def test_found_values_are_in_instance_order_with_counts_per_feature():
    columns = [[90000.0, 1000.0, 10.0], ["a", "a", "b"], [0.3, 0.0, -0.75], [0, 0, 0]]
    found = RangeCheck(SCHEMA).find(columns, first_index=1)
    assert [(p.instance, p.field) for p in found.problems()] == [
        (1, "sqft"),
        (1, "rate"),
        (3, "sqft"),
        (3, "rate"),
    ]
    assert found.counts == {"sqft": 2, "rate": 2}
    assert found.problems()[1].problem == "0.3 is outside the training range -0.5 to 0.25"


def test_a_large_batch_is_checked_at_once():
    n = 10_000
    sqft = np.full(n, 1000.0)
    sqft[[17, 9_999]] = [5000.0, 1.0]
    columns = [sqft.tolist(), ["a"] * n, [0.0] * n, [0.0] * n]
    found = RangeCheck(SCHEMA).find(columns)
    assert found.instances.tolist() == [17, 9_999]
    warnings = found.warnings(limit=1)
    assert warnings[-1]["problem"] == (
        "1 more values outside the training range not listed (2 in all)"
    )


def test_reject_error_is_a_422_with_every_value_in_details():
    found = RangeCheck(SCHEMA).find([[1.0, 9e9], ["a", "a"], [0.0, 0.0], [0.0, 0.0]])
    err = OutOfRangeInput(found)
    assert isinstance(err, InvalidInput) and err.status == 422
    assert err.message.startswith("2 values outside the training range (listed in details)")
    assert err.message.endswith("(ML_API_OUT_OF_RANGE=reject)")
    assert [d.problem for d in err.details] == [
        "1 is outside the training range 600 to 4500",
        "9000000000 is outside the training range 600 to 4500",
    ]


@pytest.mark.parametrize(
    ("value", "shown"), [(90000.0, "90000"), (2.5, "2.5"), (-0.001, "-0.001"), (1e300, "1e+300")]
)
def test_values_are_quoted_as_a_client_writes_them(value, shown):
    found = RangeCheck(SCHEMA).find([[value], ["a"], [0.0], [0.0]])
    assert found.problems()[0].problem == f"{shown} is outside the training range 600 to 4500"


NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=False, width=64),
    st.sampled_from([600.0, 4500.0, 599.999, 4500.001, -0.5, 0.25, -0.5001, 0.2501]),
)


@settings(max_examples=200, deadline=None)
@given(rows=st.lists(st.tuples(NUMBERS, NUMBERS), min_size=1, max_size=SMALL_REQUEST_ROWS))
def test_a_small_request_finds_what_the_vectorised_pass_finds(rows):
    """Small requests are first compared value by value; the answer is the vectorised one."""
    columns = [[r[0] for r in rows], ["a"] * len(rows), [r[1] for r in rows], [0.0] * len(rows)]
    check = RangeCheck(SCHEMA)
    found = check.find(columns)
    padded = [c + [c[0]] * (SMALL_REQUEST_ROWS + 1) for c in columns]  # past the small path
    reference = check.find(padded)
    if reference is None:
        assert found is None
        return
    expected = [(i, f) for i, f in zip(reference.instances, reference.fields, strict=True)]
    assert found is not None
    assert [(i, f) for i, f in zip(found.instances, found.fields, strict=True)] == [
        (i, f) for i, f in expected if i < len(rows)
    ]
