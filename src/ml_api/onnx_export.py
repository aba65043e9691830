"""Converting a fitted pipeline to ONNX, and the acceptance gate that decides whether it may serve.

``ml-api train`` (and the model importer) call :func:`export_onnx` with the fitted pipeline and
the rows it was fitted or imported with. It converts the pipeline with ``skl2onnx`` (XGBoost and
LightGBM estimators through ``onnxmltools`` where that is installed), runs the converted model with
ONNX Runtime on **every** row, and compares it with scikit-learn's own output on the same rows:

- labels must be identical on every row;
- class probabilities (or regression outputs) must agree within :data:`TOLERANCE` (absolute).

Only a model that passes is written into the artifact (``model.onnx``, its sha256 in the card);
otherwise the card says why (the converter's error, or the worst row and its difference) and the
version is served by scikit-learn. Nothing is approximated silently.

How the inputs are typed (the serving runtime, :mod:`ml_api.core.runtimes.onnx_runtime`, feeds
the same):

- an all-numeric model fitted on a float matrix (``"input": "array"`` in the card) takes one
  ``float32`` tensor ``X`` of shape ``(n_instances, n_features)``;
- a mixed-type model takes one ``(n_instances, 1)`` tensor per feature, named as the feature:
  ``float32`` for numeric features (``NaN`` where missing) and ``string`` for categorical ones,
  where the empty string ``""`` stands for a missing value (an ONNX string tensor has no ``NaN``);
  a categorical feature over numeric codes (a zip code the encoder saw as an integer) is a
  ``float32`` input like a numeric one, and the gate checks that the encoder's graph matches them.

The ONNX operators behind scikit-learn's imputers, scalers and trees compute in ``float32``, so
numeric inputs are ``float32``: scikit-learn's own trees compare in ``float32`` as well, and linear
models differ in about the 7th significant digit, well inside the gate.

A categorical ``SimpleImputer`` that treats ``NaN`` as missing (the default pipeline's) has no ONNX
form; it is converted as the same imputer with ``""`` as its missing value, which is what the
runtime feeds for a missing category, and the gate checks the result on the rows with missing
values too. A feature that has ``""`` as a real category cannot be converted this way and is
refused with that reason.

``onnx``, ``onnxruntime`` and ``skl2onnx`` are imported inside the functions here, so importing
this module costs nothing.
"""

from __future__ import annotations

import copy
import math
import re
from dataclasses import dataclass, field, replace
from importlib import metadata as importlib_metadata
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from ml_api.core.model.card import NewCard
from ml_api.core.model.schema import CATEGORY_DTYPE, FeatureKind, FeatureSchema
from ml_api.core.runtimes.onnx_runtime import onnx_input_names
from ml_api.core.wording import describe_model

NewCardT = TypeVar("NewCardT", bound=NewCard)

TOLERANCE = 1e-5
"""Largest absolute difference accepted between an ONNX and a scikit-learn probability (or
regression output) on any row (issue 11)."""

ONNX_FORM = "onnx"
"""The served form's name: the card section (``onnx``) and the file (``model.onnx``)."""
MISSING_CATEGORY = ""
"""What an ONNX string input holds where the category is missing."""

_CONVERTER_DISTS = ("onnx", "onnxruntime", "skl2onnx", "onnxmltools")


class ConversionError(RuntimeError):
    """The pipeline cannot be converted to ONNX; the message says which part and why."""


