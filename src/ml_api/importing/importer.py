"""Turn a model fitted elsewhere, plus sample data, into an ordinary verified artifact version.

The steps, each of which can refuse the import (:class:`ImportRefused`, one line) before anything
is written:

1. the model is a fitted scikit-learn-interface estimator (``check_model``);
2. the data has rows, the target column (if named) exists;
3. the feature order and names come from the model's ``feature_names_in_`` (else an MLflow
   signature, else the data's columns), and the data must hold them all (or, for a model without
   names, exactly ``n_features_in_`` columns besides the target);
4. kinds, ranges and nullability come from the data, categories from the model's own encoder
   where it has one (:mod:`ml_api.importing.inspection`); a feature with no value in any data
   row is refused, one with a single distinct value is named in the card
   (:mod:`ml_api.importing.evidence`);
5. up to :data:`~ml_api.importing.serve_check.SERVE_CHECK_ROWS` data rows go through the
   server's own path (JSON values, schema validation, assembly,
   :class:`~ml_api.core.runtimes.predictor.Predictor`) and must give what the model's own
   ``predict``/``predict_proba`` give on the same rows (:mod:`ml_api.importing.serve_check`);
6. metrics on the import data when a target is given; then
   :func:`~ml_api.core.model.artifact.save_artifact` writes the version atomically.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ml_api.core.model.artifact import CODE_DIR, Format, save_artifact
from ml_api.core.model.card import ImportedCard, InputLayout, MissingValues
from ml_api.core.model.profile import PROFILE_FILE, build_profile
from ml_api.core.model.schema import CATEGORY_DTYPE, Feature, FeatureSchema, is_code
from ml_api.core.model.skops_trust import SKOPS_NODE_TYPES, skops_refusal, skops_refused
from ml_api.core.wording import describe_model
from ml_api.importing import custom_code, evidence, inspection, notes
from ml_api.importing import native as native_file
from ml_api.importing.sample_data import read_data, value_columns
from ml_api.importing.serve_check import has_proba, own_predictions, serve_check
from ml_api.importing.sources import ImportRefused, Source, from_object, read_source
from ml_api.onnx_export import export_onnx
from ml_api.scoring.cells import NA_CELLS

PROBABILITIES_UNAVAILABLE = (
    "unavailable: the model has no predict_proba, so answers carry labels only (V1 without "
    "'probabilities', V2 without the 'probabilities' output, no probability_ columns in batch)"
)
"""The card's ``probabilities`` entry for a classifier without ``predict_proba``."""

METRICS_ON = (
    "the import data: it may include rows the model was trained on, so these are not held-out "
    "estimates"
)


@dataclass(frozen=True)
class ImportResult:
    """What an import produced.

    Attributes:
        path: The new artifact version directory.
        card: The new version's card as built (``metadata.json`` adds name, version, time,
            hashes and library versions).
    """

    path: Path
    card: ImportedCard

    @property
    def metadata(self) -> dict[str, Any]:
        """The card's JSON form (:attr:`card` as ``metadata.json`` holds it, less save time's)."""
        return self.card.to_dict()

    @property
    def metrics(self) -> dict[str, float] | None:
        """Metrics on the import data (``None`` without a target column)."""
        return self.card.metrics


