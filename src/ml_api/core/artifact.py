"""The versioned model artifact: ``<model_root>/<name>/<version>/`` with the model and its card.

A version directory holds the whole fitted :class:`sklearn.pipeline.Pipeline` (preprocessing
included) as ``model.joblib`` or ``model.skops``, and ``metadata.json``: the ordered feature schema,
target classes, held-out metrics, the training data's and the model file's sha256, the library
versions it was fitted with, and its creation time (the model card, :mod:`ml_api.core.card`).
Versions are positive integers; the newest is the highest.

Loading verifies the model file's sha256 against the metadata (a tampered or truncated file is
refused) and the scikit-learn major.minor version (pickled estimators are not portable across
them), and fails with one message naming the absolute path. joblib/pickle execute code while
loading, so only a file whose hash matches its card is opened; ``skops`` files are loaded with
only scikit-learn, numpy and scipy types trusted.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any, Literal

from ml_api.core.card import ModelCard
from ml_api.core.schema import FeatureSchema

METADATA_FILE = "metadata.json"
FORMATS = {"joblib": "model.joblib", "skops": "model.skops"}
SCHEMA_VERSION = 1
Format = Literal["joblib", "skops"]
_TRUSTED_SKOPS_PREFIXES = ("sklearn.", "numpy.", "scipy.", "builtins.")


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


def library_versions() -> dict[str, str]:
    """Return the versions of Python and of the libraries a fitted pipeline depends on."""
    out = {"python": platform.python_version()}
    for dist in ("scikit-learn", "numpy", "pandas", "scipy", "joblib", "ml-api"):
        try:
            out[dist] = importlib_metadata.version(dist)
        except importlib_metadata.PackageNotFoundError:
            continue
    return out


def _major_minor(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split(".")[:2] if p.isdigit())


@dataclass(frozen=True)
class Artifact:
    """A loaded, verified model version.

    Attributes:
        model: The fitted model the card's runtime runs (a scikit-learn pipeline today).
        card: The parsed ``metadata.json``.
        path: Absolute path of the version directory.
    """

    model: Any
    card: ModelCard
    path: Path

    @property
    def metadata(self) -> dict[str, Any]:
        """The ``metadata.json`` as read (unknown keys included)."""
        return self.card.raw

    @property
    def schema(self) -> FeatureSchema:
        """The feature schema from the card."""
        return self.card.schema

    @property
    def name(self) -> str:
        """The model name."""
        return self.card.name

    @property
    def version(self) -> str:
        """The model version (a positive integer, as a string)."""
        return self.card.version

    @property
    def classes(self) -> list[Any] | None:
        """Target classes for a classifier, in the order of ``predict_proba``'s columns."""
        return list(self.card.classes) if self.card.classes is not None else None


def list_versions(model_root: Path, name: str) -> list[int]:
    """Return the complete versions of a model, oldest first (directories with a metadata file)."""
    base = model_root / name
    if not base.is_dir():
        return []
    return sorted(
        int(p.name) for p in base.iterdir() if p.name.isdigit() and (p / METADATA_FILE).is_file()
    )


