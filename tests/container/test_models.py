"""A user's own model mounted read-only at /models, and what happens when the mounted model is
missing or wrong: the container exits non-zero with one clear log line, never serves."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest
import requests

from ml_api.core.model.versions import set_alias
from ml_api.train import TrainingOptions, train
from tests.container.engine import SESSION_ID, Container, free_port

pytestmark = pytest.mark.container


def readable_by_anyone(root: Path) -> Path:
    """Open a tmp tree to the container's UID 10001 (pytest makes tmp directories 0700)."""
    for path in [root, *root.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return root


@pytest.fixture(scope="module")
def own_model_root(tmp_path_factory, diabetes_csv) -> Path:
    """A model root with a regression model named ``diabetes`` (10 numeric features)."""
    root = tmp_path_factory.mktemp("own-models")
    train(
        TrainingOptions(diabetes_csv, "target", estimator="random_forest"),
        model_root=root,
        name="diabetes",
    )
    return readable_by_anyone(root)


def test_a_mounted_model_is_served_instead_of_the_default(image, own_model_root, diabetes_csv):
    env = {"ML_API_MODEL_ROOT": "/models", "ML_API_MODEL_NAME": "diabetes"}
    volume = f"{own_model_root}:/models:ro"
    name = f"ml_api-test-{SESSION_ID}-own-model"
    with Container(image.ref, name, free_port(), env, volumes=[volume]) as container:
        container.wait_ready()
        card = requests.get(container.url + "/metadata", timeout=10).json()
        assert card["model"] == {"name": "diabetes", "version": "1"}
        assert card["task"] == "regression"
        row = pd.read_csv(diabetes_csv).drop(columns="target").iloc[0].to_dict()
        r = requests.post(container.url + "/predict", json={"features": row}, timeout=10)
        assert r.status_code == 200, r.text
        assert isinstance(r.json()["prediction"][0], float)
        assert "(/models/diabetes/1)" in container.logs()


def test_the_image_serves_the_production_alias(image, tmp_path_factory, diabetes_csv):
    """Two versions, production -> 1: the image serves 1 by default and 2 when pinned."""
    root = tmp_path_factory.mktemp("aliased-models")
    for estimator in ("random_forest", "linear"):
        train(
            TrainingOptions(diabetes_csv, "target", estimator=estimator),
            model_root=root,
            name="diabetes",
        )
    set_alias(root, "diabetes", "production", 1)
    readable_by_anyone(root)
    volume = f"{root}:/models:ro"
    for pinned, served in ((None, "1"), ("2", "2"), ("production", "1")):
        env = {"ML_API_MODEL_ROOT": "/models", "ML_API_MODEL_NAME": "diabetes"}
        if pinned:
            env["ML_API_MODEL_VERSION"] = pinned
        name = f"ml_api-test-{SESSION_ID}-alias-{pinned or 'default'}"
        with Container(image.ref, name, free_port(), env, volumes=[volume]) as container:
            container.wait_ready()
            card = requests.get(container.url + "/metadata", timeout=10).json()
            assert card["model"] == {"name": "diabetes", "version": served}, pinned


def tampered(root: Path) -> None:
    with open(root / "penguins" / "1" / "model.joblib", "ab") as fh:
        fh.write(b"\0")


def tampered_onnx(root: Path) -> None:
    with open(root / "penguins" / "1" / "model.onnx", "ab") as fh:
        fh.write(b"\0")


def unreadable_card(root: Path) -> None:
    (root / "penguins" / "1" / "metadata.json").write_text("{not json")


def emptied(root: Path) -> None:
    shutil.rmtree(root / "penguins")


BROKEN = {
    # case: (change to a valid model root, extra env, text the one log line must contain)
    "empty-mount": (emptied, {}, "no model 'penguins' in /models/penguins"),
    "tampered-file": (tampered, {}, "/models/penguins/1/model.joblib does not match its card"),
    "tampered-onnx": (tampered_onnx, {}, "/models/penguins/1/model.onnx does not match its card"),
    "unreadable-card": (unreadable_card, {}, "unreadable model card /models/penguins/1/metadata"),
    "missing-version": (None, {"ML_API_MODEL_VERSION": "7"}, "no version '7' of model 'penguins'"),
    "nothing-mounted": ("no-mount", {}, "no model 'penguins' in /models/penguins"),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_a_missing_or_wrong_model_stops_the_container_with_one_line(
    image, model_root, tmp_path, case
):
    change, extra_env, expected = BROKEN[case]
    root = tmp_path / "models"
    shutil.copytree(model_root, root)
    if callable(change):
        change(root)
    volumes = [] if change == "no-mount" else [f"{readable_by_anyone(root)}:/models:ro"]
    env = {"ML_API_MODEL_ROOT": "/models", **extra_env}
    name = f"ml_api-test-{SESSION_ID}-broken-{case}"
    with Container(image.ref, name, free_port(), env, volumes=volumes) as container:
        state = container.wait_exit(timeout=120)
        lines = container.log_lines()
    assert state["ExitCode"] == 1, lines
    assert len(lines) == 1, lines
    record = json.loads(lines[0])  # every log line is JSON, this one too
    assert record["level"] in ("ERROR", "CRITICAL")
    assert expected in record["message"]
    assert "Traceback" not in lines[0]


def test_model_fixture_is_a_real_artifact(model_root):
    # The broken cases above start from this valid root: without it they would prove nothing.
    assert sorted(os.listdir(model_root / "penguins" / "1")) == [
        "charts",  # the model card's SVG charts, hashed in the card
        "metadata.json",
        "model.joblib",
        "model.onnx",  # its ONNX form passed the gate
        "profile.json",  # the reference profile drift is measured against, hashed in the card
    ]
