"""What a fitted model says about itself: task, classes, feature names, categories, libraries.

Everything here reads the model, never the data: the task from ``classes_``/``predict_proba``, the
feature names from ``feature_names_in_``, the categories from the model's own encoders
(``OneHotEncoder``/``OrdinalEncoder``, anywhere in a ``Pipeline``/``ColumnTransformer``) or from
LightGBM's and XGBoost's native categorical support. Each result says where it came from, for the
card's ``provenance``.
"""

from __future__ import annotations

import contextlib
import itertools
import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import is_regressor
from sklearn.compose import ColumnTransformer
from sklearn.exceptions import NotFittedError
from sklearn.feature_extraction.text import CountVectorizer, HashingVectorizer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder
from sklearn.utils.validation import check_is_fitted

from ml_api.core.wording import count, describe_model
from ml_api.importing.sources import ImportRefused

MODEL_LIBRARIES = ("xgboost", "lightgbm", "catboost")
"""Libraries besides scikit-learn whose scikit-learn-interface models ml-api imports."""

Categories = dict[str, tuple[list[Any], str]]
"""Feature name to (categories in the model's order, where they came from).

Categories are strings, or plain numbers (``int``/``float``) where the model's encoder was fitted
on numbers (integer codes such as a zip code or a store id): those become numeric-coded
categorical features (:attr:`ml_api.core.model.schema.Feature.codes`)."""


def check_model(model: Any, where: str) -> None:
    """Refuse an object that is not a fitted scikit-learn-interface model.

    Args:
        model: What was loaded.
        where: The file or ``"the object"``, for the message.

    Raises:
        ImportRefused: No ``predict`` (a dict, a DataFrame, ...), no ``fit`` (not an estimator),
            or not fitted.
    """
    kind = type(model).__name__
    if not callable(getattr(model, "predict", None)) or isinstance(model, pd.DataFrame):
        raise ImportRefused(
            f"{where} holds a {kind}, not a fitted model (it has no predict method); save the "
            f"estimator or pipeline itself"
        )
    if not callable(getattr(model, "fit", None)):
        raise ImportRefused(f"{where} holds a {kind}, which is not a scikit-learn-style estimator")
    try:
        check_is_fitted(model)
    except NotFittedError:
        raise ImportRefused(
            f"the {kind} in {where} is not fitted: call fit(X, y) before saving it"
        ) from None


ONE_TARGET = "ml-api serves one target per model: fit one model per target and import each"
"""The route a refused multi-output model is given."""


def check_single_output(model: Any, where: str) -> None:
    """Refuse a model that says it predicts several targets (classes per column, ``n_outputs_``).

    The decisive check is on what the model outputs for the import data
    (:func:`check_output_shape`); this one reads the fitted attributes first, so a classifier
    fitted on several label columns is refused before anything else touches its ``classes_``.

    Raises:
        ImportRefused: ``classes_`` is a list of arrays (one per label column, as
            ``RandomForestClassifier`` or ``MultiOutputClassifier`` fitted on ``y`` of shape
            ``(n, k)``), or ``n_outputs_`` is above 1.
    """
    kind = type(final_estimator(model)).__name__
    classes = getattr(model, "classes_", None)
    if isinstance(classes, list | tuple) or (
        isinstance(classes, np.ndarray)
        and classes.dtype == object
        and classes.ndim == 1
        and len(classes)
        and all(isinstance(c, np.ndarray) for c in classes)
    ):
        raise ImportRefused(
            f"the {kind} in {where} was fitted on {len(classes)} label columns (its classes_ is "
            f"one array per column): {ONE_TARGET}"
        )
    outputs = getattr(final_estimator(model), "n_outputs_", 1)
    if isinstance(outputs, int | np.integer) and outputs > 1:
        raise ImportRefused(f"the {kind} in {where} predicts {outputs} targets: {ONE_TARGET}")


