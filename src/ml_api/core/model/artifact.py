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
serve. joblib/pickle
execute code while loading, so only a file whose hash matches its card is opened; ``skops`` files
are loaded trusting only what skops trusts, :data:`SKOPS_REVIEWED_TYPES` and the types the card
lists as trusted when the version was written (``model_file.trusted_types``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import shutil
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any, Literal

from ml_api.core.model.card import ModelCard
from ml_api.core.model.registry_lock import (
    fsync_dir,
    fsync_tree,
    next_version,
    record_version,
    registry_lock,
    replace_file,
)
from ml_api.core.model.schema import FeatureSchema

METADATA_FILE = "metadata.json"
FORM_FILE = "model.{form}"
"""The file name of a served form (``model.<form>``)."""
FORMATS = {"joblib": "model.joblib", "skops": "model.skops"}
SCHEMA_VERSION = 1
Format = Literal["joblib", "skops"]
SKOPS_REVIEWED_TYPES = frozenset({"numpy.dtype"})
"""Types a skops file may hold beyond the ones skops itself trusts, each reviewed, by full name
(never a prefix: ``builtins.eval`` and ``numpy.load`` share prefixes with harmless types).

``numpy.dtype``: skops rebuilds it from its string form (``numpy.dtype("float64")``); no other
code runs. Every other type :func:`skops.io.get_untrusted_types` reports must be trusted by name
(``ml-api import --trust TYPE``) or the file is refused."""

SKOPS_NODE_TYPES = {
    "sklearn.tree._tree.Tree": "decision trees, forests and gradient boosting",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor": (
        "HistGradientBoosting models"
    ),
}
"""Tree node storage skops does not trust: scikit-learn indexes its node arrays without bounds
checks, so a crafted file's out-of-range node indices can crash the process (or read memory)
when it predicts. Trusted only in models ml-api fitted itself (``ml-api train``) or that the
user trusted by name at import."""


def skops_refused(untrusted: Sequence[str], trusted: Sequence[str] = ()) -> list[str]:
    """Return the types of a skops file that may not be loaded.

    Args:
        untrusted: What :func:`skops.io.get_untrusted_types` reports for the file (the types
            skops itself does not trust).
        trusted: Type names trusted by name for this file (``--trust``, or the card's
            ``model_file.trusted_types``).

    Returns:
        The reported types neither on :data:`SKOPS_REVIEWED_TYPES` nor in ``trusted``, sorted.
    """
    allowed = SKOPS_REVIEWED_TYPES | set(trusted)
    return sorted(t for t in untrusted if t not in allowed)


def skops_refusal(refused: Sequence[str]) -> str:
    """Say which types skops does not trust and why a type is dangerous, where known (one line)."""
    why = [
        f"{t} holds tree nodes ({SKOPS_NODE_TYPES[t]}) whose out-of-range node indices in a "
        f"crafted file crash the process at predict time"
        for t in refused
        if t in SKOPS_NODE_TYPES
    ]
    return ", ".join(refused) + (f" ({'; '.join(why)})" if why else "")


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


GATED_LIBRARIES: dict[str, tuple[str, ...]] = {
    "scikit-learn": ("scikit-learn",),
    "xgboost": ("xgboost", "xgboost-cpu"),
    "lightgbm": ("lightgbm",),
}
"""Libraries whose pickled models are not portable across major.minor versions: the card key and
the distributions that install the library (xgboost-cpu installs the same ``xgboost`` module)."""


def installed_version(library: str) -> str | None:
    """Return the installed version of a library, or ``None`` when it is not installed.

    Args:
        library: A card key of :data:`GATED_LIBRARIES` (``"xgboost"``) or a distribution name.
    """
    for dist in GATED_LIBRARIES.get(library, (library,)):
        try:
            return importlib_metadata.version(dist)
        except importlib_metadata.PackageNotFoundError:
            continue
    return None


def library_versions(model_libraries: Sequence[str] = ()) -> dict[str, str]:
    """Return the versions of Python and of the libraries a fitted pipeline depends on.

    Args:
        model_libraries: Further libraries the model's own classes come from (``"xgboost"``,
            ``"lightgbm"``); listed only when asked, so the version gate applies to them only for
            the models that need them.
    """
    out = {"python": platform.python_version()}
    for dist in ("scikit-learn", "numpy", "pandas", "scipy", "joblib", "ml-api", *model_libraries):
        version = installed_version(dist)
        if version is not None:
            out[dist] = version
    return out


