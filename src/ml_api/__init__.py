"""ml-api: from training data to a production prediction API.

``ml_api.save_model(model, data, name=...)`` saves a model fitted elsewhere as a servable version
(see :func:`ml_api.importing.save_model`); it is imported on first use, so ``import ml_api`` stays
cheap (no scikit-learn, pandas or web framework).
"""

from __future__ import annotations

from typing import Any

__all__ = ["save_model"]


def __getattr__(name: str) -> Any:
    if name == "save_model":
        from ml_api.importing import save_model

        return save_model
    raise AttributeError(f"module 'ml_api' has no attribute {name!r}")