def save_model(
    model: Any,
    data: pd.DataFrame | str | Path | None = None,
    *,
    name: str,
    target: str | None = None,
    model_root: str | Path | None = None,
    fmt: Format = "joblib",
    code_paths: Sequence[str | Path] = (),
    na_values: Sequence[str] | None = None,
) -> ImportResult:
    """Save a fitted model as a new version of an ml-api model, ready for ``ml-api serve``.

    For notebooks: ``ml_api.save_model(pipeline, df, name="churn", target="churned")``.

    Args:
        model: A fitted scikit-learn estimator or ``Pipeline``, or the scikit-learn interface of
            an XGBoost or LightGBM model (classifier or regressor).
        data: Sample rows, shape ``(n_rows, n_columns)``: a DataFrame or a CSV path. It gives the
            kinds, ranges and nullability of the features (the model is never refitted).
        name: Model name (letters, digits, ``-``, ``_``, ``.``).
        target: Target column in ``data``; then metrics on it go into the card.
        model_root: Where artifacts go (default: ``ML_API_MODEL_ROOT``, else ``./models`` of the
            checkout; see :class:`ml_api.settings.Settings`).
        fmt: Artifact format, ``"joblib"`` or ``"skops"`` (scikit-learn-only models).
        code_paths: The model's own modules (``.py`` files or package directories) its classes
            come from: copied into the version and importable whenever it loads
            (:mod:`ml_api.importing.custom_code`).
        na_values: The cells that mean missing in a CSV (``--na-values``; ``None``: pandas'
            defaults, :data:`~ml_api.scoring.cells.NA_CELLS`): read so in a ``data`` CSV,
            recorded in the card (``missing_values``), and used again to read scoring files. A
            cell that is a category of the model's encoder (``NA``: North America) or a text
            column's cell is never missing.

    Returns:
        The new version's path and card. What ``ml-api import`` prints about it (names from
        the data's columns, unseen categories, the runtime that serves it...) is issued as
        :class:`~ml_api.importing.notes.ImportNote` warnings, one per line.

    Raises:
        ImportRefused: The model or data cannot be served (see the module docstring), or a code
            path is not a module (see :func:`~ml_api.importing.custom_code.read_code`); nothing
            was written.
    """
    code = custom_code.read_code(code_paths)
    result = _import(
        from_object(model), data, "the object", name, target, model_root, fmt, code, na_values
    )
    notes.warn_notes(result.card)
    return result


def import_model(
    path: str | Path,
    data: pd.DataFrame | str | Path | None = None,
    *,
    name: str,
    target: str | None = None,
    model_root: str | Path | None = None,
    fmt: Format = "joblib",
    trust: Sequence[str] = (),
    allow_version_mismatch: bool = False,
    code_paths: Sequence[str | Path] = (),
    na_values: Sequence[str] | None = None,
) -> ImportResult:
    """Import a model file or MLflow model directory (what ``ml-api import`` runs).

    Args:
        path: A joblib/pickle file, a skops file, XGBoost's ``.json``/``.ubj`` or LightGBM's
            ``.txt`` model file, or an MLflow model directory (``sklearn``, ``xgboost`` or
            ``lightgbm`` flavor).
        data: As in :func:`save_model`; for an MLflow model, its input example when ``None``.
        name: See :func:`save_model`.
        target: See :func:`save_model`.
        model_root: See :func:`save_model`.
        fmt: See :func:`save_model`.
        trust: Type names a skops file may hold besides the ones skops trusts.
        allow_version_mismatch: Import a model pickled by another scikit-learn major.minor
            (off by default); the card then records the version that pickled it, and serving
            it needs ``ML_API_ALLOW_VERSION_MISMATCH=true``.
        code_paths: See :func:`save_model`; importable while the file is read.
        na_values: See :func:`save_model`.

    Returns:
        The new version's path and card.

    Raises:
        ImportRefused: See :func:`save_model`, and a file that is missing, not a model, needs
            a module that is not installed, holds types skops does not trust, or was pickled by
            another scikit-learn major.minor (unless ``allow_version_mismatch``).
    """
    code = custom_code.read_code(code_paths)
    with custom_code.importable(code):
        source = read_source(Path(path), trust, allow_version_mismatch=allow_version_mismatch)
    return _import(source, data, str(Path(path)), name, target, model_root, fmt, code, na_values)


