"""The models whose cards tests/core/test_card_golden.py compares with committed golden JSON.

Each case writes one version into ``model_root`` the way users do (``train`` as ``ml-api train``
calls it, ``save_model`` as a notebook does) and returns its directory. :func:`normalized` turns
the written ``metadata.json`` into text with the values that change with the time, the build or
the installed libraries replaced by a placeholder (the keys stay, so a lost field still shows).

Regenerate the golden files only for an intended change of the card:
``python -m tests.core.card_cases tests/testdata/cards`` (then review the diff).
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
from sklearn.compose import make_column_transformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.svm import LinearSVC

from ml_api import preprocess
from ml_api.importing import save_model
from ml_api.train import TrainingOptions, train

FEATURES = ["island", "bill_length_mm", "bill_depth_mm", "flipper_length_mm", "sex"]

VARYING = {"created_at", "sha256", "bytes", "max_abs_diff", "worst_row"}
"""Keys whose values change with the time, the build or the libraries, wherever they are: the
creation time, file hashes and sizes, the ONNX gate's largest difference and its row."""

VARYING_BLOCKS = {"versions"}
"""Blocks whose every value is a library version (the card's and the ONNX section's)."""

PLACEHOLDER = "<varies>"


def trained_default(model_root: Path) -> Path:
    """``ml-api train`` without options: the bundled penguins, species, the default drop."""
    return train(
        TrainingOptions(
            preprocess.PENGUINS_CSV, preprocess.PENGUINS_TARGET, drop=preprocess.PENGUINS_DROP
        ),
        model_root=model_root,
        name="penguins",
    ).path


def trained_forest_skops(model_root: Path) -> Path:
    """A regression forest in the skops format (trusted tree types), a nullable, NA cells named."""
    return train(
        TrainingOptions(
            preprocess.PENGUINS_CSV,
            "body_mass_g",
            task="regression",
            estimator="random_forest",
            drop=preprocess.PENGUINS_DROP,
            nullable=("bill_length_mm",),
            na_values=("", "NA"),
            fmt="skops",
        ),
        model_root=model_root,
        name="mass",
    ).path


def _penguins() -> pd.DataFrame:
    return pd.read_csv(preprocess.PENGUINS_CSV).dropna()[[*FEATURES, "species"]]


def imported_pipeline(model_root: Path) -> Path:
    """A notebook's classifier pipeline (lenient one-hot encoder) saved with its data."""
    frame = _penguins()
    columns = make_column_transformer(
        (OneHotEncoder(handle_unknown="ignore"), ["island", "sex"]), remainder=StandardScaler()
    )
    model = make_pipeline(columns, LogisticRegression(max_iter=1000))
    model.fit(frame[FEATURES], frame["species"])
    return save_model(model, frame, name="imported", target="species", model_root=model_root).path


def imported_without_proba(model_root: Path) -> Path:
    """A classifier without ``predict_proba`` (labels only), imported without a target."""
    frame = _penguins()
    numeric = FEATURES[1:4]
    model = make_pipeline(StandardScaler(), LinearSVC(random_state=0))
    model.fit(frame[numeric], frame["species"])
    return save_model(model, frame[numeric], name="svc", model_root=model_root).path


CASES: dict[str, Callable[[Path], Path]] = {
    "trained_default": trained_default,
    "trained_forest_skops": trained_forest_skops,
    "imported_pipeline": imported_pipeline,
    "imported_without_proba": imported_without_proba,
}


def _normalize(value: Any, key: str = "") -> Any:
    if key in VARYING:
        return PLACEHOLDER
    if key in VARYING_BLOCKS and isinstance(value, dict):
        return dict.fromkeys(value, PLACEHOLDER)
    if isinstance(value, dict):
        return {k: _normalize(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalize(v) for v in value]
    return value


def normalized(version_dir: Path) -> str:
    """The version's ``metadata.json`` as text, keys in the file's order, varying values masked."""
    card = _normalize(json.loads((version_dir / "metadata.json").read_text()))
    if "path" in card.get("source", {}):
        card["source"]["path"] = PLACEHOLDER  # the import's temporary folder
    return json.dumps(card, indent=2) + "\n"


if __name__ == "__main__":  # python -m tests.core.card_cases tests/testdata/cards
    out = Path(sys.argv[1])
    for case, make in CASES.items():
        with tempfile.TemporaryDirectory() as root:
            (out / f"{case}.json").write_text(normalized(make(Path(root))))
