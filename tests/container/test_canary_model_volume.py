"""The model-version canary of docs/kubernetes.md ("Canary") in the real image: the claim, as the
documented steps leave it, bind-mounted read-only where the rendered pods mount it, the API keys
file where the Secret is mounted, and each overlay's rendered ConfigMap as the environment.
Production's container answers with its promoted version, the canary's with the candidate."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from ml_api import preprocess
from ml_api.train import TrainingOptions, train
from tests.conftest import VALID_ROW
from tests.container.engine import SESSION_ID, Container, free_port
from tests.container.test_models import readable_by_anyone
from tests.deploy import canary

pytestmark = pytest.mark.container

CANDIDATE = 2
KEY = "canary-container-key"


def test_the_image_serves_each_overlay_its_version(image, model_root, tmp_path: Path) -> None:
    rendered = canary.render_both(
        tmp_path / "deploy", canary.follow(tmp_path / "deploy", CANDIDATE)
    )
    claim = tmp_path / "claim"
    shutil.copytree(model_root, claim)
    command = canary.promote_command(rendered.promote, 1, claim)
    exe = [sys.executable, "-m", "ml_api.cli", *command[1:]]
    done = subprocess.run(exe, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    options = TrainingOptions(preprocess.PENGUINS_CSV, "species", drop=preprocess.PENGUINS_DROP)
    train(options, model_root=claim, name="penguins")
    readable_by_anyone(claim)
    keys = tmp_path / "keys"
    keys.mkdir()
    (keys / "api-keys").write_text(KEY + "\n")
    readable_by_anyone(keys)
    served = {}
    for side, docs in (("production", rendered.production), ("canary", rendered.canary)):
        data = canary.config(docs)
        claim_name, mount = canary.claim_mount(docs)
        env = {k: v for k, v in data.items() if k != "PORT"}
        volumes = [
            f"{claim}:{mount['mountPath']}:ro",
            f"{keys / 'api-keys'}:{canary.KEYS_PATH}:ro",
        ]
        name = f"ml_api-test-{SESSION_ID}-canary-{side}"
        with Container(image.ref, name, free_port(), env, volumes=volumes) as container:
            container.wait_ready()
            answer = requests.post(
                container.url + "/predict", json={"features": VALID_ROW},
                headers={"X-API-Key": KEY}, timeout=30,
            )  # fmt: skip
            assert answer.status_code == 200, answer.text
            served[side] = (claim_name, answer.json()["model"]["version"])
    assert served == {
        "production": ("ml-api-models", "1"),
        "canary": ("ml-api-models", str(CANDIDATE)),
    }