def _import(
    source: Source,
    data: pd.DataFrame | str | Path | None,
    where: str,
    name: str,
    target: str | None,
    model_root: str | Path | None,
    fmt: Format,
    code: custom_code.CodeFiles | None = None,
    na_values: Sequence[str] | None = None,
) -> ImportResult:
    model = source.model
    inspection.check_model(model, where)
    inspection.check_single_output(model, where)
    task, classes = inspection.task_and_classes(model, where)
    frame, data_info = read_data(data, source, na_values, value_columns(model, source, target))
    if target is not None and target not in frame.columns:
        columns = ", ".join(map(str, frame.columns))
        raise ImportRefused(f"target column {target!r} is not in the data; its columns: {columns}")
    X = frame.drop(columns=[target]) if target is not None else frame
    names, names_from = _feature_names(model, source, X)
    X = X[names]
    one_column = inspection.takes_one_column(model)
    if one_column is not None:
        _check_one_column(one_column, names, target)
    evidence.refuse_empty(X, f"the data ({data_info['file'] or 'DataFrame'})")
    native = inspection.native_categories(model, names, X)
    X = _as_native_categoricals(X, native)
    model_categories = {**inspection.encoder_categories(model, names), **native}
    texts = inspection.text_columns(model, names)
    schema, categories_from = _schema(X, model_categories, source.optional, texts)
    thin = evidence.thin_evidence(X, schema, model_categories)
    array_input = inspection.feature_names(model) is None and all(
        f.kind == "numeric" or f.is_coded for f in schema.features
    )
    layout: InputLayout = (
        "column" if one_column is not None else "array" if array_input else "frame"
    )
    card = ImportedCard(
        task=task,
        estimator="imported",
        estimator_class=type(inspection.final_estimator(model)).__name__,
        target=target,
        input=layout,
        schema=schema,
        classes=classes,
        probabilities=(has_proba(model) or PROBABILITIES_UNAVAILABLE)
        if task == "classification"
        else None,
        source=source.info,
        code={"modules": custom_code.modules(code), "directory": CODE_DIR} if code else None,
        provenance=_provenance(model, source, schema, names_from, categories_from, task, texts),
        import_data={
            **data_info,
            "ignored_columns": [c for c in frame if c not in {*names, target}],
            **({"thin_evidence": thin} if thin else {}),
        },
        missing_values=MissingValues(
            tokens=sorted(NA_CELLS if na_values is None else set(na_values)),
            cells=frame.attrs.get("missing_cells", {}),
        ),
    )
    # The model's own predictions are taken on the data as given (an array for a model fitted
    # without names), so a column type the server would pass differently shows up as a difference.
    table: pd.DataFrame | np.ndarray = X.to_numpy() if array_input else X
    reference = X[names[0]] if one_column else table  # a 1-D model takes the column itself
    if "reads" in source.info:  # a native file: its scikit-learn interface against the booster
        native_file.check_against_booster(model, reference, classes)
        if not str(source.info["format"]).startswith("catboost"):  # CatBoost keeps its labels
            note = native_file.CLASSES_NOTE
            card = replace(card, provenance={**card.provenance, "classes": note})
    checked = serve_check(model, card, X, reference)
    import_data = {**card.import_data, "served_check_rows": checked}
    if target is not None:
        metrics = _metrics(model, task, classes, reference, frame[target])
        import_data["rows_with_target"] = int(frame[target].notna().sum())
        card = replace(card, metrics=metrics, metrics_on=METRICS_ON)
    card = replace(card, import_data=import_data)
    if source.info.get("format") == "python":  # a notebook's object: its modules may not travel
        custom_code.check_provided(inspection.objects(model), code or {})
    skops_trusted = _skops_trusted(source)
    if fmt == "skops":
        _check_skops_format(model, skops_trusted)
    # ONNX form, served where it passes the gate on every import row (ml_api.onnx_export).
    onnx = export_onnx(model, schema, table, array_input=array_input)
    card = onnx.apply(card)
    root = Path(model_root) if model_root is not None else _default_model_root()
    # The reference profile of the import data, against which serving measures drift.
    own, _ = own_predictions(model, reference, len(X), None)  # labels only
    profile = build_profile(
        schema, X, np.ravel(own), classifier=task == "classification", source="import"
    )
    try:
        path = save_artifact(
            model,
            model_root=root,
            name=name,
            card=card,
            fmt=fmt,
            model_libraries=inspection.model_libraries(model),
            forms=onnx.forms(),
            skops_trusted=skops_trusted,
            fitted_with=source.info.get("fitted_with"),
            files={**custom_code.artifact_files(code or {}), PROFILE_FILE: profile.to_bytes()},
        )
    except ValueError as exc:
        raise ImportRefused(str(exc)) from None
    return ImportResult(path=path, card=card)


