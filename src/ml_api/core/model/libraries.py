"""The libraries a model was fitted with: the versions a card records, and the version gate.

Pickled estimators are not portable across a library's major.minor versions, so a card lists the
versions of Python and of the libraries the model was fitted with (``versions``), and loading
refuses a model whose gated libraries (:data:`GATED_LIBRARIES`) are installed at another
major.minor, unless the mismatch is allowed.
"""

from __future__ import annotations

import platform
from collections.abc import Sequence
from importlib import metadata as importlib_metadata
from pathlib import Path

from ml_api.core.model.card import ModelCard
from ml_api.core.model.integrity import ArtifactError

GATED_LIBRARIES: dict[str, tuple[str, ...]] = {
    "scikit-learn": ("scikit-learn",),
    "xgboost": ("xgboost", "xgboost-cpu"),
    "lightgbm": ("lightgbm",),
    "catboost": ("catboost",),
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


def check_versions(card: ModelCard, path: Path, allow: bool) -> None:
    """The version gate: each gated library the card lists must be installed at its major.minor.

    Applies to every library of :data:`GATED_LIBRARIES` the card lists. A library the model needs
    but that is missing is refused even with ``allow``: unpickling would fail anyway, with a less
    useful message.

    Args:
        card: The version's card (its ``versions``).
        path: Absolute path of the version directory, named in the messages.
        allow: Load despite a major.minor mismatch (``ML_API_ALLOW_VERSION_MISMATCH``).

    Raises:
        ArtifactError: A gated library is missing, or installed at another major.minor and
            ``allow`` is false.
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