@dataclass(frozen=True)
class OnnxExport:
    """The outcome of :func:`export_onnx`.

    Attributes:
        passed: Whether the ONNX model passed the gate (and so may serve).
        reason: Why not, in one line (``None`` when it passed).
        model_bytes: The serialized ONNX model when it passed, else ``None``.
        gate: What the gate measured: ``rows`` compared, ``tolerance``, ``labels_identical``
            (classifiers), ``max_abs_diff`` and the 0-based ``worst_row``; ``None`` when the
            conversion itself failed.
        versions: Versions of the converter and runtime libraries, and the ONNX opsets used.
    """

    passed: bool
    reason: str | None
    model_bytes: bytes | None
    gate: dict[str, Any] | None
    versions: dict[str, Any] = field(default_factory=dict)

    def apply(self, card: NewCardT) -> NewCardT:
        """Record the outcome in a model card (a new card: the one given is not changed).

        Sets the card's ``onnx`` section (:meth:`card`) and its ``runtime`` (``"onnxruntime"``
        when the gate passed, else ``"scikit-learn"``: the runtime ``ML_API_RUNTIME=auto``
        serves). Train and import both call it::

            export = export_onnx(model, schema, X, array_input=...)
            card = export.apply(card)
            save_artifact(model, ..., card=card, forms=export.forms())

        Args:
            card: The card being built.

        Returns:
            The card with the ``onnx`` form section and the runtime set.
        """
        from ml_api.core.runtimes.onnx_runtime import OnnxPredictor
        from ml_api.core.runtimes.registry import FALLBACK

        runtime = OnnxPredictor.runtime if self.passed else FALLBACK.runtime
        return replace(card, forms={**card.forms, ONNX_FORM: self.card()}, runtime=runtime)

    def forms(self) -> dict[str, bytes]:
        """The served forms ``save_artifact`` writes.

        Returns:
            ``{"onnx": <bytes>}`` (saved as ``model.onnx``, the form
            :class:`~ml_api.core.runtimes.onnx_runtime.OnnxPredictor` serves) when the gate
            passed, else ``{}``.
        """
        return {ONNX_FORM: self.model_bytes} if self.model_bytes is not None else {}

    def card(self) -> dict[str, Any]:
        """The card's ``onnx`` section (``save_artifact`` adds ``file`` when the model is written).

        Returns:
            ``{"passed", "reason", "gate", "versions"}``, JSON types only.
        """
        return {
            "passed": self.passed,
            "reason": self.reason,
            "gate": self.gate,
            "versions": self.versions,
        }


TEXT_NOT_CONVERTED = (
    "text features ({}) are served by scikit-learn: ONNX's text operators tokenize in their own "
    "way (and need a system locale), so no ONNX form is made"
)
"""Why a model with a text feature has no ONNX form."""


def export_onnx(
    model: Any,
    schema: FeatureSchema,
    X: pd.DataFrame | np.ndarray,
    *,
    array_input: bool,
    tolerance: float = TOLERANCE,
) -> OnnxExport:
    """Convert a fitted pipeline to ONNX and run the acceptance gate on every row of ``X``.

    Never raises for a model it cannot convert or that fails the gate: the result says why, and
    the caller keeps scikit-learn for that version.

    Args:
        model: The fitted pipeline (or estimator) as it will be saved.
        schema: Its feature schema (names and kinds, in column order).
        X: The training (or import) rows, shape ``(n_rows, n_features)``: the coerced frame
            (``NaN`` where missing), or the float matrix for an all-numeric model.
        array_input: Whether the model takes a float matrix (``"input": "array"`` in the card).
        tolerance: Largest absolute difference accepted (default :data:`TOLERANCE`, 1e-5).

    Returns:
        The export: the ONNX bytes when it passed, the reason otherwise.
    """
    versions = _versions()
    text = [f.name for f in schema.features if f.kind is FeatureKind.TEXT]
    if text:
        return OnnxExport(False, TEXT_NOT_CONVERTED.format(", ".join(text)), None, None, versions)
    try:
        onnx_model = convert(model, schema, array_input=array_input)
    except ConversionError as exc:
        return OnnxExport(False, str(exc), None, None, versions)
    versions["opsets"] = {(o.domain or "ai.onnx"): int(o.version) for o in onnx_model.opset_import}
    model_bytes = onnx_model.SerializeToString()
    try:
        gate = check(model_bytes, model, schema, X, array_input=array_input, tolerance=tolerance)
    except Exception as exc:  # the runtime refused the converted graph: that is a failed gate
        reason = f"ONNX Runtime could not run the converted model: {_runtime_reason(exc)}"
        return OnnxExport(False, reason, None, None, versions)
    reason = gate.pop("failure", None)
    if reason is not None:
        return OnnxExport(False, reason, None, gate, versions)
    return OnnxExport(True, None, model_bytes, gate, versions)