def _provenance(
    model: Any,
    source: Source,
    schema: FeatureSchema,
    names_from: str,
    categories_from: dict[str, str],
    task: str,
    texts: Mapping[str, str],
) -> dict[str, Any]:
    """Where each part of the card came from: feature names, kinds, categories, versions, task.

    The schema's categories are enforced (422 for an unseen one) even where the model's own
    encoder would score it: said at import, one line per feature, and kept here.
    """
    lenient = inspection.lenient_encoders(model, schema.names)
    unseen = {
        f.name: (
            f"{f.name}: the model's encoder "
            f"{'ignores' if lenient[f.name] in ('ignore', 'warn') else 'accepts'} unseen "
            f"categories (handle_unknown={lenient[f.name]!r}); ml-api refuses them with 422 "
            f"(allowed: the encoder's categories)"
        )
        for f in schema.features
        if f.kind == "categorical" and f.name in lenient
    }
    optional = " (and null for the MLflow signature's optional columns)" if source.optional else ""
    return {
        "model": describe_model(model),
        "feature_names_and_order": names_from,
        "kinds_ranges_nullability": "the import data" + optional,
        "categories": categories_from,
        **({"text": dict(texts)} if texts else {}),
        **({"unseen_categories": unseen} if unseen else {}),
        **(
            {"versions": _versions_origin(source.info["fitted_with"])}
            if "fitted_with" in source.info
            else {}
        ),
        "task": _task_origin(model, task),
    }


def _versions_origin(fitted_with: dict[str, str]) -> str:
    from ml_api.core.model.libraries import installed_version

    return ", ".join(
        f"{lib} {v}: the version that pickled the model (scikit-learn's "
        f"InconsistentVersionWarning), imported with {installed_version(lib)}"
        for lib, v in fitted_with.items()
    )


def _task_origin(model: Any, task: str) -> str:
    if task == "regression":
        return "the model (a regressor without classes_)"
    if has_proba(model):
        return "the model (classes_ and predict_proba)"
    return "the model (classes_; no predict_proba, so labels only)"


def _default_model_root() -> Path:
    from ml_api.settings import Settings

    return Settings().resolved_model_root()


def _feature_names(model: Any, source: Source, X: pd.DataFrame) -> tuple[list[str], str]:
    names = inspection.feature_names(model)
    origin = "the model's feature_names_in_"
    if names is None and source.signature is not None:
        names, origin = list(source.signature), "the MLflow model's signature"
    if names is not None:
        missing = [n for n in names if n not in X.columns]
        if missing:
            raise ImportRefused(
                f"the data lacks {len(missing)} of the model's features ({origin}): "
                f"{', '.join(missing)}"
            )
        return names, origin
    names = [str(c) for c in X.columns]
    expected = inspection.n_features(model)
    if expected is not None and expected != len(names):
        raise ImportRefused(
            f"the model takes {expected} features but the data has {len(names)} columns besides "
            f"the target ({', '.join(names)}); drop the extra ones or name the target"
        )
    return names, "the data's columns, in order (the model was fitted without feature names)"


def _check_one_column(vectorizer: str, names: list[str], target: str | None) -> None:
    """Refuse data that does not hold exactly the one text column a 1-D text pipeline reads."""
    if len(names) == 1:
        return
    besides = "besides the target" if target is not None else "(no --target named)"
    raise ImportRefused(
        f"the model's first step is a {vectorizer}, which reads one column of text (the "
        f"pipeline was fitted on a column such as df['review']), but the data has {len(names)} "
        f"columns {besides}: {', '.join(names)}; give data with the text column"
        + (" only" if target is not None else " and name the target with --target")
    )


