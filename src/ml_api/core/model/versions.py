"""A model's versions and aliases: which directory ``<name>`` at ``<version-or-alias>`` names.

Versions are positive integers, each a directory ``<model_root>/<name>/<version>/`` holding a
card (``metadata.json``); the newest is the highest. ``ml-api promote`` points aliases at
versions in ``<model_root>/<name>/aliases.json``; the ``production`` alias, when set, names the
version that serves when none is asked for.
"""

from __future__ import annotations

import json
from pathlib import Path

from ml_api.core.model.card import METADATA_FILE
from ml_api.core.model.integrity import ArtifactError
from ml_api.core.model.registry_lock import registry_lock, replace_file

ALIASES_FILE = "aliases.json"
"""``<model_root>/<name>/aliases.json``: ``{"production": 2}``, written by ``ml-api promote``."""

DEFAULT_ALIAS = "production"
"""The alias that serves when no version is asked for; the newest version serves without it."""


def list_versions(model_root: Path, name: str) -> list[int]:
    """Return the complete versions of a model, oldest first (directories with a metadata file)."""
    base = model_root / name
    if not base.is_dir():
        return []
    return sorted(
        int(p.name) for p in base.iterdir() if p.name.isdigit() and (p / METADATA_FILE).is_file()
    )


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
