"""The one columnar check accepts exactly what the per-value validator accepts (same values).

``ml_api.core.model.columns.check_column`` judges whole columns (the JSON fast path, every batch
reader); ``Validator`` judges one value at a time and words the problems. Hypothesis generates
columns of JSON values (numbers, huge integers, NaN/inf, strings, numeric strings, booleans,
null) and of CSV text cells (digits, underscores, non-ASCII digits, whitespace, missing
tokens, ``true`` in any case...) for numeric, categorical, boolean and numeric-coded features,
nullable or not, and holds the two to the same verdict on every value.
"""

import math
from decimal import Decimal

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ml_api.core.errors import InvalidInput
from ml_api.core.model.columns import check_column, check_values, json_values, parse_number
from ml_api.core.model.schema import Feature, FeatureKind, FeatureSchema
from ml_api.core.model.validation import Validator
from ml_api.scoring.cells import NA_CELLS, cell_value
from ml_api.scoring.checks import CSV_TEXT

CATEGORIES = ("Biscoe", "Dream", "NA", "01067", "ñandú")


def features():
    nullable = st.booleans()
    return st.one_of(
        nullable.map(lambda n: Feature("x", FeatureKind.NUMERIC, "float64", n)),
        nullable.map(lambda n: Feature("x", FeatureKind.CATEGORICAL, "object", n, CATEGORIES)),
        nullable.map(
            lambda n: Feature("x", FeatureKind.CATEGORICAL, "object", n, ("False", "True"))
        ),
        nullable.map(lambda n: Feature.coded("x", "int64", n, [2134, 7, -1, 3.5])),
    )


json_value = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([10**400, -(10**400), 2134, 7, -1, 0, 2**63, 2**64]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([3.5, 2134.0, 7.0, -0.0, float("nan"), float("inf")]),
    st.sampled_from(
        [*CATEGORIES, "True", "False", "true", "5_500", "2134", "\u0661\u0662", " 7", ""]
    ),
    st.text(max_size=6),
)


def per_value(feature, value):
    """The per-value validator's verdict on one value: ``(accepted, value)``."""
    validator = Validator(FeatureSchema([feature]))
    try:
        return True, validator.validate_columns([[value]])[0][0]
    except InvalidInput:
        return False, None


def same(a, b):
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    a, b = float(a), float(b)
    return (math.isnan(a) and math.isnan(b)) or a == b


def assert_same_verdicts(checked, verdicts):
    for i, (accepted, value) in enumerate(verdicts):
        assert (not checked.doubtful()[i]) == accepted, (i, value)
        if accepted:
            assert same(checked.values[i], value), (checked.values[i], value)


@settings(max_examples=400, deadline=None)
@given(features(), st.lists(json_value, min_size=1, max_size=8))
def test_json_columns_accepted_exactly_as_the_per_value_validator_accepts(feature, values):
    typed = json_values(values, feature)
    if typed is None:  # mixed JSON types, or an integer past float range: per value only
        for v in values:
            single = json_values([v], feature)
            if single is not None:
                assert_same_verdicts(check_values(*single, feature), [per_value(feature, v)])
        return
    checked = check_values(*typed, feature)
    assert_same_verdicts(checked, [per_value(feature, v) for v in values])
    try:  # the same values as an Arrow column (a Parquet file's): the same verdicts
        arrow = pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        return  # mixed types, or an integer past 64 bits: not one Arrow column
    assert_same_verdicts(check_column(arrow, feature), [per_value(feature, v) for v in values])


cell_text = st.one_of(
    st.sampled_from(sorted(NA_CELLS)),
    st.sampled_from([*CATEGORIES, "true", "TRUE", " false ", "tRuE", "2134", "02134", "7.0"]),
    st.sampled_from(
        [
            "5_500",
            "1_0",
            "\u0661\u0662",
            "\uff15",
            "\u0663.\u0665",
            "1e5",
            "+5",
            ".5",
            "5.",
            " 5",
            "5\t",
        ]
    ),
    st.sampled_from(["inf", "-Infinity", "nan", "1e400", "0x10", "1,5", "\xa05", "5\u2009"]),
    st.text(alphabet="0123456789.eE+-_ \t\xa0\u0661\uff15aN", max_size=7),
    st.text(max_size=5),
)


@settings(max_examples=400, deadline=None)
@given(features(), st.lists(cell_text, min_size=1, max_size=8))
def test_csv_text_cells_accepted_exactly_as_the_per_value_validator_accepts(feature, cells):
    checked = check_column(pa.array(cells, type=pa.string()), feature, CSV_TEXT)
    verdicts = [per_value(feature, cell_value(cell, feature, NA_CELLS)) for cell in cells]
    assert_same_verdicts(checked, verdicts)


@pytest.mark.parametrize(
    ("text", "number"),
    [("5500", 5500.0), (" 7 ", 7.0), ("+5", 5.0), (".5", 0.5), ("1E+05", 1e5), ("-0", -0.0),
     ("5_500", None), ("\u0661\u0662", None), ("\uff15", None), ("1,5", None),
     ("0x10", None), ("", None)],
)  # fmt: skip
def test_one_definition_of_a_number_written_as_text(text, number):
    assert parse_number(text) == number


def test_parquet_types_are_checked_as_their_csv_equivalents():
    numeric = Feature("x", FeatureKind.NUMERIC, "float64", True)
    for array in (
        pa.array([1, None, 3], pa.int8()),
        pa.array([1, None, 3], pa.uint64()),
        pa.array([1.5, None, 3], pa.float32()),
        pa.array([np.float16(1.5), None, np.float16(3)], pa.float16()),
        pa.array([Decimal("1.50"), None, Decimal("3.00")], pa.decimal128(10, 2)),
    ):
        checked = check_column(array, numeric)
        assert not checked.doubtful().any(), array.type
        assert checked.values[0] == float(array[0].as_py()) and np.isnan(checked.values[1])
    text = Feature("x", FeatureKind.CATEGORICAL, "object", True, CATEGORIES)
    for array in (
        pa.array(["Dream", None, "NA"], pa.large_string()),
        pa.array(["Dream", None, "NA"]).dictionary_encode(),
    ):
        checked = check_column(array, text)
        assert not checked.doubtful().any(), array.type
        assert checked.values[0] == "Dream" and checked.values[2] == "NA"
