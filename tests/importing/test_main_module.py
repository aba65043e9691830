"""A class defined in the notebook or script itself (module ``__main__``) gets advice that works.

It said "pass it with --code-path nbmain.py", and doing that raised the same error (the pickle
names ``__main__``, not ``nbmain``); from stdin it said ``--code-path <stdin>``. Now every route
says to move the class into a module file, import it from there, and pass that file.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from ml_api import preprocess
from tests.importing.test_refusals import refused

SCRIPT = textwrap.dedent(
    f"""
    import sys
    import joblib
    import numpy as np
    import pandas as pd
    from sklearn.base import BaseEstimator, TransformerMixin
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    import ml_api


    class LogAmount(BaseEstimator, TransformerMixin):
        def fit(self, X, y=None):
            return self

        def transform(self, X):
            return np.log1p(np.asarray(X, dtype=float))


    data = pd.read_csv({str(preprocess.PENGUINS_CSV)!r}).dropna()
    data = data[["bill_length_mm", "body_mass_g", "species"]]
    X, y = data[["bill_length_mm", "body_mass_g"]], data["species"]
    model = Pipeline([("log", LogAmount()), ("clf", LogisticRegression())]).fit(X, y)
    root, how = sys.argv[1], sys.argv[2]
    if how == "file":
        joblib.dump(model, root + "/model.joblib")
        data.to_csv(root + "/data.csv", index=False)
        sys.exit(0)
    paths = [__file__] if how == "code" else []
    try:
        ml_api.save_model(model, data, name="m", target="species", model_root=root,
                          code_paths=paths)
    except ml_api.ImportRefused as exc:
        print(exc)
        sys.exit(3)
    """
)


def _advice(message: str) -> None:
    assert "LogAmount is defined in the notebook or script itself" in message, message
    assert "move LogAmount into a module file" in message
    assert "from mytransforms import LogAmount" in message
    assert "--code-path mytransforms.py" in message
    assert "<stdin>" not in message and "nbmain" not in message


@pytest.mark.parametrize("how", ["plain", "code"])
def test_a_script_is_told_to_move_the_class_even_after_passing_itself(tmp_path, how):
    script = tmp_path / "nbmain.py"
    script.write_text(SCRIPT)
    out = subprocess.run(
        [sys.executable, str(script), str(tmp_path), how], capture_output=True, text=True
    )
    assert out.returncode == 3, out.stdout + out.stderr
    _advice(out.stdout)
    assert not (tmp_path / "m").exists()


def test_a_script_from_stdin_gets_the_same_advice(tmp_path):
    out = subprocess.run(
        [sys.executable, "-", str(tmp_path), "plain"], input=SCRIPT, capture_output=True, text=True
    )
    assert out.returncode == 3, out.stdout + out.stderr
    _advice(out.stdout)


def test_ml_api_import_of_its_pickle_gets_the_same_advice(tmp_path):
    script = tmp_path / "nbmain.py"
    script.write_text(SCRIPT)
    subprocess.run([sys.executable, str(script), str(tmp_path), "file"], check=True)
    message = refused(
        tmp_path / "models", tmp_path / "model.joblib", "--data", tmp_path / "data.csv"
    )
    _advice(message)