def convert(model: Any, schema: FeatureSchema, *, array_input: bool) -> Any:
    """Convert a fitted pipeline to an ONNX ``ModelProto`` (classifiers without ZipMap).

    Args:
        model: The fitted pipeline or estimator.
        schema: Its feature schema.
        array_input: One ``(n, n_features)`` ``float32`` input ``X`` instead of one per feature.

    Returns:
        The ONNX model. Classifiers output ``label`` ``(n,)`` and ``probabilities``
        ``(n, n_classes)`` in the model's class order; regressors output ``variable`` ``(n, 1)``.

    Raises:
        ConversionError: ``skl2onnx`` (or ``onnxmltools``) is missing, or refused the model; the
            message quotes the converter's first line.
    """
    try:
        from skl2onnx import convert_sklearn
        from skl2onnx.common.data_types import FloatTensorType, StringTensorType
    except ImportError as exc:
        raise ConversionError(f"skl2onnx is not installed ({exc})") from None
    for f in schema.features:
        if f.kind == "categorical" and not f.is_coded and MISSING_CATEGORY in (f.categories or ()):
            raise ConversionError(
                f"categorical feature {f.name!r} has the empty string as a category; ONNX inputs "
                f"use it for a missing value"
            )
    if hasattr(model, "classes_") and not hasattr(model, "predict_proba"):
        raise ConversionError(
            f"{type(model).__name__} is a classifier without predict_proba: its ONNX form would "
            f"give decision scores where ml-api serves probabilities (scikit-learn serves its "
            f"labels)"
        )
    onnx_ready = _string_imputers_on_empty(model)
    estimator = onnx_ready.steps[-1][1] if hasattr(onnx_ready, "steps") else onnx_ready
    boosting = _register_boosting_converters(estimator)
    if boosting and any(f.dtype == CATEGORY_DTYPE for f in schema.features):
        raise ConversionError(
            f"{type(estimator).__name__} uses native categorical features (pandas category "
            f"columns), which onnxmltools does not convert"
        )
    # onnxmltools' boosting converters take one float matrix: a bare boosting model with named
    # numeric features is converted on a matrix "X" and gets one Concat in front (one input
    # per feature, as the runtime feeds a frame model).
    concat_front = boosting and not array_input and estimator is onnx_ready and schema.all_numeric
    if array_input or concat_front:
        inputs = [("X", FloatTensorType([None, len(schema)]))]
    else:
        inputs = [
            (
                name,
                FloatTensorType([None, 1])
                if f.kind == "numeric" or f.is_coded
                else StringTensorType([None, 1]),
            )
            for name, f in zip(onnx_input_names(schema.names), schema.features, strict=True)
        ]
    options = {id(estimator): {"zipmap": False}} if hasattr(estimator, "classes_") else None
    target_opset = None
    if boosting:
        from skl2onnx import get_latest_tested_opset_version

        # onnxmltools' tree converters write version 3 of the ai.onnx.ml domain (TreeEnsemble*)
        target_opset = {"": get_latest_tested_opset_version(), "ai.onnx.ml": 3}
        if hasattr(estimator, "get_booster"):
            # onnxmltools reads XGBoost's dump, whose features it expects as f0, f1, ...: the
            # names are the schema's business (onnx_ready is a copy)
            estimator.get_booster().feature_names = None
    try:
        onnx_model = convert_sklearn(
            onnx_ready, initial_types=inputs, options=options, target_opset=target_opset
        )
    except Exception as exc:
        raise ConversionError(_conversion_failure(model, exc)) from None
    return _with_concat_front(onnx_model, schema) if concat_front else onnx_model


def _with_concat_front(onnx_model: Any, schema: FeatureSchema) -> Any:
    """Replace the matrix input ``X`` by one ``(n, 1)`` float input per feature, concatenated."""
    from onnx import TensorProto, helper

    graph = onnx_model.graph
    internal = "X_concat"
    for node in graph.node:
        node.input[:] = [internal if name == "X" else name for name in node.input]
    del graph.input[:]
    names = onnx_input_names(schema.names)
    graph.input.extend(
        helper.make_tensor_value_info(n, TensorProto.FLOAT, [None, 1]) for n in names
    )
    graph.node.insert(0, helper.make_node("Concat", names, [internal], axis=1, name="features"))
    return onnx_model


