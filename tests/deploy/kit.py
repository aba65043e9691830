"""Rendering the deployment kit with kustomize, and finding the tools that check it."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
# `make tools` installs checkov and the CRD models here, apart from the project's pins.
TOOLS_VENV = ROOT / ".venv-tools"
TOOLS_PYTHON = TOOLS_VENV / "bin" / "python"

# The Kubernetes version every object is validated against (kubernetes-validate's schemas).
# kubectl's client here is 1.32; every API the kit uses is GA in 1.25+.
KUBERNETES_VERSION = "1.32"


@dataclass(frozen=True)
class Variant:
    """One thing a user can apply: an overlay, optionally with components, or a directory."""

    name: str
    resource: Path
    components: tuple[Path, ...] = ()


COMPONENTS = K8S / "components"

VARIANTS = (
    Variant("minikube", K8S / "overlays" / "minikube"),
    Variant("production", K8S / "overlays" / "production"),
    Variant("minikube+django", K8S / "overlays" / "minikube", (COMPONENTS / "django",)),
    Variant("production+django", K8S / "overlays" / "production", (COMPONENTS / "django",)),
    Variant(
        "production+django+spot",
        K8S / "overlays" / "production",
        (COMPONENTS / "django", COMPONENTS / "spot-nodes"),
    ),
    Variant(
        "production+monitoring+keda+model-volume",
        K8S / "overlays" / "production",
        (COMPONENTS / "monitoring", COMPONENTS / "keda", COMPONENTS / "model-volume"),
    ),
    Variant(
        "production+scoring-job", K8S / "overlays" / "production", (COMPONENTS / "scoring-job",)
    ),
    Variant("canary", K8S / "overlays" / "canary"),
    Variant("bootstrap", K8S / "bootstrap"),
    Variant("promote-job", K8S / "jobs" / "promote"),
    Variant("monitoring", DEPLOY / "monitoring"),
    Variant("logging", DEPLOY / "logging"),
    Variant("logging-monitoring", DEPLOY / "logging" / "monitoring"),
)
APP_VARIANTS = tuple(
    v
    for v in VARIANTS
    if v.name
    not in ("monitoring", "logging", "logging-monitoring", "bootstrap", "canary", "promote-job")
)


def tool(name: str, *fallbacks: Path) -> str | None:
    """Return the path of an executable from PATH or the given fallbacks, else None."""
    found = shutil.which(name)
    if found:
        return found
    for path in fallbacks:
        if path.is_file() and os.access(path, os.X_OK):
            return str(path)
    return None


def require(name: str, *fallbacks: Path, hint: str) -> str:
    """Like :func:`tool`, but skip the calling test with the install hint when it is absent."""
    found = tool(name, *fallbacks)
    if found is None:
        pytest.skip(f"{name} is not installed ({hint})")
    return found


def kubectl() -> str:
    return require("kubectl", hint="kustomize is built into kubectl; CI images have it")


def render(variant: Variant) -> str:
    """Run ``kubectl kustomize`` on the variant and return the YAML stream."""
    exe = kubectl()
    if not variant.components:
        return _kustomize(exe, variant.resource)
    with tempfile.TemporaryDirectory(prefix="ml-api-kustomize-") as tmp:
        # kustomize refuses absolute paths in a kustomization; relative ones may leave the root.
        spec = {
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "resources": [os.path.relpath(variant.resource, tmp)],
            "components": [os.path.relpath(c, tmp) for c in variant.components],
        }
        Path(tmp, "kustomization.yaml").write_text(yaml.safe_dump(spec))
        return _kustomize(exe, Path(tmp))


def _kustomize(exe: str, path: Path) -> str:
    proc = subprocess.run(
        [exe, "kustomize", str(path)], capture_output=True, text=True, timeout=120, check=False
    )
    if proc.returncode != 0:
        raise AssertionError(f"kubectl kustomize {path} failed:\n{proc.stderr}")
    return proc.stdout


def documents(rendered: str) -> list[dict[str, Any]]:
    """Parse a rendered YAML stream into its non-empty documents."""
    return [doc for doc in yaml.safe_load_all(rendered) if doc]


def find(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    """Return the one object of ``kind`` (and ``name``), failing the test if it is not unique."""
    hits = [
        d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)
    ]
    assert len(hits) == 1, f"expected one {kind} {name or ''}, found {len(hits)}"
    return hits[0]
