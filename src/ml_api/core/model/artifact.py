"""The versioned model artifact: ``<model_root>/<name>/<version>/`` with the model and its card.

A version directory holds the whole fitted :class:`sklearn.pipeline.Pipeline` (preprocessing
included) as ``model.joblib`` or ``model.skops``, and ``metadata.json``: the ordered feature schema,
target classes, held-out metrics, the training data's and the model file's sha256, the library
versions it was fitted with, and its creation time (the model card, :mod:`ml_api.core.model.card`).
Versions are positive integers; the newest is the highest.

Loading verifies the model file's sha256 against the metadata (a tampered or truncated file is
refused) and the scikit-learn major.minor version (pickled estimators are not portable across
them), and fails with one message naming the absolute path. A version may also hold further
*served forms* of the model (a converted file another runtime serves, :mod:`ml_api.core.runtimes`):
form ``<form>`` is the file ``model.<form>``, listed with its sha256 under the card's
``<form>.file``; it is verified the same way whenever the card lists it, whichever runtime will
serve. joblib/pickle execute code while loading, so only a file whose hash matches its card is
opened; ``skops`` files are loaded by the rule of :mod:`ml_api.core.model.skops_trust`.

Beside this module: :mod:`~ml_api.core.model.versions` (which directory a version or alias
names), :mod:`~ml_api.core.model.integrity` (hashes, :class:`ArtifactError`),
:mod:`~ml_api.core.model.libraries` (the version gate) and
:mod:`~ml_api.core.model.registry_lock` (concurrent writers).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from ml_api.core.model.card import METADATA_FILE, ModelCard, ModelFile, NewCard
from ml_api.core.model.integrity import (
    ArtifactError,
    read_form,
    sha256_file,
    verify_files,
    verify_model_file,
)
from ml_api.core.model.libraries import check_versions, library_versions
from ml_api.core.model.registry_lock import (
    fsync_dir,
    fsync_tree,
    next_version,
    record_version,
    registry_lock,
)
from ml_api.core.model.schema import FeatureSchema
from ml_api.core.model.skops_trust import dump_skops, load_skops
from ml_api.core.model.versions import resolve_version_dir

FORM_FILE = "model.{form}"
"""The file name of a served form (``model.<form>``)."""
FORMATS = {"joblib": "model.joblib", "skops": "model.skops"}
Format = Literal["joblib", "skops"]


@dataclass(frozen=True)
class Artifact:
    """A loaded, verified model version.

    Attributes:
        model: The fitted model the card's runtime runs (a scikit-learn pipeline today).
        card: The parsed ``metadata.json``.
        path: Absolute path of the version directory.
        forms: The verified bytes of each further served form the card lists, by form name (the
            card section that lists its file, whose bytes are ``model.<form>``); empty when it
            lists none. The runtime that serves a form names it (``Runtime.form``).
    """

    model: Any
    card: ModelCard
    path: Path
    forms: Mapping[str, bytes] = field(default_factory=dict)

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


def save_artifact(
    model: Any,
    *,
    model_root: Path,
    name: str,
    card: NewCard,
    fmt: Format = "joblib",
    files: Mapping[str, bytes] | None = None,
    model_libraries: Sequence[str] = (),
    forms: Mapping[str, bytes] | None = None,
    skops_trusted: Sequence[str] = (),
    fitted_with: Mapping[str, str] | None = None,
) -> Path:
    """Write a new version of a model, atomically.

    The model (and its further served forms, if given) and ``metadata.json`` are written into a
    temporary directory beside the target, fsynced, and renamed into place, so a reader never
    sees a half-written version. The version number is taken under the model's registry lock
    from its high-water mark (:mod:`ml_api.core.model.registry_lock`): concurrent ``train`` and
    ``import`` runs get distinct numbers, and a number is never handed out twice, also when its
    directory was deleted or left incomplete.

    Args:
        model: The fitted pipeline.
        model_root: Directory holding all models (created if needed).
        name: Model name, a directory name (letters, digits, ``-``, ``_``, ``.``).
        card: The new version's card; name, version, created time, file hashes and library
            versions are filled in here (:meth:`~ml_api.core.model.card.NewCard.saved`), and
            :meth:`~ml_api.core.model.card.ModelCard.write` writes it.
        fmt: ``"joblib"`` (fast to load) or ``"skops"`` (loads without executing code).
        files: Further files of the version (the card's charts), by path relative to the version
            directory; their sha256 and size go into the card's ``files`` and loading verifies
            them like the model file.
        model_libraries: Libraries besides scikit-learn the model's classes come from
            (``"xgboost"``, ``"lightgbm"``): their versions go into the card and the version gate
            of :func:`load_artifact` applies to them.
        forms: Further served forms by form name (a converted model another runtime serves):
            each is written as ``model.<form>`` and its name, sha256 and size go into the card's
            section of that name (``card.forms[form]``, which must then be present) as
            ``file``.
        skops_trusted: For ``fmt="skops"``: types the file may hold beyond skops' own trusted set
            and :data:`~ml_api.core.model.skops_trust.SKOPS_REVIEWED_TYPES` (the tree node types
            of a model ml-api fitted, or what the user trusted at import); the ones the file
            holds go into the card's
            ``model_file.trusted_types``, which :func:`load_artifact` trusts.
        fitted_with: Library versions the model was made with where they differ from the
            installed ones (an imported pickle: scikit-learn's ``InconsistentVersionWarning``
            names the version that pickled it); they replace the installed versions in the
            card's ``versions``, so the version gate compares against them.

    Returns:
        The absolute path of the new version directory.

    Raises:
        ValueError: ``name`` is not a plain directory name, ``fmt`` is unknown, a path in
            ``files`` leaves the version directory or names the model, a form or the card file, a
            form has no card section, or the skops file would hold a type neither skops nor
            ``skops_trusted`` trusts.
    """
    forms = dict(forms or {})
    _check_new_version(name, fmt, card, forms, files or {})
    base = (model_root / name).resolve()
    base.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".incoming-", dir=base))
    try:
        model_file = _write_model(model, tmp, fmt, skops_trusted)
        form_files = {
            form: _write_file(tmp, FORM_FILE.format(form=form), data, named=True)
            for form, data in forms.items()
        }
        files_card = {rel: _write_file(tmp, rel, data) for rel, data in (files or {}).items()}
        with registry_lock(base):
            version = next_version(base)
            card.saved(
                name=name,
                version=str(version),
                created_at=datetime.now(UTC).isoformat(timespec="seconds"),
                model_file=model_file,
                library_versions={**library_versions(model_libraries), **(fitted_with or {})},
                form_files=form_files,
                files=files_card,
            ).write(tmp)
            fsync_tree(tmp)
            record_version(base, version)  # handed out: never again, even if the rename fails
            target = base / str(version)
            os.rename(tmp, target)
            os.chmod(target, 0o755)
            fsync_dir(base)
            return target
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _check_new_version(
    name: str, fmt: str, card: NewCard, forms: Mapping[str, bytes], files: Mapping[str, bytes]
) -> None:
    """Refuse a name, format, form or file path :func:`save_artifact` may not write (ValueError)."""
    if not name or name in {".", ".."} or not all(c.isalnum() or c in "-_." for c in name):
        raise ValueError(f"model name {name!r} must use only letters, digits, '-', '_', '.'")
    if fmt not in FORMATS:
        raise ValueError(f"unknown artifact format {fmt!r}; use one of {sorted(FORMATS)}")
    for form in forms:
        if not form.isidentifier() or form not in card.forms:
            raise ValueError(f"the served form {form!r} needs the card's {form!r} section")
    form_names = [FORM_FILE.format(form=form) for form in forms]
    for rel in files:
        parts = Path(rel).parts
        if (
            Path(rel).is_absolute()
            or ".." in parts
            or rel in (METADATA_FILE, *form_names, *FORMATS.values())
        ):
            raise ValueError(f"artifact file {rel!r} must be a new path inside the version")


def _write_model(
    model: Any, directory: Path, fmt: Format, skops_trusted: Sequence[str]
) -> ModelFile:
    """Write the model file in ``fmt`` into ``directory``; return its card entry."""
    path = directory / FORMATS[fmt]
    trusted: list[str] = []
    if fmt == "joblib":
        import joblib

        joblib.dump(model, path)
    else:
        trusted = dump_skops(model, path, skops_trusted)
    return ModelFile(
        name=path.name,
        format=fmt,
        sha256=sha256_file(path),
        bytes=path.stat().st_size,
        trusted_types=tuple(trusted),
    )


def _write_file(directory: Path, rel: str, data: bytes, *, named: bool = False) -> dict[str, Any]:
    """Write a further file of the version; return its card entry (``name`` first if ``named``)."""
    path = directory / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    entry = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    return {"name": path.name, **entry} if named else entry


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
    model_path = verify_model_file(card, path)
    verify_files(card, path)
    check_versions(card, path, allow_version_mismatch)
    forms = {form: read_form(card.raw, form, path) for form in served_forms(card.raw)}
    try:
        model = _load_model(model_path, card)
    except ArtifactError:
        raise
    except Exception as exc:
        raise ArtifactError(f"cannot load model file {model_path}: {exc!r}") from None
    return Artifact(model=model, card=card, path=path, forms=forms)


def served_forms(metadata: Mapping[str, Any]) -> list[str]:
    """Return the names of the served forms a card lists.

    A served form is a card section whose ``file`` entry is an object (``name``, ``sha256``,
    ``bytes``: what :func:`save_artifact` writes); sections whose ``file`` is a plain name (an
    imported model's ``source``) are not forms.

    Args:
        metadata: The ``metadata.json`` content.

    Returns:
        Form names in card order (``[]`` for a version saved without one).
    """
    return [
        key
        for key, section in metadata.items()
        if isinstance(section, Mapping) and isinstance(section.get("file"), Mapping)
    ]


CODE_DIR = "code"
"""The version directory's folder of the model's own code (``--code-path``); its files are in
the card's ``files`` (sha256-verified at load) and its modules in the card's ``code``."""


@contextlib.contextmanager
def code_on_path(version_dir: Path, card: ModelCard) -> Iterator[None]:
    """Put the version's own code first on ``sys.path`` while its model is unpickled.

    Only the card's ``code`` modules are importable from there, and only meanwhile: a module of
    the same name imported earlier (another version's) is forgotten first, so this version's
    file is the one its classes come from.
    """
    code = card.raw.get("code") or {}
    names = [str(m) for m in code.get("modules") or ()]
    if not names:
        yield
        return
    for name in names:
        for loaded in [m for m in sys.modules if m == name or m.startswith(f"{name}.")]:
            del sys.modules[loaded]
    directory = str(version_dir / CODE_DIR)
    sys.path.insert(0, directory)
    try:
        yield
    finally:
        sys.path.remove(directory)


def _load_model(model_path: Path, card: ModelCard) -> Any:
    fmt = card.model_file.format
    if fmt == "joblib":
        import joblib

        with code_on_path(model_path.parent, card):
            return joblib.load(model_path)
    if fmt == "skops":
        return load_skops(model_path, card)
    raise ArtifactError(f"unknown model format {fmt!r} in the card of {model_path}")
