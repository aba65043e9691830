"""The pip pins that serve a model with its own library versions, within ml-api's range.

A model pickled by scikit-learn 1.6 cannot always be read by 1.9 (and the version gate refuses
it even when it can): it serves where the library that pickled it is installed. ``ml-api
requirements`` prints those versions as pip constraints, read without unpickling anything:
from a model's card (``versions``), from the ``_sklearn_version`` stamps of a joblib/pickle or
skops file, or from an MLflow directory's ``MLmodel``. Each is checked against the range ml-api
declares for that library (``scikit-learn>=1.5,<2`` in pyproject.toml, read from the installed
package's metadata); one outside it is refused. ``make image MODEL=<name>`` installs the pins in
the image; a virtual environment installs them with ``pip install -c``.

Only the libraries of the version gate are pinned (:data:`GATED_LIBRARIES`: scikit-learn,
XGBoost, LightGBM): their pickles are not portable across major.minor versions. NumPy, SciPy,
pandas and joblib stay at ml-api's own pins, which read the pickles of older versions.
"""

from __future__ import annotations

import json
import mmap
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from ml_api.core.model.libraries import GATED_LIBRARIES, installed_version


class RequirementsError(Exception):
    """The model's library versions cannot be pinned: outside ml-api's range, or not found."""


@dataclass(frozen=True)
class Pin:
    """One library the model needs at the version it was fitted (pickled) with.

    Attributes:
        library: The card's key (``"scikit-learn"``, ``"xgboost"``, ``"lightgbm"``).
        distribution: The distribution ml-api declares for it (``"xgboost-cpu"`` for XGBoost).
        version: The version recorded for the model (``"1.6.1"``).
        supported: ml-api's range for the distribution (``">=1.5,<2"``).
    """

    library: str
    distribution: str
    version: str
    supported: str

    def line(self) -> str:
        """The pip constraint (``scikit-learn==1.6.1``)."""
        return f"{self.distribution}=={self.version}"


def declared(library: str) -> tuple[Requirement, str] | None:
    """ml-api's own requirement for a gated library (extras included), from its metadata.

    Args:
        library: A key of :data:`GATED_LIBRARIES`.

    Returns:
        The requirement and its text, lower bound first (``scikit-learn>=1.5,<2``), or
        ``None`` when ml-api's metadata is not installed or does not name the library.
    """
    names = {canonicalize_name(d) for d in GATED_LIBRARIES.get(library, (library,))}
    try:
        requires = metadata.requires("ml-api") or []
    except metadata.PackageNotFoundError:
        return None
    for line in requires:
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            continue
        if canonicalize_name(requirement.name) in names:
            lower_first = sorted(requirement.specifier, key=lambda s: s.operator[0] != ">")
            return requirement, requirement.name + ",".join(map(str, lower_first))
    return None


def pin(library: str, version: str, what: str) -> Pin:
    """Check a recorded version against ml-api's range for its library and pin it.

    Args:
        library: A key of :data:`GATED_LIBRARIES`.
        version: The version the model was fitted with.
        what: The model, as the message names it.

    Raises:
        RequirementsError: The version is outside the declared range, or not a version.
    """
    found = declared(library)
    requirement = found[0] if found else None
    distribution = requirement.name if requirement else library
    supported = found[1][len(distribution) :].strip() if found else ""
    try:
        parsed = Version(version)
    except InvalidVersion:
        raise RequirementsError(f"{what}: {library} version {version!r} is not a version") from None
    if requirement is not None and not requirement.specifier.contains(parsed, prereleases=True):
        raise RequirementsError(
            f"{what} was fitted with {library} {version}, outside the range ml-api supports "
            f"({distribution}{supported}): no ml-api environment can load it; refit and save "
            f"it with a supported version (pip install '{distribution}{supported}')"
        )
    return Pin(library, distribution, version, supported)


_VERSION_STAMP = re.compile(rb"_sklearn_version(?:\x94)?\x8c([\x01-\x20])")
"""scikit-learn's stamp in a pickle: ``__getstate__`` adds ``_sklearn_version`` to every
estimator's state, a short unicode string right after the key (protocols 2 to 5)."""