def major_minor(version: str) -> tuple[int, ...]:
    """Return a version's ``(major, minor)`` (``"1.9.1"`` -> ``(1, 9)``), what the gate compares."""
    return tuple(int(p) for p in version.split(".")[:2] if p.isdigit())


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
        metadata: The card: at least ``features`` (``FeatureSchema.to_list()``); name, version,
            created time, file hash and library versions are filled in here.
        fmt: ``"joblib"`` (fast to load) or ``"skops"`` (loads without executing code).
        files: Further files of the version (the card's charts), by path relative to the version
            directory; their sha256 and size go into the card's ``files`` and loading verifies
            them like the model file.
        model_libraries: Libraries besides scikit-learn the model's classes come from
            (``"xgboost"``, ``"lightgbm"``): their versions go into the card and the version gate
            of :func:`load_artifact` applies to them.
        forms: Further served forms by form name (a converted model another runtime serves):
            each is written as ``model.<form>`` and its name, sha256 and size go into the card's
            section of that name (``metadata[form]``, which must then be present) as ``file``.
        skops_trusted: For ``fmt="skops"``: types the file may hold beyond skops' own trusted set
            and :data:`SKOPS_REVIEWED_TYPES` (the tree node types of a model ml-api fitted, or
            what the user trusted at import); the ones the file holds go into the card's
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
    if not name or name in {".", ".."} or not all(c.isalnum() or c in "-_." for c in name):
        raise ValueError(f"model name {name!r} must use only letters, digits, '-', '_', '.'")
    if fmt not in FORMATS:
        raise ValueError(f"unknown artifact format {fmt!r}; use one of {sorted(FORMATS)}")
    forms = dict(forms or {})
    for form in forms:
        if not form.isidentifier() or not isinstance(metadata.get(form), dict):
            raise ValueError(f"the served form {form!r} needs the card's {form!r} section")
    form_files = [FORM_FILE.format(form=form) for form in forms]
    for rel in files or {}:
        parts = Path(rel).parts
        if (
            Path(rel).is_absolute()
            or ".." in parts
            or rel in (METADATA_FILE, *form_files, *FORMATS.values())
        ):
            raise ValueError(f"artifact file {rel!r} must be a new path inside the version")
    base = (model_root / name).resolve()
    base.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".incoming-", dir=base))
    try:
        model_path = tmp / FORMATS[fmt]
        model_trusted: list[str] = []
        if fmt == "joblib":
            import joblib

            joblib.dump(model, model_path)
        else:
            model_trusted = _dump_skops(model, model_path, skops_trusted)
        extra: dict[str, Any] = {}
        for form, data in forms.items():
            form_path = tmp / FORM_FILE.format(form=form)
            form_path.write_bytes(data)
            extra[form] = {
                **metadata[form],
                "file": {
                    "name": form_path.name,
                    "sha256": sha256_file(form_path),
                    "bytes": form_path.stat().st_size,
                },
            }
        files_card: dict[str, Any] = {}
        for rel, data in (files or {}).items():
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp / rel).write_bytes(data)
            files_card[rel] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
        with registry_lock(base):
            version = next_version(base)
            card = {
                "schema_version": SCHEMA_VERSION,
                "name": name,
                "version": str(version),
                "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
                **metadata,
                **extra,
                "model_file": {
                    "name": model_path.name,
                    "format": fmt,
                    "sha256": sha256_file(model_path),
                    "bytes": model_path.stat().st_size,
                    **({"trusted_types": model_trusted} if model_trusted else {}),
                },
                **({"files": files_card} if files_card else {}),
                "versions": {**library_versions(model_libraries), **(fitted_with or {})},
            }
            (tmp / METADATA_FILE).write_text(json.dumps(card, indent=2, allow_nan=False) + "\n")
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


ALIASES_FILE = "aliases.json"
"""``<model_root>/<name>/aliases.json``: ``{"production": 2}``, written by ``ml-api promote``."""

DEFAULT_ALIAS = "production"
"""The alias that serves when no version is asked for; the newest version serves without it."""


def read_aliases(model_root: Path, name: str) -> dict[str, int]:
    """Return a model's aliases (alias name -> version); empty when none is set.

    Raises:
        ArtifactError: ``aliases.json`` exists but is not a JSON object of integer versions.
    """
    path = model_root.expanduser().resolve() / name / ALIASES_FILE
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"unreadable aliases file {path}: {exc}") from None
    if not isinstance(raw, dict) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in raw.values()
    ):
        raise ArtifactError(f"aliases file {path} must map alias names to version numbers")
    return {str(k): int(v) for k, v in raw.items()}


def set_alias(model_root: Path, name: str, alias: str, version: int | None) -> int | None:
    """Point ``alias`` at ``version`` (``None`` removes it); write ``aliases.json`` atomically.

    The read-modify-write holds the model's registry lock
    (:func:`ml_api.core.model.registry_lock.registry_lock`), so concurrent ``promote`` runs each
    keep their change; the file is replaced with a durable :func:`os.replace`.

    Args:
        model_root: Directory holding all models.
        name: Model name.
        alias: Letters, digits, ``-`` and ``_``, not only digits (``production``, ``staging``).
        version: An existing complete version, or ``None`` to remove the alias.

    Returns:
        The version the alias named before (``None`` when it was unset), read under the lock.

    Raises:
        ArtifactError: No such model or version.
        ValueError: ``alias`` is not a valid alias name.
    """
    if not alias or alias.isdigit() or not all(c.isalnum() or c in "-_" for c in alias):
        raise ValueError(f"alias {alias!r}: use letters, digits, '-', '_' (not only digits)")
    root = model_root.expanduser().resolve()
    if version is not None:
        resolve_version_dir(root, name, str(version))
    path = root / name / ALIASES_FILE
    if not path.parent.is_dir():
        raise ArtifactError(f"no model {name!r} in {path.parent}: train one with 'ml-api train'")
    with registry_lock(path.parent):  # read-modify-write: no concurrent promote is lost
        aliases = read_aliases(root, name)
        previous = aliases.get(alias)
        if version is None:
            aliases.pop(alias, None)
        else:
            aliases[alias] = int(version)
        replace_file(path, json.dumps(dict(sorted(aliases.items())), indent=2) + "\n")
    return previous


