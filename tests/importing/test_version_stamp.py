"""A pickle another scikit-learn cannot even read is refused naming both versions and the route.

A ``ColumnTransformer`` pipeline pickled by scikit-learn 1.6.1 fails to unpickle under a later one
(``AttributeError: _RemainderColsList``) before scikit-learn can warn about the version; the
import once called it "not a model file ml-api can read". scikit-learn stamps each estimator's
state with ``_sklearn_version``: the stamp is read from the file's bytes, without unpickling.
"""

from __future__ import annotations

import joblib
import numpy as np
from sklearn.linear_model import LogisticRegression

from ml_api.importing.requirements import pickled_sklearn_versions, supported_sklearn
from tests.importing.test_refusals import refused

MODULE = b"sklearn.compose._column_transformer"
NAME = b"_RemainderColsList"
UNREADABLE_1_6 = (
    b"\x80\x04]}\x8c\x10_sklearn_version\x94\x8c\x051.6.1sa"
    + b"\x8c"
    + bytes([len(MODULE)])
    + MODULE
    + b"\x8c"
    + bytes([len(NAME)])
    + NAME
    + b"\x93a."
)
"""A pickle as scikit-learn 1.6.1 writes one: its stamp, then a class later versions lack."""


def test_the_stamp_is_read_without_unpickling(tmp_path):
    path = tmp_path / "m.joblib"
    model = LogisticRegression().fit(np.arange(10).reshape(-1, 1), [0, 1] * 5)
    joblib.dump(model, path)
    import sklearn

    assert pickled_sklearn_versions(path) == [sklearn.__version__]
    (tmp_path / "old.pkl").write_bytes(UNREADABLE_1_6)
    assert pickled_sklearn_versions(tmp_path / "old.pkl") == ["1.6.1"]
    (tmp_path / "empty.pkl").write_bytes(b"")
    assert pickled_sklearn_versions(tmp_path / "empty.pkl") == []


def test_an_unreadable_older_pickle_names_both_versions_and_the_route(tmp_path):
    import sklearn

    path = tmp_path / "pipeline.joblib"
    path.write_bytes(UNREADABLE_1_6)
    data = tmp_path / "data.csv"
    data.write_text("a,b\n1,2\n")
    message = refused(tmp_path / "models", path, "--data", data)
    assert message.startswith(
        f"{path} was pickled with scikit-learn 1.6.1 and {sklearn.__version__} is installed, "
        f"and it cannot be read with this one (AttributeError: "
    )
    assert f"refit and save it with scikit-learn {sklearn.__version__}" in message
    assert (
        f"import and serve it with scikit-learn 1.6.1 (ml-api supports {supported_sklearn()})"
        in message
    )
    assert f"'ml-api requirements {path}' prints the pins" in message
    assert "'make image MODEL=<name>' installs a model's pins" in message
    assert supported_sklearn() == "scikit-learn>=1.5,<2"


def test_a_pickle_outside_the_supported_range_is_told_to_refit(tmp_path):
    import sklearn

    path = tmp_path / "ancient.joblib"
    path.write_bytes(UNREADABLE_1_6.replace(b"\x051.6.1", b"\x051.4.2"))
    (tmp_path / "data.csv").write_text("a,b\n1,2\n")
    message = refused(tmp_path / "models", path, "--data", tmp_path / "data.csv")
    assert message.endswith(
        "estimators are not portable across minor versions, and scikit-learn 1.4.2 is outside "
        f"the range ml-api supports (scikit-learn>=1.5,<2): refit and save it with scikit-learn "
        f"{sklearn.__version__}"
    )