def check_output_shape(model: Any, output: Any, rows: int, method: str = "predict") -> None:
    """Refuse a model whose output on ``rows`` input rows is not one value per row.

    Args:
        model: The fitted model (named in the message).
        output: What ``model.predict`` (or ``predict_proba``) returned for ``rows`` rows.
        rows: How many input rows it was given.
        method: The method that returned ``output``.

    Raises:
        ImportRefused: The output is not an array of ``rows`` rows, or has more than one
            value per row (``predict``), or is not ``(rows, n_classes)`` (``predict_proba``).
    """
    who = describe_model(model)
    if isinstance(output, list | tuple):
        raise ImportRefused(
            f"{who}: {method} returns {len(output)} arrays (one per target): {ONE_TARGET}"
        )
    shape = np.shape(output)
    if not shape or shape[0] != rows:
        got = count(shape[0], "row") if shape else "a single value"
        raise ImportRefused(
            f"{who}: {method} gives {got} for {count(rows, 'input row')}: ml-api serves one "
            f"prediction per input row{_row_count_cause(model)}"
        )
    if method == "predict" and len(shape) > 1:
        if len(shape) == 2 and shape[1] == 1:
            raise ImportRefused(
                f"{who}: predict gives a column of shape {shape}, not one value per "
                f"row: it was fitted on a 2-D target of one column (y = df[['target']], or an "
                f"array of shape (n, 1)); refit it on the 1-D column (y = df['target'], or "
                f"y.ravel()) and import it again"
            )
        per_row = int(np.prod(shape[1:]))
        raise ImportRefused(
            f"{who}: predict gives {per_row} values per row (shape {shape}): {ONE_TARGET}"
        )


TEXT_VECTORIZERS = (CountVectorizer, HashingVectorizer)
"""scikit-learn's text vectorizers (``TfidfVectorizer`` is a ``CountVectorizer``): a column one
of them reads is a text feature, and it reads a 1-D column of strings."""


def _row_count_cause(model: Any) -> str:
    """The likely cause of a row count that differs, and its fix, when the model suggests one."""
    vectorizer = next((o for o in objects(model) if isinstance(o, TEXT_VECTORIZERS)), None)
    if vectorizer is None:
        return ""
    name = type(vectorizer).__name__
    return (
        f". Likely cause: the {name} was given a table (a DataFrame, or a list of columns) and "
        f"iterated its column names instead of its rows. Fix: wrap it in a ColumnTransformer on "
        f"the one column (ColumnTransformer([('text', {name}(), 'review')]), the column name as "
        f"a string, not a list), or make it the pipeline's first step fitted on the column "
        f"itself (df['review']) and import data holding that column (and the target) only: "
        f"ml-api then feeds it the column"
    )


def objects(model: Any) -> list[Any]:
    """The model and every estimator and parameter inside it (``get_params(deep=True)``)."""
    objects = [model]
    with contextlib.suppress(Exception):  # a foreign estimator's get_params may fail
        objects += list(model.get_params(deep=True).values())
    return objects


def text_columns(model: Any, columns: Sequence[str]) -> dict[str, str]:
    """Input columns a text vectorizer reads as they are, and where it sits.

    A column counts when a :data:`TEXT_VECTORIZERS` instance sees the raw column: a
    ``ColumnTransformer``'s transformer for one column named as a string (or a pipeline
    starting with the vectorizer there), or the first step of the model's pipeline, which then
    takes one 1-D column (see :func:`takes_one_column`).

    Args:
        model: The fitted model.
        columns: The model's input columns, in order.

    Returns:
        Column name to a phrase naming the vectorizer and its place, for the card's provenance.
    """
    out: dict[str, str] = {}
    _walk_text(model, list(columns), "the model", out)
    return out


def takes_one_column(model: Any) -> str | None:
    """The text vectorizer's class name when the model's first step is one (a 1-D input).

    ``Pipeline([("tfidf", TfidfVectorizer()), ("clf", ...)]).fit(df["review"], y)`` takes one
    column of strings, not a table: given a DataFrame it would iterate the column names.
    """
    first = model
    while isinstance(first, Pipeline):
        steps = [s for _, s in first.steps if s is not None and s != "passthrough"]
        if not steps:
            return None
        first = steps[0]
    return type(first).__name__ if isinstance(first, TEXT_VECTORIZERS) else None


def _walk_text(est: Any, columns: list[str], where: str, out: dict[str, str]) -> None:
    if isinstance(est, Pipeline):
        steps = [(n, s) for n, s in est.steps if s is not None and s != "passthrough"]
        if steps:
            _walk_text(steps[0][1], columns, f"{where}, step {steps[0][0]!r}", out)
    elif isinstance(est, ColumnTransformer):
        for name, transformer, cols in est.transformers_:
            if isinstance(transformer, str) or not isinstance(cols, str | int | np.integer):
                continue  # a list of columns is a table: a vectorizer there is not fed text
            picked = _column_names(cols, columns)
            if picked:
                _walk_text(transformer, picked, f"{where}, ColumnTransformer {name!r}", out)
    elif isinstance(est, TEXT_VECTORIZERS) and len(columns) == 1:
        out.setdefault(columns[0], f"{type(est).__name__} in {where}")


def final_estimator(model: Any) -> Any:
    """The last step of a (nested) Pipeline, else the model itself."""
    while isinstance(model, Pipeline):
        model = model.steps[-1][1]
    return model