def resolve_version_dir(model_root: Path, name: str, version: str | None = None) -> Path:
    """Find the directory of a model version.

    ``version`` is a version number, or an alias set by ``ml-api promote`` (``production``). With
    ``None``: the version the ``production`` alias names when it is set, else the newest.

    Raises:
        ArtifactError: No such model, version or alias, or an alias naming a version that is gone;
            the message names the absolute path and the command that fixes it.
    """
    root = model_root.expanduser().resolve()
    versions = list_versions(root, name)
    if not versions:
        versionless = (root / name).is_dir() and any(
            p.name.isdigit() and p.is_dir() for p in (root / name).iterdir()
        )
        if versionless:
            raise ArtifactError(
                f"model {name!r} in {root / name} has version directories but no model card "
                f"({METADATA_FILE}): make one with 'ml-api import', or train with 'ml-api train'"
            )
        raise ArtifactError(
            f"no model {name!r} in {root / name}: train one with 'ml-api train' "
            f"(or set ML_API_MODEL_ROOT / ML_API_MODEL_NAME to where it is)"
        )
    aliases = read_aliases(root, name)
    alias = DEFAULT_ALIAS if version is None else version
    if version is None and alias not in aliases:
        return root / name / str(versions[-1])
    if alias in aliases:
        target = aliases[alias]
        if target not in versions:
            raise ArtifactError(
                f"alias {alias!r} of model {name!r} names version {target}, which is not in "
                f"{root / name}; point it at another with 'ml-api promote {name} VERSION'"
            )
        return root / name / str(target)
    if version is None or not version.isdigit() or int(version) not in versions:
        named = f"; aliases: {', '.join(sorted(aliases))}" if aliases else ""
        raise ArtifactError(
            f"no version {version!r} of model {name!r} in {root / name}; "
            f"available: {', '.join(map(str, versions))}{named}"
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
    forms = {form: _read_form(card.raw, form, path) for form in served_forms(card.raw)}
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


def _read_form(metadata: Mapping[str, Any], form: str, path: Path) -> bytes:
    """Read and verify the file of the served form ``form`` the card lists."""
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
    """The version gate: each gated library the card lists must be installed at its major.minor.

    Applies to every library of :data:`GATED_LIBRARIES` the card lists. A library the model needs
    but that is missing is refused even with ``allow``: unpickling would fail anyway, with a less
    useful message.
    """
    for library in GATED_LIBRARIES:
        trained = card.library_versions.get(library)
        if trained is None:
            continue
        current = installed_version(library)
        if current is None:
            if library == "scikit-learn":
                continue
            raise ArtifactError(
                f"model {path} needs {library} {trained}, which is not installed: "
                f"pip install {library}=={trained}"
            )
        if major_minor(trained) != major_minor(current) and not allow:
            raise ArtifactError(
                f"model {path} was fitted with {library} {trained} but {current} is installed; "
                f"retrain it, install {library}=={trained}, or set "
                f"ML_API_ALLOW_VERSION_MISMATCH=true to load it anyway"
            )


def _dump_skops(model: Any, path: Path, trusted: Sequence[str]) -> list[str]:
    """Write ``model`` as a skops file; return the types it holds that were trusted by name."""
    import skops.io as sio

    sio.dump(model, path)
    untrusted = sio.get_untrusted_types(file=path)
    refused = skops_refused(untrusted, trusted)
    if refused:
        raise ValueError(
            f"the skops format stores only types skops trusts (and "
            f"{', '.join(sorted(SKOPS_REVIEWED_TYPES))}), and this model holds "
            f"{skops_refusal(refused)}: use the joblib format"
        )
    return sorted(t for t in untrusted if t not in SKOPS_REVIEWED_TYPES)


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
        import skops.io as sio

        untrusted = sio.get_untrusted_types(file=model_path)
        recorded = card.raw.get("model_file", {}).get("trusted_types") or []
        refused = skops_refused(untrusted, [str(t) for t in recorded])
        if refused:
            raise ArtifactError(
                f"{model_path} holds types skops does not trust and its card does not list as "
                f"trusted: {skops_refusal(refused)}; refusing to load it"
            )
        return sio.load(model_path, trusted=untrusted)
    raise ArtifactError(f"unknown model format {fmt!r} in the card of {model_path}")
