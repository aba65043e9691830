"""Shape mistakes get a message that says the right shape.

A one-feature model (a text model) given ``{"features": ["a", "b"]}`` said "expected 1 values",
with nothing about the batch the client meant; ``[[...], 1.0]`` reported ``"instance": 1`` for
what is one malformed ``features`` value (1 is a position in that array, not an instance).
"""

from __future__ import annotations

import json

import pytest

from ml_api.core.errors import InvalidInput
from ml_api.core.model.schema import Feature, FeatureKind, FeatureSchema
from ml_api.core.model.validation import Validator


def test_a_flat_array_for_a_one_feature_model_hints_at_the_batch_shape():
    validator = Validator(FeatureSchema([Feature("review", FeatureKind.TEXT, "object", False)]))
    with pytest.raises(InvalidInput) as caught:
        validator.validate_columns([["a", "b", "c"]])
    (problem,) = caught.value.details
    assert problem.instance == 0
    assert problem.problem == (
        "expected 1 value in this order: review; got 3 (a batch of one-value instances is an "
        'array of arrays: [["a"], ["b"], ...])'
    )


def test_two_feature_models_get_no_batch_hint():
    features = [Feature(n, FeatureKind.NUMERIC, "float64", False) for n in ("x", "y")]
    with pytest.raises(InvalidInput) as caught:
        Validator(FeatureSchema(features)).validate_columns([[1.0, 2.0, 3.0]])
    assert "array of arrays" not in caught.value.details[0].problem


def test_mixed_nesting_names_the_features_value_not_an_instance(app):
    reply = app.post("/predict", json.dumps({"features": [["Biscoe", 50.0], 1.0]}).encode())
    assert reply.status == 400
    (detail,) = reply.json()["details"]
    assert detail["instance"] is None and detail["field"] == "features"
    assert detail["problem"].startswith("element 1 is a value, element 0 an array or object")
