"""Model roots with two models (the penguins classifier and a diabetes regressor), fitted once per
session and copied per test that changes them (promotes, trains, tampers)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ml_api import preprocess
from ml_api.train import TrainingOptions, train

PENGUIN = ["Biscoe", 50.0, 15.0, 220.0, 5500.0, "male"]
DIABETES = [0.03, 0.05, 0.06, 0.02, -0.04, -0.03, -0.04, 0.0, 0.02, -0.02]


@pytest.fixture(scope="session")
def two_models(tmp_path_factory: pytest.TempPathFactory, diabetes_csv: Path) -> Path:
    """``penguins`` version 1 (a classifier) and ``diabetes`` versions 1 (linear) and 2 (random
    forest, another answer) with ``production`` -> 1: read-only, copy it to change it."""
    root = tmp_path_factory.mktemp("two-models")
    train(
        TrainingOptions(preprocess.PENGUINS_CSV, "species", drop=preprocess.PENGUINS_DROP),
        model_root=root,
        name="penguins",
    )
    train(TrainingOptions(diabetes_csv, "target"), model_root=root, name="diabetes")
    train(
        TrainingOptions(diabetes_csv, "target", estimator="random_forest"),
        model_root=root,
        name="diabetes",
    )
    from ml_api.core.model.versions import set_alias

    set_alias(root, "diabetes", "production", 1)
    return root


@pytest.fixture
def own_models(two_models: Path, tmp_path: Path) -> Path:
    """A private copy of :func:`two_models` this test may change."""
    root = tmp_path / "models"
    shutil.copytree(two_models, root)
    return root