def check(
    model_bytes: bytes,
    model: Any,
    schema: FeatureSchema,
    X: pd.DataFrame | np.ndarray,
    *,
    array_input: bool,
    tolerance: float = TOLERANCE,
) -> dict[str, Any]:
    """Compare the ONNX model with scikit-learn on every row of ``X``.

    Args:
        model_bytes: The serialized ONNX model.
        model: The fitted scikit-learn pipeline.
        schema: Its feature schema.
        X: Rows, shape ``(n_rows, n_features)`` (see :func:`export_onnx`).
        array_input: Whether the model takes a float matrix.
        tolerance: Largest absolute difference accepted.

    Returns:
        The gate's measurements (see :attr:`OnnxExport.gate`) and, when it failed, ``failure``:
        one line naming the worst row and its difference, or the first row whose label differs.

    Raises:
        Exception: Whatever ONNX Runtime raises for a graph it cannot load or run.
    """
    from ml_api.core.runtimes.onnx_runtime import OnnxSession

    session = OnnxSession(model_bytes, schema, array_input=array_input, classes=_classes(model))
    onnx_labels, onnx_values = session.run(session.feed_from(X))
    classes = _classes(model)
    gate: dict[str, Any] = {"rows": len(X), "tolerance": tolerance}
    if classes is not None:
        expected_labels = np.asarray(model.predict(X))
        expected = np.asarray(model.predict_proba(X), dtype=np.float64)
        differs = np.flatnonzero(
            np.asarray(expected_labels, dtype=object) != np.asarray(onnx_labels, dtype=object)
        )
        gate["labels_identical"] = differs.size == 0
    else:
        expected = np.asarray(model.predict(X), dtype=np.float64).reshape(len(X), -1)
        differs = np.array([], dtype=int)
    got = np.asarray(onnx_values, dtype=np.float64).reshape(expected.shape)
    diff = np.abs(got - expected)
    diff = np.where(np.isnan(got) & np.isnan(expected), 0.0, diff)
    diff = np.where(np.isnan(diff), np.inf, diff)
    worst_flat = int(np.argmax(diff)) if diff.size else 0
    worst_row, worst_col = divmod(worst_flat, diff.shape[1]) if diff.size else (0, 0)
    worst = float(diff.flat[worst_flat]) if diff.size else 0.0
    gate["max_abs_diff"] = worst if math.isfinite(worst) else None
    gate["worst_row"] = worst_row
    if differs.size and onnx_labels is not None:
        i = int(differs[0])
        gate["failure"] = (
            f"labels differ on {differs.size} of {len(X)} rows; first row {i}: scikit-learn "
            f"{_plain(expected_labels[i])!r}, ONNX {_plain(onnx_labels[i])!r}"
        )
    elif not worst <= tolerance:
        what = (
            f"probability of class {_plain(classes[worst_col])!r}"
            if classes is not None
            else "prediction"
        )
        want = float(expected[worst_row, worst_col])
        relative = worst / abs(want) if want else math.inf
        gate["failure"] = (
            f"ONNX Runtime computes in float32: worst row {worst_row}, {what}: scikit-learn "
            f"{want:.9g} vs ONNX {got[worst_row, worst_col]:.9g}, difference {worst:.3g}, "
            f"{relative:.1e} relative; the gate allows {tolerance:g} absolute"
        )
    return gate


def _classes(model: Any) -> np.ndarray | None:
    classes = getattr(model, "classes_", None)
    if classes is None or not hasattr(model, "predict_proba"):
        return None
    return np.asarray(classes)