def task_and_classes(model: Any, where: str) -> tuple[str, list[Any] | None]:
    """Classification or regression, from the model itself.

    Returns:
        ``("classification", classes)`` for a model with ``classes_`` (in ``predict_proba``'s
        column order, as JSON types), else ``("regression", None)``.

    Raises:
        ImportRefused: The model is neither a classifier nor a regressor (a clusterer, ...).
    """
    try:
        classes = model.classes_
    except AttributeError:
        classes = None
    if classes is not None:
        return "classification", [c.item() if hasattr(c, "item") else c for c in classes]
    if is_regressor(final_estimator(model)) or is_regressor(model):
        return "regression", None
    raise ImportRefused(
        f"the {type(final_estimator(model)).__name__} in {where} is neither a classifier "
        f"(classes_) nor a regressor: ml-api serves classification and regression models"
    )


def feature_names(model: Any) -> list[str] | None:
    """The names the model was fitted with (``feature_names_in_``), or ``None`` (on arrays)."""
    names = getattr(model, "feature_names_in_", None)
    if names is None:
        names = getattr(final_estimator(model), "feature_names_in_", None)
        if names is not None and isinstance(model, Pipeline):
            names = None  # a later step's names are not the pipeline's inputs
    return [str(n) for n in names] if names is not None else None


def n_features(model: Any) -> int | None:
    """How many input columns the model takes (``n_features_in_``), if it says."""
    n = getattr(model, "n_features_in_", None)
    return int(n) if n is not None else None


def model_libraries(model: Any) -> list[str]:
    """Which of :data:`MODEL_LIBRARIES` the model's estimators come from (for the version gate)."""
    found = {type(o).__module__.split(".")[0] for o in objects(model) if hasattr(o, "fit")}
    return sorted(found & set(MODEL_LIBRARIES))


def encoder_categories(model: Any, columns: Sequence[str]) -> Categories:
    """Categories of the model's own ``OneHotEncoder``/``OrdinalEncoder`` per input column.

    An encoder counts when it sees the raw column: the first step of a pipeline (after imputers),
    or a ``ColumnTransformer``'s transformer for that column.

    Args:
        model: The fitted model.
        columns: The model's input columns, in order.
    """
    out: Categories = {}
    _walk(model, list(columns), "the model", out, {})
    return out


def lenient_encoders(model: Any, columns: Sequence[str]) -> dict[str, str]:
    """Input columns whose encoder maps an unseen category to something instead of failing.

    A ``OneHotEncoder`` with ``handle_unknown`` other than ``"error"`` (``"ignore"``,
    ``"infrequent_if_exist"``, ``"warn"``) or an ``OrdinalEncoder`` with
    ``"use_encoded_value"`` would score an unseen category; ml-api still refuses it (422), so
    the importer says so per feature.

    Args:
        model: The fitted model.
        columns: The model's input columns, in order.

    Returns:
        Column name to the encoder's ``handle_unknown`` setting, for the lenient ones only.
    """
    lenient: dict[str, str] = {}
    _walk(model, list(columns), "the model", {}, lenient)
    return lenient


def _walk(
    est: Any, columns: list[str], where: str, out: Categories, lenient: dict[str, str]
) -> None:
    if isinstance(est, Pipeline):
        for step_name, step in est.steps:
            if step is None or step == "passthrough":
                continue
            if isinstance(step, SimpleImputer) and not step.add_indicator:
                continue  # keeps its columns: the next step still sees the raw ones
            _walk(step, columns, f"{where}, step {step_name!r}", out, lenient)
            return
    elif isinstance(est, ColumnTransformer):
        for name, transformer, cols in est.transformers_:
            picked = _column_names(cols, columns)
            if picked is None or isinstance(transformer, str):
                continue
            _walk(transformer, picked, f"{where}, ColumnTransformer {name!r}", out, lenient)
    elif isinstance(est, OneHotEncoder | OrdinalEncoder):
        cats = getattr(est, "categories_", None)
        if cats is None or len(cats) != len(columns):
            return
        handle = str(getattr(est, "handle_unknown", "error"))
        for column, values in zip(columns, cats, strict=True):
            out.setdefault(column, (_plain_values(values), f"{type(est).__name__} in {where}"))
            if handle != "error":
                lenient.setdefault(column, handle)


def _plain_numbers(values: list[Any]) -> bool:
    return bool(values) and not any(isinstance(v, str) for v in values)


