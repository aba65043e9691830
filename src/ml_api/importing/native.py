"""Reading a boosting library's own model file: XGBoost, LightGBM and CatBoost.

XGBoost's ``.json``/``.ubj``, LightGBM's ``.txt`` and CatBoost's ``.cbm`` (CatBoost's is wrapped
in :mod:`ml_api.importing.catboost_model`).

These are what each library's documentation teaches (``model.save_model("model.json")``,
``booster.save_model("model.txt")``), and the safest files there are: reading them runs no code.
Each is read by its library and given its scikit-learn interface (``XGBClassifier``,
``LGBMRegressor``, ...), the form the rest of the import, the ONNX export, the version gate and
``make image`` already know:

- the task comes from the objective stored in the file (``binary:logistic``, ``multiclass``,
  ``reg:squarederror``, ``regression``...); a ranking or other objective is refused;
- the class labels are the library's class indices ``0 .. k-1``: an XGBoost or LightGBM file
  keeps no labels (the card says so under ``provenance.classes``); a CatBoost file keeps its
  class names, and they are served;
- the feature names are the ones stored in the file (a model fitted on a DataFrame keeps them).

The model the import compares the server's answers with is the library's own ``Booster``
(:func:`check_against_booster`), so the scikit-learn interface built here is checked too.
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from ml_api.core.model.integrity import sha256_file
from ml_api.importing.source import ImportRefused, Source

NATIVE_SUFFIXES = {".json": "xgboost", ".ubj": "xgboost", ".txt": "lightgbm", ".cbm": "catboost"}
"""File suffixes read as a library's native model file, and the library that reads each."""

INSTALL = {
    "xgboost": "pip install 'ml-api[xgboost]' (in a checkout: .venv/bin/python -m pip install -c "
    "constraints.txt -e '.[xgboost]')",
    "lightgbm": "pip install 'ml-api[lightgbm]' (in a checkout: .venv/bin/python -m pip install "
    "-c constraints.txt -e '.[lightgbm]')",
    "catboost": "pip install 'ml-api[catboost]' (in a checkout: .venv/bin/python -m pip install "
    "-c constraints.txt -e '.[catboost]')",
}
"""How to install the extra that reads each library's files."""

CLASSES_NOTE = (
    "the library's class indices 0..k-1: a native model file keeps no class labels (save the "
    "scikit-learn object with joblib to keep yours)"
)


def is_native(path: Path) -> bool:
    """Whether ``path`` is named like a native model file (by suffix)."""
    return path.suffix.lower() in NATIVE_SUFFIXES


def read_native(path: Path) -> Source:
    """Read an XGBoost or LightGBM native model file as its scikit-learn interface.

    Args:
        path: ``.json``/``.ubj`` (XGBoost) or ``.txt`` (LightGBM).

    Returns:
        The model (``XGBClassifier``/``XGBRegressor``/``LGBMClassifier``/``LGBMRegressor``) and
        its source section (``format`` ``xgboost-json``, ``xgboost-ubj`` or ``lightgbm-txt``).

    Raises:
        ImportRefused: The library is not installed (with the install line), the file is not
            a model of it, or its objective is neither classification nor regression.
    """
    library = NATIVE_SUFFIXES[path.suffix.lower()]
    if importlib.util.find_spec(library) is None:
        raise ImportRefused(
            f"{path} is named like a {library} model file; reading it needs {library}: "
            f"{INSTALL[library]}"
        )
    read = {"xgboost": _xgboost, "lightgbm": _lightgbm, "catboost": _catboost}[library]
    model = read(path)
    info: dict[str, Any] = {
        "format": f"{library}-{path.suffix.lower().lstrip('.')}",
        "file": path.name,
        "sha256": sha256_file(path),
        "reads": "the library's own model file: no code runs on load",
    }
    return Source(model=model, info=info)


def _refused(path: Path, library: str, exc: Exception) -> ImportRefused:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    # XGBoost prefixes its messages with "[hh:mm:ss] /source/file.h:88: "
    reason = re.sub(r"^\[[\d:]+\] \S+:\d+: ", "", text)[:200]
    return ImportRefused(f"{path} is not a model file {library} can read ({reason})")


def _xgboost(path: Path) -> Any:
    import xgboost as xgb

    try:
        booster = xgb.Booster(model_file=str(path))
        config = json.loads(booster.save_config())
    except (xgb.core.XGBoostError, ValueError) as exc:
        raise _refused(path, "XGBoost", exc) from None
    objective = str(config["learner"]["objective"]["name"])
    if objective.startswith(("binary:", "multi:")):
        model: Any = xgb.XGBClassifier()
    elif objective.startswith(("reg:", "count:")):
        model = xgb.XGBRegressor()
    else:
        raise _objective_refused(path, "XGBoost", objective)
    try:
        model.load_model(str(path))
    except (xgb.core.XGBoostError, TypeError, ValueError) as exc:
        raise _refused(path, "XGBoost", exc) from None
    return model


