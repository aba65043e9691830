"""Serving a model fitted elsewhere: ``ml-api import`` and ``ml_api.save_model`` (training layer).

A fitted scikit-learn estimator or pipeline, or the scikit-learn interface of an XGBoost or
LightGBM model, from Python, a joblib/pickle file, a skops file or an MLflow model directory,
becomes an ordinary artifact version with a feature schema. The core never imports this package.
"""

from ml_api.importing.importer import ImportResult, import_model, save_model
from ml_api.importing.notes import ImportNote
from ml_api.importing.sources import RUNS_CODE_WARNING, ImportRefused

__all__ = [
    "RUNS_CODE_WARNING",
    "ImportNote",
    "ImportRefused",
    "ImportResult",
    "import_model",
    "save_model",
]