def _plain_values(values: Any) -> list[Any]:
    """An encoder's categories without the missing marker: numbers as numbers, else strings.

    A category array of numbers (``int64``/``float64``; the encoder was fitted on integer codes)
    keeps its numbers; anything else (strings, mixed object arrays) becomes text, as before.
    """
    kept = [v for v in values if not (isinstance(v, float | np.floating) and np.isnan(v))]
    if kept and all(
        isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool | np.bool_)
        for v in kept
    ):
        return [v.item() if isinstance(v, np.generic) else v for v in kept]
    return [str(v) for v in kept]


def _column_names(cols: Any, columns: list[str]) -> list[str] | None:
    if isinstance(cols, str):
        return [cols]
    if isinstance(cols, int | np.integer):
        return [columns[int(cols)]]
    if isinstance(cols, slice):
        return columns[cols]
    values = list(cols) if isinstance(cols, list | tuple | np.ndarray | pd.Index) else None
    if not values:
        return values
    if all(isinstance(v, bool | np.bool_) for v in values) and len(values) == len(columns):
        return [c for c, keep in zip(columns, values, strict=True) if keep]
    if all(isinstance(v, int | np.integer) for v in values):
        return [columns[int(v)] for v in values]
    if all(isinstance(v, str) for v in values):
        return [str(v) for v in values]
    return None


def native_categories(model: Any, columns: Sequence[str], data: pd.DataFrame) -> Categories:
    """Features LightGBM or XGBoost take as pandas ``category`` columns, with their categories.

    Args:
        model: The fitted model (its final estimator is inspected).
        columns: The model's input columns, in order.
        data: The import data (its non-numeric columns are LightGBM's categoricals when the
            model does not say which they were).

    Raises:
        ImportRefused: A LightGBM model with pandas categoricals whose columns cannot be told.
    """
    est = final_estimator(model)
    module = type(est).__module__.split(".")[0]
    if module == "lightgbm":
        return _lightgbm_categories(est, list(columns), data)
    if module == "xgboost":
        return _xgboost_categories(est, list(columns), data)
    return {}


def _lightgbm_categories(est: Any, columns: list[str], data: pd.DataFrame) -> Categories:
    booster = est.booster_
    per_column = booster.pandas_categorical
    if not per_column:
        return {}
    infos = booster.dump_model().get("feature_infos", {})
    candidates = [c for c in columns if infos.get(c, {}).get("values")]
    if len(candidates) != len(per_column):
        candidates = [c for c in columns if not _is_numeric(data[c])]
    if len(candidates) != len(per_column):
        raise ImportRefused(
            f"the LightGBM model was fitted on {len(per_column)} pandas category columns, but "
            f"the data's non-numeric columns are {candidates}: pass the data as a DataFrame with "
            f"those columns as dtype 'category'"
        )
    where = "LightGBM's pandas_categorical (native categorical support)"
    return {c: (_plain_values(cats), where) for c, cats in zip(candidates, per_column, strict=True)}


def _xgboost_categories(est: Any, columns: list[str], data: pd.DataFrame) -> Categories:
    booster = est.get_booster()
    types = booster.feature_types or []
    categorical = [c for c, t in zip(columns, types, strict=False) if t == "c"]
    if not categorical:
        return {}
    stored = _xgboost_stored_categories(booster, len(columns))
    out: Categories = {}
    for c in categorical:
        i = columns.index(c)
        if stored is not None and stored[i]:
            out[c] = (stored[i], "XGBoost's model (native categorical support)")
        else:
            values = data[c].dropna()
            cats = values.cat.categories if isinstance(values.dtype, pd.CategoricalDtype) else None
            pool = list(cats) if cats is not None else sorted(set(values.tolist()), key=str)
            found = _plain_values(pool)  # integer codes stay numbers
            found = found if _plain_numbers(found) else sorted(found)
            out[c] = (found, "the data (the XGBoost model does not store its categories)")
    return out


def _xgboost_stored_categories(booster: Any, n: int) -> list[list[Any]] | None:
    """Categories XGBoost (3.1+) keeps in the model, decoded from its JSON form, else ``None``."""
    try:
        model = json.loads(booster.save_raw("json"))
        enc = model["learner"]["gradient_booster"]["model"]["cats"]["enc"]
    except (KeyError, TypeError, ValueError):
        return None
    if len(enc) != n:
        return None
    out = []
    for feature in enc:
        offsets, values = feature.get("offsets") or [], feature.get("values") or []
        if offsets:  # strings: UTF-8 bytes, one slice per category
            out.append([bytes(values[a:b]).decode("utf-8") for a, b in itertools.pairwise(offsets)])
        else:
            out.append(_plain_values(values))  # numbers stay numbers (integer codes)
    return out


def _is_numeric(col: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col)
