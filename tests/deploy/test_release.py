"""The release job's pin lands in the rendered Deployment (issue 16, items 2 and 10).

``deploy/k8s/release/pin-image.sh`` is what the release workflow runs with the digest ``make push``
reported; here it gets a fake digest, the result is rendered with ``kubectl kustomize`` as the
workflow does, and the Deployment must carry ``<image>@sha256:...`` with ``IfNotPresent``. The
patch file it writes is what the workflow sends with ``kubectl patch`` under the deployer Role.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from .kit import COMPONENTS, K8S, ROOT, Variant, documents, find, render

PIN = ROOT / "deploy" / "k8s" / "release" / "pin-image.sh"
DIGEST = "sha256:" + "0123456789abcdef" * 4
IMAGE = "docker.io/alice/ml_api"


def pin(tmp_path: Path, overlay: Path, digest: str = DIGEST) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(PIN), str(overlay), IMAGE, digest, str(tmp_path / "release")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("components", [(), (COMPONENTS / "django", COMPONENTS / "spot-nodes")])
def test_release_kustomization_pins_the_digest(tmp_path: Path, components) -> None:
    overlay = K8S / "overlays" / "production"
    if components:  # the overlay as a user extends it: production with components
        user = tmp_path / "overlay"
        user.mkdir()
        rendered_overlay = render(Variant("x", overlay, components))
        (user / "all.yaml").write_text(rendered_overlay)
        (user / "kustomization.yaml").write_text(yaml.safe_dump({"resources": ["all.yaml"]}))
        overlay = user
    proc = pin(tmp_path, overlay)
    assert proc.returncode == 0, proc.stderr
    docs = documents(render(Variant("release", tmp_path / "release")))
    deployment = find(docs, "Deployment", "ml-api-deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == f"{IMAGE}@{DIGEST}"
    assert "@sha256:" in container["image"]
    assert container["imagePullPolicy"] == "IfNotPresent"
    # Everything else is the overlay's: the pin changes only the image and its pull policy.
    before = find(documents(render(Variant("o", overlay))), "Deployment", "ml-api-deployment")
    (original,) = before["spec"]["template"]["spec"]["containers"]
    assert {k: v for k, v in container.items() if k not in ("image", "imagePullPolicy")} == {
        k: v for k, v in original.items() if k not in ("image", "imagePullPolicy")
    }
    patch = yaml.safe_load((tmp_path / "release" / "pin-image.yaml").read_text())
    assert patch["metadata"]["name"] == deployment["metadata"]["name"]
    assert patch["spec"]["template"]["spec"]["containers"] == [
        {"name": "ml-api", "image": f"{IMAGE}@{DIGEST}", "imagePullPolicy": "IfNotPresent"}
    ]


@pytest.mark.parametrize("digest", ["", "sha256:abc", "latest", "sha256:" + "Z" * 64])
def test_pin_refuses_what_is_not_a_digest(tmp_path: Path, digest: str) -> None:
    proc = pin(tmp_path, K8S / "overlays" / "production", digest)
    assert proc.returncode == 2
    assert "not an image digest" in proc.stderr
    assert not (tmp_path / "release").exists()


def test_the_deployer_role_allows_what_the_release_sends() -> None:
    role = find(documents(render(Variant("bootstrap", K8S / "bootstrap"))), "Role")
    deployments = next(r for r in role["rules"] if r["resources"] == ["deployments"])
    assert deployments["resourceNames"] == ["ml-api-deployment"]
    assert {"get", "patch", "watch", "list"} <= set(deployments["verbs"])  # patch + rollout status
