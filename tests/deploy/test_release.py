"""The release pin lives in git, so what an administrator applies is what runs.

``deploy/k8s/release/pin-image.sh IMAGE TAG DIGEST`` rewrites the release component that the
production overlay includes; the release workflow commits it (a pull request) and its deploy job
patches the cluster only with a digest that main carries. These tests follow the documented
procedure on a copy of ``deploy/``: pin with a fake digest, then render the production overlay as
``kubectl apply -k deploy/k8s/overlays/production`` would apply it, and find the digest there, in
the patch the workflow sends, and in the version label. The workflow's own gate step is run too.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from ruamel.yaml import YAML

from .kit import COMPONENTS, DEPLOY, K8S, ROOT, Variant, documents, find, kubectl, render

DIGEST = "sha256:" + "0123456789abcdef" * 4
IMAGE = "docker.io/alice/ml_api"
TAG = "v1.2.3"


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of the repository's deploy/ (the pin script rewrites files beside itself)."""
    shutil.copytree(DEPLOY, tmp_path / "deploy")
    return tmp_path


def pin(tree: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(tree / "deploy" / "k8s" / "release" / "pin-image.sh"), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    (one,) = find(docs, "Deployment", "ml-api-deployment")["spec"]["template"]["spec"]["containers"]
    return one


def production(tree: Path, *components: Path) -> list[dict[str, Any]]:
    return documents(render(Variant("p", tree / "deploy/k8s/overlays/production", components)))


@pytest.mark.parametrize("components", [(), ("django", "spot-nodes"), ("monitoring", "keda")])
def test_the_applied_overlay_runs_the_released_digest(tree: Path, components) -> None:
    before = production(tree, *(tree / "deploy/k8s/components" / c for c in components))
    proc = pin(tree, IMAGE, TAG, DIGEST)
    assert proc.returncode == 0, proc.stderr
    docs = production(tree, *(tree / "deploy/k8s/components" / c for c in components))
    deployment = find(docs, "Deployment", "ml-api-deployment")
    pod = container(docs)
    assert pod["image"] == f"{IMAGE}@{DIGEST}"
    assert pod["imagePullPolicy"] == "IfNotPresent"
    assert deployment["metadata"]["labels"]["app.kubernetes.io/version"] == TAG
    assert deployment["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/version"] == TAG
    # The pod selector is untouched (a changed selector would orphan the running ReplicaSets).
    assert deployment["spec"]["selector"] == find(before, "Deployment")["spec"]["selector"]
    # Everything else is the overlay's: the pin changes only the image and its pull policy.
    other = {k: v for k, v in container(before).items() if k not in ("image", "imagePullPolicy")}
    assert {k: v for k, v in pod.items() if k not in ("image", "imagePullPolicy")} == other
    # The patch the deploy job sends is the same pin: patching the live Deployment and a later
    # `apply -k` of main agree, so the apply cannot roll the release back.
    patch = yaml.safe_load((tree / "deploy/k8s/release/pin-image.yaml").read_text())
    assert patch["metadata"]["name"] == deployment["metadata"]["name"]
    assert patch["spec"]["template"]["spec"]["containers"] == [
        {"name": "ml-api", "image": pod["image"], "imagePullPolicy": "IfNotPresent"}
    ]
    assert patch["spec"]["template"]["metadata"]["labels"] == {"app.kubernetes.io/version": TAG}


def test_a_later_release_replaces_the_pin_whole(tree: Path) -> None:
    assert pin(tree, IMAGE, TAG, DIGEST).returncode == 0
    newer = "sha256:" + "f" * 64
    assert pin(tree, IMAGE, "v1.2.4", newer).returncode == 0
    rendered = render(Variant("p", tree / "deploy/k8s/overlays/production"))
    assert f"{IMAGE}@{newer}" in rendered and DIGEST not in rendered
    assert "v1.2.3" not in rendered
    assert not list((tree / "deploy/k8s/release").glob(".pin.*"))  # no temporary left behind


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((IMAGE, TAG, "sha256:abc"), "not an image digest"),
        ((IMAGE, TAG, "sha256:" + "Z" * 64), "not an image digest"),
        ((IMAGE, "latest", DIGEST), "not a release tag"),
        ((IMAGE, "v1 2", DIGEST), "not a release tag"),
        ((f"{IMAGE}@{DIGEST}", TAG, DIGEST), "not an image name"),
        ((IMAGE,), "usage"),
    ],
)
def test_pin_refuses_what_is_not_a_release(tree: Path, args, message) -> None:
    before = {p.name: p.read_bytes() for p in (tree / "deploy/k8s/release").iterdir()}
    proc = pin(tree, *args)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert {p.name: p.read_bytes() for p in (tree / "deploy/k8s/release").iterdir()} == before


def test_a_tag_only_pin_keeps_pulling(tree: Path) -> None:
    assert pin(tree, IMAGE, TAG).returncode == 0
    pod = container(production(tree))
    assert (pod["image"], pod["imagePullPolicy"]) == (f"{IMAGE}:{TAG}", "Always")


def test_the_committed_pin_is_one_the_script_writes(tmp_path: Path) -> None:
    """A hand edit of one of the two files (image in one, not the other) fails here."""
    committed = ROOT / "deploy/k8s/release"
    spec = yaml.safe_load((committed / "kustomization.yaml").read_text())
    (image,) = spec["images"]
    shutil.copytree(DEPLOY, tmp_path / "deploy")
    args = [image["newName"], image["newTag"]] + ([image["digest"]] if "digest" in image else [])
    assert pin(tmp_path, *args).returncode == 0
    for name in ("kustomization.yaml", "pin-image.yaml"):
        assert (tmp_path / "deploy/k8s/release" / name).read_text() == (
            committed / name
        ).read_text(), name
    assert image["newTag"] != "latest"


def _gate_step() -> str:
    release = YAML(typ="safe").load((ROOT / ".github/workflows/release.yml").read_text())
    deploy = release["jobs"]["deploy"]["steps"]
    (step,) = [s for s in deploy if s.get("name", "").startswith("Refuse")]
    return step["run"]


def test_the_deploy_job_refuses_a_digest_main_does_not_carry(tree: Path) -> None:
    """The workflow's own gate, run as the job runs it (bash -e in a checkout of main)."""
    kubectl()
    gate = ["bash", "-e", "-c", _gate_step()]
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "DIGEST": DIGEST}
    not_yet = subprocess.run(gate, cwd=tree, env=env, capture_output=True, text=True, timeout=120)
    assert not_yet.returncode == 1
    assert "merge the release-pin pull request" in not_yet.stdout
    assert pin(tree, IMAGE, TAG, DIGEST).returncode == 0
    merged = subprocess.run(gate, cwd=tree, env=env, capture_output=True, text=True, timeout=120)
    assert merged.returncode == 0, merged.stdout + merged.stderr


def test_the_deployer_role_allows_what_the_release_sends() -> None:
    role = find(documents(render(Variant("bootstrap", K8S / "bootstrap"))), "Role")
    deployments = next(r for r in role["rules"] if r["resources"] == ["deployments"])
    assert deployments["resourceNames"] == ["ml-api-deployment"]
    assert {"get", "patch", "watch", "list"} <= set(deployments["verbs"])  # patch + rollout status


def test_components_still_render_over_the_release_pin() -> None:
    for component in ("django", "spot-nodes", "monitoring", "keda", "model-volume"):
        docs = documents(
            render(Variant("x", K8S / "overlays/production", (COMPONENTS / component,)))
        )
        assert container(docs)["image"].startswith("docker.io/")