def pickled_sklearn_versions(path: Path) -> list[str]:
    """The scikit-learn versions stamped in a (joblib) pickle file, without unpickling it.

    Args:
        path: A pickle or uncompressed joblib file.

    Returns:
        The distinct versions, sorted (empty for a compressed file or one without estimators).
    """
    try:
        with path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            found = {
                bytes(data[m.end() : m.end() + m.group(1)[0]]).decode("ascii", "replace")
                for m in _VERSION_STAMP.finditer(data)
            }
    except (OSError, ValueError):  # empty or unreadable: no stamp
        return []
    return sorted(found)


def skops_sklearn_versions(path: Path) -> list[str]:
    """The scikit-learn versions stamped in a skops file's ``schema.json``, without loading it.

    Args:
        path: A skops file (a zip archive whose ``schema.json`` describes every object).

    Returns:
        The distinct versions, sorted (empty when no estimator state carries the stamp).
    """
    try:
        with zipfile.ZipFile(path) as zf:
            schema = json.loads(zf.read("schema.json"))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return []
    return sorted(set(_stamps(schema)))


def _stamps(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        stamp = node.get("_sklearn_version")
        if isinstance(stamp, dict) and isinstance(stamp.get("content"), str):
            version = json.loads(stamp["content"])
            if isinstance(version, str):
                yield version
        for value in node.values():
            yield from _stamps(value)
    elif isinstance(node, list):
        for value in node:
            yield from _stamps(value)


def supported_sklearn() -> str:
    """The scikit-learn versions ml-api supports (``scikit-learn>=1.5,<2``), from its metadata."""
    found = declared("scikit-learn")
    return found[1] if found else "scikit-learn (see pyproject.toml)"


def version_route(pickled: str, path: Path) -> str:
    """The supported routes for a model pickled by another scikit-learn major.minor.

    Args:
        pickled: The scikit-learn version that pickled the model.
        path: The model file or MLflow directory, as ``ml-api requirements`` takes it.
    """
    refit = f"refit and save it with scikit-learn {installed_version('scikit-learn')}"
    try:
        pin("scikit-learn", pickled, str(path))
    except RequirementsError:
        return (
            f"estimators are not portable across minor versions, and scikit-learn {pickled} is "
            f"outside the range ml-api supports ({supported_sklearn()}): {refit}"
        )
    return (
        f"estimators are not portable across minor versions; {refit}, or import and serve it "
        f"with scikit-learn {pickled} (ml-api supports {supported_sklearn()}): "
        f"'ml-api requirements {path}' prints the pins for a virtual environment "
        f"(pip install -c), and 'make image MODEL=<name>' installs a model's pins in its image"
    )


_MLFLOW_VERSION = re.compile(r"^\s*sklearn_version:\s*['\"]?([^\s'\"]+)", re.MULTILINE)


def file_pins(path: Path) -> list[Pin]:
    """The pins of a model file not imported yet, read without loading it.

    Args:
        path: A joblib/pickle or skops file (its ``_sklearn_version`` stamps) or an MLflow
            model directory (the ``sklearn_version`` of its ``MLmodel``).

    Raises:
        RequirementsError: No version is recorded where it can be read without unpickling (a
            compressed joblib file, an estimator without the stamp), several
            scikit-learn versions are stamped, or the version is outside ml-api's range.
    """
    if path.is_dir():
        mlmodel = path / "MLmodel"
        found = _MLFLOW_VERSION.findall(mlmodel.read_text()) if mlmodel.is_file() else []
    elif zipfile.is_zipfile(path):
        found = skops_sklearn_versions(path)
    else:
        found = pickled_sklearn_versions(path)
    if not found:
        raise RequirementsError(
            f"{path}: no scikit-learn version is recorded where it can be read without loading "
            f"the model (a compressed joblib file hides it): import it (ml-api "
            f"import), then run ml-api requirements on the model's name"
        )
    if len(set(found)) > 1:
        raise RequirementsError(
            f"{path} holds estimators pickled by several scikit-learn versions "
            f"({', '.join(sorted(set(found)))}): no single version reads it; refit and save it"
        )
    return [pin("scikit-learn", found[0], str(path))]


def card_pins(versions: dict[str, str], what: str) -> list[Pin]:
    """The pins of an imported or trained model, from its card's ``versions``.

    Args:
        versions: The card's ``versions`` (library name to version).
        what: The model, as messages name it (``model 'houses' version 3``).

    Raises:
        RequirementsError: A version is outside ml-api's range for its library.
    """
    return [pin(lib, versions[lib], what) for lib in GATED_LIBRARIES if lib in versions]
