"""docs/kubernetes.md's canary of a model version, followed step by step on a copy of ``deploy/``.

The steps, as the page words them: pin production's version with the promote Job, copy the
candidate onto the claim, uncomment the three lines of the canary overlay marked ``model version``
and set ``ML_API_MODEL_VERSION``, give ``images:`` production's pin. :func:`follow` does the
overlay edits on a copy; :func:`promote_command` is the promote Job's own command for a local model
root; :func:`serving_env` turns a rendered ConfigMap into the environment of a local server.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .kit import DEPLOY, ROOT, Variant, documents, find, render

DOC = ROOT / "docs" / "kubernetes.md"
MARK = "# model version"
KEYS_PATH = "/var/run/secrets/ml-api/api-keys"


@dataclass(frozen=True)
class Rendered:
    """The two things applied side by side: production with the model volume, and the canary."""

    production: list[dict[str, Any]]
    canary: list[dict[str, Any]]
    promote: list[dict[str, Any]]


def doc_section() -> str:
    """The "## Canary" section of docs/kubernetes.md."""
    text = DOC.read_text()
    start = text.index("\n## Canary\n")
    return text[start : text.index("\n## ", start + 1)]


def marked_lines(text: str) -> list[int]:
    """Indexes of the commented lines that carry the ``model version`` mark."""
    return [
        i
        for i, line in enumerate(text.splitlines())
        if line.lstrip().startswith("#") and MARK in line[line.index("#") + 1 :]
    ]


def follow(copy: Path, version: int, *, component: str = "model-volume-mount") -> Path:
    """Apply the documented overlay edits to a copy of ``deploy/``; return the canary overlay.

    Args:
        copy: Where to copy ``deploy/`` (must not exist).
        version: The candidate version number.
        component: The component the uncommented ``components:`` entry names; another one
            (``model-volume``) reproduces the overlay as it was first documented.

    Returns:
        The canary overlay directory inside the copy.
    """
    shutil.copytree(DEPLOY, copy)
    overlay = copy / "k8s" / "overlays" / "canary"
    path = overlay / "kustomization.yaml"
    lines = path.read_text().splitlines()
    for i in marked_lines(path.read_text()):
        lines[i] = re.sub(r"^(\s*)# ", r"\1", lines[i], count=1)
    text = "\n".join(lines) + "\n"
    text = re.sub(r"ML_API_MODEL_VERSION=\d+", f"ML_API_MODEL_VERSION={version}", text)
    text = text.replace("components/model-volume-mount", f"components/{component}")
    spec = yaml.safe_load(text)
    release = yaml.safe_load((copy / "k8s" / "release" / "kustomization.yaml").read_text())
    spec["images"] = release["images"]  # production's pin: only the model differs
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return overlay


def render_both(copy: Path, overlay: Path) -> Rendered:
    """Render the canary overlay, production with ``components/model-volume``, and the promote
    Job, all from the copy."""
    k8s = copy / "k8s"
    production = Variant(
        "production+model-volume",
        k8s / "overlays" / "production",
        (k8s / "components" / "model-volume",),
    )
    return Rendered(
        production=documents(render(production)),
        canary=documents(render(Variant("canary", overlay))),
        promote=documents(render(Variant("promote", k8s / "jobs" / "promote"))),
    )


def config(docs: list[dict[str, Any]]) -> dict[str, str]:
    """The data of the rendered ``ml-api-config`` ConfigMap (name suffix and hash included)."""
    maps = [
        d
        for d in docs
        if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("ml-api-config")
    ]
    assert len(maps) == 1, [m["metadata"]["name"] for m in maps]
    return dict(maps[0]["data"])


def pod(docs: list[dict[str, Any]]) -> dict[str, Any]:
    """The pod spec of the one Deployment."""
    return find(docs, "Deployment")["spec"]["template"]["spec"]


def claim_mount(docs: list[dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    """The claim name the ml-api container mounts, and that mount."""
    spec = pod(docs)
    claims = {
        v["name"]: v["persistentVolumeClaim"]["claimName"]
        for v in spec["volumes"]
        if "persistentVolumeClaim" in v
    }
    container = next(c for c in spec["containers"] if c["name"] == "ml-api")
    mounts = [m for m in container["volumeMounts"] if m["name"] in claims]
    assert len(mounts) == 1, mounts
    return claims[mounts[0]["name"]], mounts[0]


def promote_command(promote: list[dict[str, Any]], version: int, model_root: Path) -> list[str]:
    """The promote Job's command with its ConfigMap's MODEL, ``VERSION=version``, and the
    claim's mount path replaced by ``model_root``."""
    job = find(promote, "Job", "ml-api-promote")
    container = job["spec"]["template"]["spec"]["containers"][0]
    values = dict(find(promote, "ConfigMap")["data"], VERSION=str(version))
    mount = next(m for m in container["volumeMounts"] if m["name"] == "models")["mountPath"]
    command = [
        re.sub(r"\$\((\w+)\)", lambda m: values[m.group(1)], a) for a in container["command"]
    ]
    return [str(model_root) if a == mount else a for a in command]


def serving_env(data: dict[str, str], keys_file: Path) -> dict[str, str]:
    """A rendered ConfigMap as a local server's environment: the API keys file at ``keys_file``
    (the Secret's mount in the pod), the port left to the caller."""
    env = {k: v for k, v in data.items() if k != "PORT"}
    assert env["ML_API_API_KEYS_FILE"] == KEYS_PATH
    env["ML_API_API_KEYS_FILE"] = str(keys_file)
    return env