def _lightgbm(path: Path) -> Any:
    import lightgbm as lgb
    from sklearn.preprocessing import LabelEncoder

    try:
        booster = lgb.Booster(model_file=str(path))
        dumped = booster.dump_model(num_iteration=0)
    except (lgb.basic.LightGBMError, ValueError) as exc:
        raise _refused(path, "LightGBM", exc) from None
    objective = str(dumped.get("objective", "")).split(" ")[0]
    names = booster.feature_name()
    if objective in ("binary", "multiclass", "multiclassova", "cross_entropy"):
        n_classes = int(dumped.get("num_class", 1)) if objective.startswith("multi") else 2
        model: Any = lgb.LGBMClassifier(objective=objective)
        model._classes = np.arange(n_classes)
        model._n_classes = n_classes
        model._le = LabelEncoder().fit(model._classes)
    elif objective in ("regression", "regression_l1", "huber", "fair", "poisson", "quantile",
                       "mape", "gamma", "tweedie"):  # fmt: skip
        model = lgb.LGBMRegressor(objective=objective)
    else:
        raise _objective_refused(path, "LightGBM", objective or "none")
    # The scikit-learn interface over the file's booster, as fit() leaves it (LightGBM 4.x).
    model._Booster = booster
    model._objective = objective
    model._n_features = model._n_features_in = booster.num_feature()
    model._fitted_with_feature_names = not all(n.startswith("Column_") for n in names)
    model.fitted_ = True
    return model


CATBOOST_CLASSIFICATION = ("Logloss", "CrossEntropy", "MultiClass", "MultiClassOneVsAll")
"""CatBoost loss functions of a classifier."""
CATBOOST_REGRESSION = ("RMSE", "MAE", "Quantile", "MAPE", "Poisson", "Tweedie", "Huber",
                       "LogLinQuantile", "Expectile", "Lq", "LogCosh", "Cox", "Fair")  # fmt: skip
"""CatBoost loss functions of a regressor (one target); others (ranking, multi-target) are
refused."""


def _catboost(path: Path) -> Any:
    import catboost as cb

    from ml_api.importing.catboost_model import (
        CatBoostClassifierModel,
        CatBoostModel,
        CatBoostRegressorModel,
    )

    try:
        own = cb.CatBoost()
        own.load_model(str(path), format="cbm")
    except (cb.CatBoostError, ValueError) as exc:
        raise _refused(path, "CatBoost", exc) from None
    loss = str(own.get_all_params().get("loss_function", "")).split(":")[0]
    if loss in CATBOOST_CLASSIFICATION:
        booster: Any = cb.CatBoostClassifier()
        wrapper: type[CatBoostModel] = CatBoostClassifierModel
    elif loss in CATBOOST_REGRESSION:
        booster = cb.CatBoostRegressor()
        wrapper = CatBoostRegressorModel
    else:
        raise _objective_refused(path, "CatBoost", loss or "none")
    booster.load_model(str(path), format="cbm")
    return wrapper(booster)


def _objective_refused(path: Path, library: str, objective: str) -> ImportRefused:
    return ImportRefused(
        f"{path}: the {library} model's objective is {objective!r}; ml-api serves classification "
        f"and regression models"
    )


def check_against_booster(model: Any, rows: Any, classes: list[Any] | None) -> None:
    """Refuse a model whose scikit-learn interface disagrees with its library's own booster.

    Args:
        model: What :func:`read_native` built.
        rows: The import data's features, shape ``(n_rows, n_features)``.
        classes: The model's classes (``None`` for a regressor).

    Raises:
        ImportRefused: The predictions differ on some row (one line naming it).
    """
    module = type(model).__module__.split(".")[0]
    if hasattr(model, "booster") and type(model.booster).__module__.startswith("catboost"):
        # CatBoost's own answer: its probabilities, or its prediction (an exponent for Poisson)
        own = model.booster
        raw = own.predict(rows, prediction_type="Probability") if classes else own.predict(rows)
    elif module == "xgboost":
        import xgboost as xgb

        booster = model.get_booster()
        raw = booster.predict(xgb.DMatrix(rows, enable_categorical=True))
    else:
        raw = model.booster_.predict(rows)
    if classes is not None:
        mine = model.predict_proba(rows)
        raw = np.asarray(raw)
        if raw.ndim == 1:  # binary: the positive class's probability
            raw = np.column_stack([1 - raw, raw])
    else:
        mine = model.predict(rows)
    same = np.isclose(np.asarray(mine, dtype=float), np.asarray(raw, dtype=float), atol=1e-7)
    if not same.all():
        row = int(np.flatnonzero(~same.reshape(len(same), -1).all(axis=1))[0])
        raise ImportRefused(
            f"the {type(model).__name__} read from the native file disagrees with the "
            f"library's own booster on data row {row + 1}: ml-api cannot serve it faithfully; "
            f"save the scikit-learn object with joblib instead"
        )