def _string_imputers_on_empty(model: Any) -> Any:
    """A copy of ``model`` whose string ``SimpleImputer`` steps take ``""`` as missing value.

    skl2onnx converts a string imputer only when its missing value is itself a string; the
    statistics (what is filled in) are unchanged, so the copy computes the same function of the
    runtime's inputs, where ``""`` stands for ``NaN``.
    """
    from sklearn.impute import SimpleImputer

    def nan_like(value: Any) -> bool:
        return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))

    def walk(obj: Any) -> None:
        if isinstance(obj, SimpleImputer):
            stats = getattr(obj, "statistics_", None)
            if stats is not None and stats.dtype == object and nan_like(obj.missing_values):
                obj.missing_values = MISSING_CATEGORY
            return
        for attr in ("steps", "transformers_"):
            for item in getattr(obj, attr, None) or ():
                walk(item[1])

    clone = copy.deepcopy(model)
    walk(clone)
    return clone


def _conversion_failure(model: Any, exc: BaseException) -> str:
    """Why skl2onnx could not convert ``model``, naming the part it has no converter for."""
    from skl2onnx._supported_operators import sklearn_operator_name_map

    reason = re.sub(r"<class '([\w.]+)'>", r"\1", _first_line(exc))
    part = _part_without_converter(model, "the model", set(sklearn_operator_name_map))
    if part is not None:
        cls, where = part
        full = f"{cls.__module__}.{cls.__qualname__}"
        said = "" if full in reason else f": {reason}"  # skl2onnx's line names nothing else
        return f"skl2onnx has no converter for {cls.__name__} ({where}, class {full}){said}"
    return f"skl2onnx could not convert {describe_model(model)}: {reason}"


def _part_without_converter(obj: Any, where: str, known: set[type]) -> tuple[type, str] | None:
    """The first estimator in ``obj`` (steps first, then itself) skl2onnx has no converter for."""
    if isinstance(obj, str) or obj is None:  # "passthrough", "drop"
        return None
    for attr in ("steps", "transformers_", "transformer_list"):
        for item in getattr(obj, attr, None) or ():
            found = _part_without_converter(item[1], f"step {item[0]!r}", known)
            if found is not None:
                return found
    return None if type(obj) in known else (type(obj), where)


def _register_boosting_converters(estimator: Any) -> bool:
    """Register onnxmltools' XGBoost/LightGBM converters with skl2onnx for such an estimator.

    Returns:
        Whether ``estimator`` is an XGBoost or LightGBM model (then its converter is registered).

    Raises:
        ConversionError: onnxmltools is not installed.
    """
    module = type(estimator).__module__.split(".")[0]
    if module not in ("xgboost", "lightgbm"):
        return False
    try:
        from onnxmltools.convert.lightgbm.operator_converters.LightGbm import convert_lightgbm
        from onnxmltools.convert.xgboost.operator_converters.XGBoost import convert_xgboost
        from skl2onnx import update_registered_converter
        from skl2onnx.common.shape_calculator import (
            calculate_linear_classifier_output_shapes,
            calculate_linear_regressor_output_shapes,
        )
    except ImportError as exc:
        raise ConversionError(
            f"{type(estimator).__name__} needs onnxmltools to convert ({exc})"
        ) from None
    is_classifier = hasattr(estimator, "classes_")
    shapes = (
        calculate_linear_classifier_output_shapes
        if is_classifier
        else calculate_linear_regressor_output_shapes
    )
    converter = convert_xgboost if module == "xgboost" else convert_lightgbm
    update_registered_converter(
        type(estimator),
        f"{module}{type(estimator).__name__}",
        shapes,
        converter,
        options={"nocl": [True, False], "zipmap": [True, False, "columns"]}
        if is_classifier
        else None,
    )
    return True


def _versions() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for dist in _CONVERTER_DISTS:
        try:
            out[dist] = importlib_metadata.version(dist)
        except importlib_metadata.PackageNotFoundError:
            continue
    return out


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _runtime_reason(exc: BaseException) -> str:
    """ONNX Runtime's first line without its ``[ONNXRuntimeError] : 2 : CODE :`` prefix."""
    return re.sub(r"^\[ONNXRuntimeError\]( : \S+)* : ", "", _first_line(exc))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0][:300] if text else "") or type(exc).__name__
