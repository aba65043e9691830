"""Sample data that says nothing about a feature: refused when it has no value, named when one.

Once, a feature missing in every data row imported silently (its kind guessed as a number, its
range empty so the out-of-range policy could never fire for it), and a feature with one value got
a one-point range or a one-category list without a word.
"""

from __future__ import annotations

import json

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder

import ml_api
from ml_api.core.model.artifact import load_artifact
from ml_api.core.model.ranges import RangeCheck
from ml_api.importing import ImportRefused
from tests.importing.test_refusals import refused, run_import


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """A pipeline that imputes its numbers and one-hot encodes ``c`` (categories from the model),
    fitted on varied rows; ``d``'s encoder sits behind another step, so its categories come
    from the data."""
    rng = np.random.default_rng(5)
    n = 80
    X = pd.DataFrame(
        {
            "a": rng.normal(size=n),
            "b": rng.normal(size=n),
            "c": rng.choice(["x", "y", "z"], n),
            "d": rng.choice(["p", "q"], n),
        }
    )
    y = 2 * X.a - X.b
    pre = ColumnTransformer(
        [
            ("num", SimpleImputer(), ["a", "b"]),
            ("c", OneHotEncoder(handle_unknown="error"), ["c"]),
            ("d", make_pipeline(FunctionTransformer(), OneHotEncoder()), ["d"]),
        ]
    )
    model = make_pipeline(pre, Ridge()).fit(X, y)
    path = tmp_path_factory.mktemp("evidence") / "model.joblib"
    joblib.dump(model, path)
    return model, X.assign(y=y), path


def _csv(tmp_path, frame):
    path = tmp_path / "data.csv"
    frame.to_csv(path, index=False)
    return path


def test_a_feature_missing_in_every_row_is_refused_by_name(tmp_path, fitted):
    model, frame, path = fitted
    data = frame.head(30).assign(b=np.nan, d=None)
    message = refused(tmp_path / "models", path, "--data", _csv(tmp_path, data), "--target", "y")
    assert message == (
        "the data (data.csv) has no value for b, d in any of its 30 rows: a feature's kind, "
        "range and categories are learned from the data; give sample rows where each feature "
        "has values"
    )
    with pytest.raises(ImportRefused, match=r"the data \(DataFrame\) has no value for b, d"):
        ml_api.save_model(model, data, name="m", target="y", model_root=tmp_path / "py")
    assert not (tmp_path / "py").exists()


def test_a_feature_absent_from_the_data_is_refused(tmp_path, fitted):
    _, frame, path = fitted
    message = refused(
        tmp_path / "models", path, "--data", _csv(tmp_path, frame.drop(columns=["b"]))
    )
    assert message == "the data lacks 1 of the model's features (the model's feature_names_in_): b"


def test_one_distinct_value_is_named_in_the_output_and_the_card(tmp_path, fitted):
    _, frame, path = fitted
    data = frame.head(40).assign(a=1.5, c="y", d="p")
    root = tmp_path / "models"
    code, out, err = run_import(
        path, "--data", _csv(tmp_path, data), "--target", "y", "--name", "thin",
        "--model-root", root,
    )  # fmt: skip
    assert code == 0, out + err
    card = json.loads((root / "thin" / "1" / "metadata.json").read_text())
    thin = card["import_data"]["thin_evidence"]
    # c's categories come from the model's encoder: one value in the data limits nothing
    assert set(thin) == {"a", "d"}
    assert thin["a"].startswith(
        "a: one distinct value (1.5) in the 40 data rows with a value: its range is that value "
        "alone, so under ML_API_OUT_OF_RANGE=warn or reject every other value is out of range"
    )
    assert thin["d"].startswith(
        "d: one category ('p') in the 40 data rows with a value and none named by the model: "
        "every other category is refused (422)"
    )
    for line in thin.values():
        assert f"note: {line}" in out.splitlines()
    # what the note says is what the server then does
    schema = load_artifact(root, "thin").schema
    found = RangeCheck(schema).find([[1.5, 1.6], [0.0, 0.0], ["x", "x"], ["p", "p"]], 0)
    assert found is not None and found.total == 1
    assert schema.features[3].categories == ("p",)


def test_varied_data_gets_no_note(tmp_path, fitted):
    _, frame, path = fitted
    root = tmp_path / "models"
    code, out, err = run_import(
        path, "--data", _csv(tmp_path, frame), "--target", "y", "--name", "ok",
        "--model-root", root,
    )  # fmt: skip
    assert code == 0, out + err
    assert "note: " not in out
    card = json.loads((root / "ok" / "1" / "metadata.json").read_text())
    assert "thin_evidence" not in card["import_data"]