def _as_native_categoricals(X: pd.DataFrame, native: inspection.Categories) -> pd.DataFrame:
    if not native:
        return X
    X = X.copy()
    for column, (cats, _) in native.items():
        if _all_codes(cats):  # categories that are numbers: the values stay numbers
            values = [np.nan if pd.isna(v) else v for v in X[column].astype(object)]
        else:
            values = [v if pd.isna(v) else str(v) for v in X[column].astype(object)]
        X[column] = pd.Categorical(values, categories=cats)
    return X


def _schema(
    X: pd.DataFrame,
    model_categories: inspection.Categories,
    optional: frozenset[str],
    texts: Mapping[str, str],
) -> tuple[FeatureSchema, dict[str, str]]:
    """The data's schema with the model's own categories, and where each feature's came from.

    A column a text vectorizer reads (``texts``) is a text feature, whatever its values.
    """
    features, origins = [], {}
    for f in FeatureSchema.infer(X).features:
        if f.name in optional and not f.nullable:
            f = dataclasses.replace(f, nullable=True)
        if f.name in texts:
            features.append(Feature.text(f.name, str(X[f.name].dtype), f.nullable))
            continue
        cats = model_categories.get(f.name, ([], ""))[0]
        if _all_codes(cats):
            # The model's encoder was fitted on numbers (a zip code, a store id): a categorical
            # feature over those numbers, whatever kind the data suggests, so an unseen code is
            # refused instead of scored as "no category" (or crashing the encoder).
            native = isinstance(X[f.name].dtype, pd.CategoricalDtype)
            dtype = CATEGORY_DTYPE if native else str(X[f.name].dtype)
            f = Feature.coded(f.name, dtype, f.nullable, cats)
            where = model_categories[f.name][1]
            origins[f.name] = f"{where} (numeric codes: sent as JSON numbers)"
        elif f.kind == "categorical":
            if f.name in model_categories:
                cats, origins[f.name] = model_categories[f.name]
                f = dataclasses.replace(f, categories=tuple(cats))
            else:
                origins[f.name] = "the import data (no encoder of the model names them)"
            if isinstance(X[f.name].dtype, pd.CategoricalDtype):
                f = dataclasses.replace(f, dtype=CATEGORY_DTYPE)
        features.append(f)
    return FeatureSchema(features), origins


def _all_codes(cats: Sequence[Any]) -> bool:
    """Whether a model's categories are numbers (then the feature is numeric-coded)."""
    return bool(cats) and all(is_code(c) for c in cats)


def _metrics(
    model: Any, task: str, classes: list[Any] | None, reference: Any, y: pd.Series
) -> dict[str, float]:
    from ml_api.train import evaluate

    known = y.notna().to_numpy()
    rows = reference[known] if isinstance(reference, np.ndarray) else reference.loc[known]
    y_true = y[known].reset_index(drop=True)
    predicted = model.predict(rows)
    if task == "classification":
        allowed = {str(c) for c in classes or ()}
        unknown = sorted({str(v) for v in y_true} - allowed)
        if unknown:
            raise ImportRefused(
                f"the target column holds values that are not the model's classes "
                f"({', '.join(unknown[:10])}; classes: {', '.join(sorted(allowed))})"
            )
        y_true, predicted = y_true.astype(str), np.asarray([str(p) for p in predicted])
    return evaluate(task, y_true, predicted)  # type: ignore[arg-type]


def _skops_trusted(source: Source) -> list[str]:
    """Types a skops artifact of this model may hold beyond what skops and ml-api trust.

    From a skops file: what the user trusted by name. From a pickle, joblib, MLflow or Python
    object (code already ran to read it): the tree node types, which it holds as fitted.
    """
    if source.info.get("format") == "skops":
        return list(source.info.get("trusted_types", ()))
    return list(SKOPS_NODE_TYPES)


def _check_skops_format(model: Any, trusted: Sequence[str]) -> None:
    import skops.io as sio

    refused = skops_refused(sio.get_untrusted_types(data=sio.dumps(model)), trusted)
    if refused:
        raise ImportRefused(
            f"the skops format stores only types skops trusts, and this model holds "
            f"{skops_refusal(refused)}: use the joblib format"
        )
