"""ml-api: from training data to a production prediction API.

The public Python API, all in ``__all__``:

- ``ml_api.save_model(model, data, name=...)`` saves a model fitted elsewhere as a servable
  version (see :func:`ml_api.importing.save_model`);
- ``ml_api.ImportRefused`` is the error it raises (one-line message, as ``ml-api import``);
- ``ml_api.ImportResult`` is what it returns (the version's path and card);
- ``ml_api.ImportNote`` is the warning category of its notes (what ``ml-api import`` prints);
- ``ml_api.__version__`` is the installed distribution's version.

The first four are imported on first use, so ``import ml_api`` stays cheap (no scikit-learn,
pandas or web framework).
"""

from __future__ import annotations

from importlib import metadata
from typing import Any

__all__ = ["ImportNote", "ImportRefused", "ImportResult", "__version__", "save_model"]

try:
    __version__ = metadata.version("ml-api")
except metadata.PackageNotFoundError:  # pragma: no cover - a source tree without install
    __version__ = "0+unknown"

_LAZY = frozenset({"ImportNote", "ImportRefused", "ImportResult", "save_model"})


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import ml_api.importing

        return getattr(ml_api.importing, name)
    raise AttributeError(f"module 'ml_api' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
