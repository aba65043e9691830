"""What `ml-api import` prints: the runtime that serves, encoders that accept unseen values."""

from __future__ import annotations

import json
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
from click.testing import CliRunner
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

from ml_api.api.flask_app import create_app
from ml_api.cli import main
from ml_api.composition import build_scoring
from ml_api.settings import Settings


def _frame(n: int = 120) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "store_id": rng.choice(["s101", "s102", "s103"], n),
            "promo": rng.choice(["yes", "no"], n),
            "price": rng.uniform(1, 5, n),
        }
    )


def _import(tmp_path: Path, model, frame: pd.DataFrame, target: str):
    joblib.dump(model, tmp_path / "model.joblib")
    frame.to_csv(tmp_path / "data.csv", index=False)
    args = ["import", tmp_path / "model.joblib", "--data", tmp_path / "data.csv"]
    args += ["--target", target, "--name", "shop", "--model-root", tmp_path / "models"]
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_import_says_which_runtime_serves_and_that_unseen_categories_are_refused(tmp_path):
    frame = _frame()
    frame["sold"] = (frame["price"] < 3).astype(int).map({0: "few", 1: "many"})
    pre = ColumnTransformer(
        [
            ("store", OneHotEncoder(handle_unknown="ignore"), ["store_id"]),
            ("promo", OneHotEncoder(), ["promo"]),  # handle_unknown="error": nothing to say
        ],
        remainder="passthrough",
    )
    model = make_pipeline(pre, LogisticRegression()).fit(frame.drop(columns="sold"), frame["sold"])
    r = _import(tmp_path, model, frame, "sold")
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert (
        "store_id: the model's encoder ignores unseen categories (handle_unknown='ignore'); "
        "ml-api refuses them with 422 (allowed: the encoder's categories)"
    ) in lines
    assert not any(line.startswith("promo:") for line in lines)
    card = json.loads((tmp_path / "models" / "shop" / "1" / "metadata.json").read_text())
    assert list(card["provenance"]["unseen_categories"]) == ["store_id"]
    # the same runtime line train prints, from the card
    assert card["runtime"] == "onnxruntime"
    assert "served by ONNX Runtime (ML_API_RUNTIME=auto)" in r.output
    # the served check says how it compared
    assert (
        "checked: the server's predictions on 120 data rows equal the model's own "
        "(labels exactly, probabilities within 1e-6 relative)"
    ) in lines

    # the policy the line announces: an unseen store is refused, naming field and instance
    settings = Settings(model_root=tmp_path / "models", model_name="shop")
    client = create_app(settings, build_scoring(settings)).test_client()
    row = {"store_id": "s999", "promo": "yes", "price": 2.0}
    answer = client.post("/predict", json={"instances": [row]})
    assert answer.status_code == 422
    assert "store_id" in answer.get_data(as_text=True)


def test_import_of_a_model_scikit_learn_serves_says_why(tmp_path):
    frame = _frame()
    frame["revenue"] = 795_000 + 1000 * frame["price"]  # float32 cannot hold it to 1e-5
    model = make_pipeline(
        ColumnTransformer(
            [("oh", OneHotEncoder(), ["store_id", "promo"])], remainder="passthrough"
        ),
        Ridge(),
    ).fit(frame.drop(columns="revenue"), frame["revenue"])
    r = _import(tmp_path, model, frame, "revenue")
    assert r.exit_code == 0, r.output
    assert "scikit-learn serves (ONNX Runtime computes in float32: worst row " in r.output
    assert "relative; the gate allows 1e-05 absolute)" in r.output
    assert "unseen categories" not in r.output
    assert (
        "checked: the server's predictions on 120 data rows equal the model's own "
        "(values within 1e-6 relative)"
    ) in r.output.splitlines()


def test_save_model_gives_a_notebook_the_notes_ml_api_import_prints(tmp_path):
    import warnings

    import ml_api

    frame = _frame()
    frame["sold"] = (frame["price"] < 3).astype(int).map({0: "few", 1: "many"})
    pre = ColumnTransformer(
        [("store", OneHotEncoder(handle_unknown="ignore"), ["store_id", "promo"])],
        remainder="passthrough",
    )
    model = make_pipeline(pre, LogisticRegression()).fit(frame.drop(columns="sold"), frame["sold"])
    printed = _import(tmp_path, model, frame, "sold")
    assert printed.exit_code == 0, printed.output
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")  # as a notebook or script runs: UserWarnings shown
        ml_api.save_model(model, frame, name="nb", target="sold", model_root=tmp_path / "models")
    notes = [str(w.message) for w in caught if issubclass(w.category, ml_api.ImportNote)]
    assert issubclass(ml_api.ImportNote, UserWarning)
    assert notes[0] == "3 features (names from the model's feature_names_in_)"
    assert any(
        n.startswith("store_id: the model's encoder ignores unseen categories") for n in notes
    )
    assert "served by ONNX Runtime (ML_API_RUNTIME=auto)" in notes[-1]
    # the same lines the command printed, after its "imported ...:" head
    lines = printed.stdout.splitlines()
    assert lines[0].endswith(f": {notes[0]}")
    assert lines[1 : 1 + len(notes) - 1] == notes[1:]
    # silenced like any warning category
    with warnings.catch_warnings(record=True) as quiet:
        warnings.simplefilter("default")
        warnings.simplefilter("ignore", ml_api.ImportNote)
        ml_api.save_model(model, frame, name="nb", target="sold", model_root=tmp_path / "models")
    assert not [w for w in quiet if issubclass(w.category, ml_api.ImportNote)]