def save_artifact(
    model: Any,
    *,
    model_root: Path,
    name: str,
    metadata: dict[str, Any],
    fmt: Format = "joblib",
    files: Mapping[str, bytes] | None = None,
) -> Path:
    """Write a new version of a model, atomically.

    The model and ``metadata.json`` are written into a temporary directory beside the target and
    renamed into place, so a reader never sees a half-written version.

    Args:
        model: The fitted pipeline.
        model_root: Directory holding all models (created if needed).
        name: Model name, a directory name (letters, digits, ``-``, ``_``, ``.``).
        metadata: The card: at least ``features`` (``FeatureSchema.to_list()``); name, version,
            created time, file hash and library versions are filled in here.
        fmt: ``"joblib"`` (fast to load) or ``"skops"`` (loads without executing code).
        files: Further files of the version (the card's charts), by path relative to the version
            directory; their sha256 and size go into the card's ``files`` and loading verifies
            them like the model file.

    Returns:
        The absolute path of the new version directory.

    Raises:
        ValueError: ``name`` is not a plain directory name, ``fmt`` is unknown, or a path in
            ``files`` leaves the version directory or names the model or card file.
    """
    if not name or name in {".", ".."} or not all(c.isalnum() or c in "-_." for c in name):
        raise ValueError(f"model name {name!r} must use only letters, digits, '-', '_', '.'")
    if fmt not in FORMATS:
        raise ValueError(f"unknown artifact format {fmt!r}; use one of {sorted(FORMATS)}")
    for rel in files or {}:
        parts = Path(rel).parts
        if Path(rel).is_absolute() or ".." in parts or rel in (METADATA_FILE, *FORMATS.values()):
            raise ValueError(f"artifact file {rel!r} must be a new path inside the version")
    base = (model_root / name).resolve()
    base.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".incoming-", dir=base))
    try:
        model_path = tmp / FORMATS[fmt]
        if fmt == "joblib":
            import joblib

            joblib.dump(model, model_path)
        else:
            import skops.io as sio

            sio.dump(model, model_path)
        extra = {}
        for rel, data in (files or {}).items():
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp / rel).write_bytes(data)
            extra[rel] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
        while True:
            versions = list_versions(model_root, name)
            version = (versions[-1] + 1) if versions else 1
            card = {
                "schema_version": SCHEMA_VERSION,
                "name": name,
                "version": str(version),
                "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
                **metadata,
                "model_file": {
                    "name": model_path.name,
                    "format": fmt,
                    "sha256": sha256_file(model_path),
                    "bytes": model_path.stat().st_size,
                },
                **({"files": extra} if extra else {}),
                "versions": library_versions(),
            }
            (tmp / METADATA_FILE).write_text(json.dumps(card, indent=2, allow_nan=False) + "\n")
            target = base / str(version)
            try:
                os.rename(tmp, target)  # fails if another writer took this version
            except OSError:
                if target.exists():
                    continue
                raise
            os.chmod(target, 0o755)
            return target
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def resolve_version_dir(model_root: Path, name: str, version: str | None = None) -> Path:
    """Find the directory of a model version (the newest when ``version`` is ``None``).

    Raises:
        ArtifactError: No such model or version; the message names the absolute path and the
            command that creates one.
    """
    root = model_root.expanduser().resolve()
    versions = list_versions(root, name)
    if not versions:
        raise ArtifactError(
            f"no model {name!r} in {root / name}: train one with 'ml-api train' "
            f"(or set ML_API_MODEL_ROOT / ML_API_MODEL_NAME to where it is)"
        )
    if version is None:
        return root / name / str(versions[-1])
    if not version.isdigit() or int(version) not in versions:
        raise ArtifactError(
            f"no version {version!r} of model {name!r} in {root / name}; "
            f"available: {', '.join(map(str, versions))}"
        )
    return root / name / str(int(version))


def load_artifact(
    model_root: Path,
    name: str,
    version: str | None = None,
    *,
    allow_version_mismatch: bool = False,
) -> Artifact:
    """Load and verify a model version.

    Args:
        model_root: Directory holding all models.
        name: Model name.
        version: Version to load; ``None`` loads the newest.
        allow_version_mismatch: Load even if scikit-learn's major.minor differs from the one the
            model was fitted with (results may be wrong; off by default).

    Returns:
        The verified artifact.

    Raises:
        ArtifactError: Missing directory, metadata or model file; a sha256 mismatch; a
            scikit-learn major.minor mismatch (unless allowed); an unreadable model file.
    """
    path = resolve_version_dir(model_root, name, version)
    meta_path = path / METADATA_FILE
    try:
        card = ModelCard.from_dict(json.loads(meta_path.read_text()))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ArtifactError(f"unreadable model card {meta_path}: {exc!r}") from None
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
    _check_files(card, path)
    _check_versions(card, path, allow_version_mismatch)
    try:
        model = _load_model(model_path, card.model_file.format)
    except Exception as exc:
        raise ArtifactError(f"cannot load model file {model_path}: {exc!r}") from None
    return Artifact(model=model, card=card, path=path)


def _check_files(card: ModelCard, path: Path) -> None:
    """Verify the card's further files (charts): present, inside the version, sha256 as recorded."""
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


def _check_versions(card: ModelCard, path: Path, allow: bool) -> None:
    trained = card.library_versions.get("scikit-learn")
    current = library_versions().get("scikit-learn")
    if trained is None or current is None:
        return
    if _major_minor(trained) != _major_minor(current) and not allow:
        raise ArtifactError(
            f"model {path} was fitted with scikit-learn {trained} but {current} is installed; "
            f"retrain it, install scikit-learn=={trained}, or set "
            f"ML_API_ALLOW_VERSION_MISMATCH=true to load it anyway"
        )


def _load_model(model_path: Path, fmt: str) -> Any:
    if fmt == "joblib":
        import joblib

        return joblib.load(model_path)
    if fmt == "skops":
        import skops.io as sio

        untrusted = sio.get_untrusted_types(file=model_path)
        refused = [t for t in untrusted if not t.startswith(_TRUSTED_SKOPS_PREFIXES)]
        if refused:
            raise ArtifactError(f"{model_path} holds types outside scikit-learn/numpy: {refused}")
        return sio.load(model_path, trusted=untrusted)
    raise ArtifactError(f"unknown model format {fmt!r} in the card of {model_path}")
