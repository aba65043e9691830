"""A canary of a model version, run as docs/kubernetes.md ("Canary") says, serves that version.

The overlay first said "a model version (with components/model-volume)": followed literally, the
overlay's ``-canary`` name suffix renamed the component's claim, so the canary pods mounted a new,
empty ``ml-api-models-canary`` (they never start: no model), and ``kubectl delete -k`` of the
canary deleted a claim. And a candidate copied onto production's claim was production's newest
version: without a ``production`` alias every production pod swapped to it. Here the documented
steps run on a copy of ``deploy/``, both overlays are rendered, and their settings are served by
real ``ml-api serve`` processes over loopback on one model root laid out as the claim.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import requests
import yaml

from ml_api import preprocess
from ml_api.core.model.versions import resolve_version_dir
from ml_api.train import TrainingOptions, train
from tests.conftest import VALID_ROW
from tests.live.server import LiveServer

from . import canary
from .kit import KUBERNETES_VERSION, find
from .test_checkov import checkov

CANDIDATE = 2
KEY = "canary-test-key"


@pytest.fixture
def documented(tmp_path: Path) -> canary.Rendered:
    return canary.render_both(tmp_path / "deploy", canary.follow(tmp_path / "deploy", CANDIDATE))


def test_the_page_and_the_overlay_agree_on_the_steps() -> None:
    section = canary.doc_section()
    overlay = (canary.DEPLOY / "k8s" / "overlays" / "canary" / "kustomization.yaml").read_text()
    assert "uncomment the three lines marked\n   `model version`" in section
    assert len(canary.marked_lines(overlay)) == 3
    for step in ("deploy/k8s/jobs/promote", "deploy/k8s/release/kustomization.yaml"):
        assert step in section
    assert "tests/deploy/test_canary.py" in section


def test_the_canary_mounts_production_claim_and_pins_the_candidate(documented) -> None:
    production, candidate = documented.production, documented.canary
    # It holds no claim of its own, so `kubectl delete -k` of the canary deletes none.
    assert not [d for d in candidate if d["kind"] == "PersistentVolumeClaim"]
    claim, mount = canary.claim_mount(candidate)
    production_claim, production_mount = canary.claim_mount(production)
    find(production, "PersistentVolumeClaim", production_claim)  # production creates it
    assert claim == production_claim
    job_volumes = find(documented.promote, "Job")["spec"]["template"]["spec"]["volumes"]
    assert claim in {
        v["persistentVolumeClaim"]["claimName"] for v in job_volumes if "persistentVolumeClaim" in v
    }
    assert mount["readOnly"] is True and mount["mountPath"] == production_mount["mountPath"]
    settings = canary.config(candidate)
    assert settings["ML_API_MODEL_ROOT"] == mount["mountPath"]
    assert settings["ML_API_MODEL_VERSION"] == str(CANDIDATE)
    assert "ML_API_MODEL_VERSION" not in canary.config(production)  # it follows the alias
    # Only the model differs: the same image and digest as production's pin.
    image = [c["image"] for c in canary.pod(candidate)["containers"]]
    assert image == [c["image"] for c in canary.pod(production)["containers"]]
    # Production's Service never selects the canary's pods, and the other way round.
    labels = find(candidate, "Deployment")["spec"]["template"]["metadata"]["labels"]
    selector = find(production, "Service")["spec"]["selector"]
    assert not selector.items() <= labels.items()
    assert find(candidate, "Service")["spec"]["selector"].items() <= labels.items()


def test_the_documented_canary_validates_and_passes_checkov(documented, tmp_path) -> None:
    for doc in documented.canary:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    manifest = tmp_path / "canary-model-version.yaml"
    manifest.write_text(yaml.safe_dump_all(documented.canary))
    report = checkov("--framework", "kubernetes", "--file", str(manifest))
    assert not report["results"]["failed_checks"], report["results"]["failed_checks"]
    assert report["summary"]["passed"] > 50


def test_the_first_wording_would_have_mounted_an_empty_claim(tmp_path: Path) -> None:
    """components/model-volume in the canary: the name suffix renames its claim (the check above
    catches that), and the overlay would own a claim that its deletion removes."""
    overlay = canary.follow(tmp_path / "deploy", CANDIDATE, component="model-volume")
    rendered = canary.render_both(tmp_path / "deploy", overlay)
    claim, _ = canary.claim_mount(rendered.canary)
    assert claim != canary.claim_mount(rendered.production)[0]
    assert find(rendered.canary, "PersistentVolumeClaim")["metadata"]["name"] == claim


@pytest.mark.live
def test_both_sides_serve_their_version_from_one_claim(documented, model_root, tmp_path) -> None:
    """The claim as the steps leave it (version 1 promoted, then the candidate copied) served with
    each overlay's rendered settings: production answers 1, the canary the candidate."""
    claim = tmp_path / "claim"
    shutil.copytree(model_root, claim)  # version 1, serving in production
    # Step 1: the promote Job's own command, with the version serving now.
    command = canary.promote_command(documented.promote, 1, claim)
    assert command[:2] == ["ml-api", "promote"]
    exe = [sys.executable, "-m", "ml_api.cli", *command[1:]]
    done = subprocess.run(exe, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    # Step 2: the candidate copied onto the claim (trained into it: the same layout).
    options = TrainingOptions(preprocess.PENGUINS_CSV, "species", drop=preprocess.PENGUINS_DROP)
    train(options, model_root=claim, name="penguins")
    assert resolve_version_dir(claim, "penguins").name == "1"
    unpinned = tmp_path / "unpinned"
    shutil.copytree(claim, unpinned)
    (unpinned / "penguins" / "aliases.json").unlink()
    assert resolve_version_dir(unpinned, "penguins").name == str(CANDIDATE)  # why step 1
    keys = tmp_path / "api-keys"
    keys.write_text(KEY + "\n")
    served, auth = {}, {"X-API-Key": KEY}
    for side, docs in (("production", documented.production), ("canary", documented.canary)):
        data = canary.config(docs)
        env = canary.serving_env(data, keys)
        with LiveServer(claim, data["ML_API_FRAMEWORK"], workers=1, env=env) as server:
            answer = requests.post(
                server.url + "/predict", json={"features": VALID_ROW},
                headers=auth, timeout=30,
            )  # fmt: skip
            assert answer.status_code == 200, answer.text
            card = requests.get(server.url + "/metadata", headers=auth, timeout=30).json()
            served[side] = (answer.json()["model"]["version"], card["model"]["version"])
    assert served == {"production": ("1", "1"), "canary": (str(CANDIDATE), str(CANDIDATE))}
