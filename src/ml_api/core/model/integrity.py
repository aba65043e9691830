"""Checking an artifact version's files against its card: the one error kind, and sha256.

Every file a card lists (the model file, a further served form, the card's charts) is verified
by its sha256 before it is used, and a mismatch, a missing file or a path outside the version
is refused with an :class:`ArtifactError` naming the absolute path.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ml_api.core.model.card import METADATA_FILE, ModelCard


class ArtifactError(RuntimeError):
    """An artifact is missing, incomplete, tampered with, or from an incompatible library version.

    The message is one line that names the absolute path concerned.
    """


def sha256_file(path: Path, chunk_bytes: int = 1 << 20) -> str:
    """Return the hex sha256 of a file, read in ``chunk_bytes`` (1 MiB) chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(chunk_bytes):
            h.update(chunk)
    return h.hexdigest()


def verify_model_file(card: ModelCard, path: Path) -> Path:
    """Check that the card's model file is present and matches its recorded sha256.

    Args:
        card: The version's card.
        path: Absolute path of the version directory.

    Returns:
        The model file's path.

    Raises:
        ArtifactError: The file is missing or its sha256 differs from the card's.
    """
    model_path = path / card.model_file.name
    expected_hash = card.model_file.sha256
    if not model_path.is_file():
        raise ArtifactError(f"model file missing: {model_path}")
    actual_hash = sha256_file(model_path)
    if actual_hash != expected_hash:
        raise ArtifactError(
            f"model file {model_path} does not match its card (sha256 {actual_hash[:12]}..., "
            f"expected {expected_hash[:12]}...): refusing to load a modified file"
        )
    return model_path


def read_form(metadata: Mapping[str, Any], form: str, path: Path) -> bytes:
    """Read and verify the file of the served form ``form`` the card lists.

    Args:
        metadata: The ``metadata.json`` content; ``metadata[form]["file"]`` names the file.
        form: The form's name (its card section).
        path: Absolute path of the version directory.

    Returns:
        The file's bytes.

    Raises:
        ArtifactError: The entry is unreadable, names no plain file of the version, the file is
            missing, or its sha256 differs from the card's.
    """
    label = form.upper()  # the messages name the file by its form, upper case
    info = metadata[form]["file"]
    try:
        name, expected = str(info["name"]), str(info["sha256"])
    except (KeyError, TypeError) as exc:
        raise ArtifactError(
            f"unreadable {form}.file entry in {path / METADATA_FILE}: {exc!r}"
        ) from None
    form_path = path / name
    if form_path.name != name or form_path.parent != path:
        raise ArtifactError(
            f"{label} file name {name!r} in {path / METADATA_FILE} is not a plain file name"
        )
    try:
        data = form_path.read_bytes()
    except OSError:
        raise ArtifactError(f"{label} file missing: {form_path}") from None
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise ArtifactError(
            f"{label} file {form_path} does not match its card (sha256 {actual[:12]}..., "
            f"expected {expected[:12]}...): refusing to load a modified file"
        )
    return data


def verify_files(card: ModelCard, path: Path) -> None:
    """Verify the card's further files (charts): present, inside the version, sha256 as recorded.

    Raises:
        ArtifactError: A file is missing, outside the version directory, or modified.
    """
    files = card.raw.get("files") or {}
    for rel, info in files.items():
        file = (path / rel).resolve()
        if path.resolve() not in file.parents or not file.is_file():
            raise ArtifactError(f"artifact file missing: {path / rel}")
        actual = sha256_file(file)
        if actual != info.get("sha256"):
            raise ArtifactError(
                f"artifact file {file} does not match its card (sha256 {actual[:12]}...): "
                "refusing to load a modified version"
            )
