"""The package's public Python API: what the README names is exported, listed and catchable."""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import ml_api
from ml_api import preprocess


def test_all_names_the_public_api_and_dir_lists_it() -> None:
    assert set(ml_api.__all__) == {
        "ImportNote",
        "ImportRefused",
        "ImportResult",
        "__version__",
        "save_model",
    }
    assert set(ml_api.__all__) <= set(dir(ml_api))
    for name in ml_api.__all__:
        assert getattr(ml_api, name) is not None
    assert ml_api.__version__ == metadata.version("ml-api")


def test_star_import_gives_save_model_and_its_error() -> None:
    names: dict[str, object] = {}
    exec("from ml_api import *", names)
    assert names["save_model"] is ml_api.save_model
    assert issubclass(names["ImportRefused"], Exception)  # type: ignore[arg-type]


def test_save_model_refusal_is_caught_as_ml_api_import_refused(tmp_path: Path) -> None:
    frame = pd.read_csv(preprocess.PENGUINS_CSV).dropna()
    numeric = ["bill_length_mm", "bill_depth_mm"]
    model = LogisticRegression(max_iter=500).fit(frame[numeric].to_numpy(), frame["species"])
    caught = None
    try:  # the README's promise, written as a notebook user would
        ml_api.save_model(model, frame, name="bad name!", target="species", model_root=tmp_path)
    except ml_api.ImportRefused as exc:
        caught = exc
    assert caught is not None and "name" in str(caught)
    assert not any(tmp_path.iterdir())


def test_import_ml_api_stays_cheap() -> None:
    heavy = "('sklearn', 'pandas', 'flask', 'django')"
    code = f"import ml_api, sys; print(sorted(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_an_unknown_attribute_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such"):
        ml_api.no_such  # noqa: B018
