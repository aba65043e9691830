"""Open Inference Protocol tensors: the datatypes, and a request's tensors read into rows.

A tabular model takes one tensor per feature column (shape ``[n]`` or ``[n, 1]``) or, when every
feature is numeric, one matrix ``[n, n_features]`` (:mod:`ml_api.core.protocols.v2`). Every value
is checked against its tensor's declared datatype here (the integer ranges, the floating-point
maxima); whether it suits its feature is the feature schema's question.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from ml_api.core.errors import BadRequest, Problem, quote
from ml_api.core.model.schema import Feature, FeatureKind, FeatureSchema

NUMERIC_TYPES = frozenset({"FP16", "FP32", "FP64", "INT8", "INT16", "INT32", "INT64", "UINT8",
                           "UINT16", "UINT32", "UINT64"})  # fmt: skip
INTEGER_TYPES = {t for t in NUMERIC_TYPES if "INT" in t}
KNOWN_TYPES = NUMERIC_TYPES | {"BOOL", "BYTES"}


class Tensor(NamedTuple):
    """One input tensor of an inference request, checked and flattened.

    Attributes:
        name: The tensor's name (a feature name, or any name for the one-matrix layout).
        datatype: A V2 datatype (``FP64``, ``BYTES``, ...).
        shape: The declared shape; ``prod(shape) == len(data)``.
        data: The values, flattened in row-major order.
    """

    name: str
    datatype: str
    shape: list[int]
    data: list[Any]


def label_datatype(classes: Sequence[Any]) -> str:
    """The V2 datatype of the ``label`` output for a model's classes.

    Args:
        classes: The class labels as JSON values (``Predictor.classes``); empty for regressors.

    Returns:
        ``FP64`` for regressors, ``BOOL`` when every class is a ``bool``, ``INT64`` when every
        class is an ``int``, else ``BYTES`` (labels sent as strings).
    """
    if not classes:
        return "FP64"
    if all(isinstance(c, bool) for c in classes):
        return "BOOL"
    if all(isinstance(c, int) and not isinstance(c, bool) for c in classes):
        return "INT64"
    return "BYTES"


def feature_datatype(feature: Feature) -> str:
    """The datatype a feature's tensor is described with: ``FP64``, ``INT64``, ``BOOL``, ``BYTES``.

    A categorical feature over numeric codes is ``INT64`` when every code is an integer (a zip
    code, a store id), else ``FP64``; other categorical features are ``BYTES`` (``BOOL`` for
    booleans).
    """
    if feature.kind is FeatureKind.NUMERIC:
        return "FP64"
    if feature.codes is not None:
        return "INT64" if all(isinstance(c, int) for c in feature.codes) else "FP64"
    return "BOOL" if feature.is_boolean else "BYTES"


def rows_from_columns(tensors: list[Tensor], schema: FeatureSchema) -> list[list[Any]]:
    """Turn one tensor per feature into rows in schema order.

    Args:
        tensors: The request's tensors, each of shape ``[n]`` or ``[n, 1]``.
        schema: The model's feature schema.

    Returns:
        ``n`` rows of ``len(schema)`` values.

    Raises:
        BadRequest: (400) see :func:`columns_from_tensors`.
    """
    columns = columns_from_tensors(tensors, schema)
    return [list(values) for values in zip(*columns, strict=True)]


def columns_from_tensors(tensors: list[Tensor], schema: FeatureSchema) -> list[list[Any]]:
    """Take one tensor per feature as the feature columns, in schema order (no rows built).

    Args:
        tensors: The request's tensors, each of shape ``[n]`` or ``[n, 1]``.
        schema: The model's feature schema.

    Returns:
        ``len(schema)`` lists of ``n`` values (each tensor's own data list).

    Raises:
        BadRequest: (400) a tensor given twice, of another shape, unknown or missing, tensors of
            different lengths, or a datatype the feature does not take.
    """
    by_name: dict[str, tuple[str, list[Any]]] = {}
    for tensor in tensors:
        name, datatype, shape, data = tensor.name, tensor.datatype, tensor.shape, tensor.data
        if name in by_name:
            raise BadRequest(
                f"input {quote(name)} is given twice", [Problem("duplicate", field=name)]
            )
        if (len(shape) == 2 and shape[1] != 1) or len(shape) not in (1, 2):
            raise BadRequest(
                f"input {quote(name)} must have shape [n] or [n, 1] (one feature column), "
                f"got {quote(shape)}",
                [Problem("wrong shape", field=name)],
            )
        by_name[name] = (datatype, data)
    unknown = [n for n in by_name if n not in schema.names]
    missing = [n for n in schema.names if n not in by_name]
    if unknown or missing:
        problems = [Problem("unknown input", field=n) for n in unknown]
        problems += [Problem("missing input", field=n) for n in missing]
        raise BadRequest(
            "inputs must be one tensor per feature: " + ", ".join(schema.names),
            problems,
        )
    lengths = {len(by_name[n][1]) for n in schema.names}
    if len(lengths) != 1:
        raise BadRequest("all input tensors must hold the same number of instances")
    for f in schema.features:
        datatype, _ = by_name[f.name]
        wanted, accepted = _takes(f)
        if datatype not in accepted:
            raise BadRequest(
                f"input {quote(f.name)} has datatype {datatype}; this feature takes {wanted}",
                [Problem(f"datatype {datatype}", field=f.name)],
            )
    return [by_name[n][1] for n in schema.names]


def _takes(f: Feature) -> tuple[str, frozenset[str]]:
    """The datatypes a feature's tensor may have: ``(wording, datatypes)``."""
    if f.is_boolean:
        return "BOOL or BYTES", frozenset({"BOOL", "BYTES"})
    if f.is_coded:
        return "a numeric type (INT64, FP64, ...) holding one of its codes", NUMERIC_TYPES
    if f.kind in (FeatureKind.CATEGORICAL, FeatureKind.TEXT):
        return "BYTES", frozenset({"BYTES"})
    return "a numeric type (FP64, FP32, INT64)", NUMERIC_TYPES


_TENSOR_KEYS = frozenset({"name", "shape", "datatype", "data"})


def read_tensor(tensor: Any, index: int) -> Tensor:
    """Check one request tensor (an object with name, datatype, shape and data) and flatten it.

    Raises:
        BadRequest: (400) not an object, a key missing, an unknown datatype, a bad shape, data
            that does not fill the shape, or a value not of the datatype.
    """
    if type(tensor) is not dict and not isinstance(tensor, Mapping):
        raise BadRequest(
            f"inputs[{index}] must be an object",
            [Problem("not an object", instance=index, field="inputs")],
        )
    if not tensor.keys() >= _TENSOR_KEYS:
        missing = [k for k in ("name", "shape", "datatype", "data") if k not in tensor]
        raise BadRequest(
            f"inputs[{index}] lacks {', '.join(missing)}",
            [Problem(f"missing {k}", instance=index, field="inputs") for k in missing],
        )
    name, datatype, shape, data = (
        tensor["name"],
        tensor["datatype"],
        tensor["shape"],
        tensor["data"],
    )
    if not isinstance(name, str):
        raise BadRequest(f"inputs[{index}].name must be a string")
    if datatype not in KNOWN_TYPES:
        raise BadRequest(
            f"input {quote(name)}: unknown datatype {quote(datatype)}",
            [Problem(f"one of {', '.join(sorted(KNOWN_TYPES))}", field=name)],
        )
    if not (
        type(shape) is list and len(shape) == 1 and type(shape[0]) is int and shape[0] >= 0
    ) and (
        not isinstance(shape, list)
        or not shape
        or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
    ):  # the first line passes the common shape [n] at once
        raise BadRequest(f"input {quote(name)}: shape must be a list of non-negative integers")
    flat = flatten(data, name)
    if math.prod(shape) != len(flat):
        raise BadRequest(
            f"input {quote(name)}: shape {quote(shape)} needs {math.prod(shape)} values, "
            f"data has {len(flat)}",
            [Problem("shape does not match data", field=name)],
        )
    if not plainly_of(datatype, flat):
        for value in flat:  # the first value not of the datatype is refused, named
            check_datatype(name, datatype, value)
    return Tensor(name=name, datatype=datatype, shape=shape, data=flat)


def plainly_of(datatype: str, values: list[Any]) -> bool:
    """Whether every value is plainly of ``datatype``, checked a list at a time (no nulls).

    ``True`` only where :func:`check_datatype` accepts each value; ``False`` does not mean a
    value is refused (a null, an integer near a float maximum): the per-value check decides.
    """
    if not values:
        return True
    types = set(map(type, values))
    if datatype == "BYTES":
        return types == {str}
    if datatype == "BOOL":
        return types == {bool}
    if datatype in INTEGER_RANGES:
        low, high = INTEGER_RANGES[datatype]
        return types == {int} and low <= min(values) and max(values) <= high
    if not types <= {float, int}:
        return False
    try:
        if not all(map(math.isfinite, values)):
            return False
    except OverflowError:  # an integer beyond any float
        return False
    return bool(max(map(abs, values)) <= FLOAT_MAXIMA[datatype])


def flatten(data: Any, name: str) -> list[Any]:
    """Return a tensor's nested ``data`` arrays as one flat list, in row-major order.

    Raises:
        BadRequest: (400) ``data`` is not an array.
    """
    if not isinstance(data, list):
        raise BadRequest(f"input {quote(name)}: data must be an array")
    if not any(issubclass(t, list) for t in set(map(type, data))):
        return data
    out: list[Any] = []
    stack: list[Any] = [iter(data)]
    while stack:
        for v in stack[-1]:
            if isinstance(v, list):
                stack.append(iter(v))
                break
            out.append(v)
        else:
            stack.pop()
    return out


INTEGER_RANGES = {
    f"{'U' if unsigned else ''}INT{bits}": (0, 2**bits - 1)
    if unsigned
    else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    for bits in (8, 16, 32, 64)
    for unsigned in (False, True)
}
"""Inclusive ``(minimum, maximum)`` of each integer datatype."""

FLOAT_MAXIMA = {"FP16": 65504.0, "FP32": 3.4028234663852886e38, "FP64": sys.float_info.max}
"""Largest finite magnitude of each floating-point datatype (IEEE 754 half, single, double)."""


def check_datatype(name: str, datatype: str, value: Any) -> None:
    """Refuse a value that is not a value of the tensor's declared ``datatype`` (400).

    Integer types take JSON integers within their range; ``FP16``/``FP32``/``FP64`` take JSON
    numbers whose magnitude is at most the type's largest finite value; ``BOOL`` takes ``true`` and
    ``false`` only; ``BYTES`` takes strings. ``null`` passes (the feature schema decides).
    """
    if value is None:
        return  # the feature schema decides whether null is allowed
    if datatype == "BYTES":
        ok = isinstance(value, str)
    elif datatype == "BOOL":
        ok = isinstance(value, bool)
    elif datatype in INTEGER_RANGES:
        low, high = INTEGER_RANGES[datatype]
        ok = isinstance(value, int) and not isinstance(value, bool) and low <= value <= high
    else:
        ok = (
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and _finite_within(value, FLOAT_MAXIMA[datatype])
        )
    if not ok:
        raise BadRequest(
            f"input {quote(name)}: {quote(value)} is not a valid {datatype} value"
            f"{_range_hint(datatype)}",
            [Problem(f"not a {datatype} value{_range_hint(datatype)}", field=name)],
        )


def _finite_within(value: int | float, maximum: float) -> bool:
    try:
        return math.isfinite(value) and abs(float(value)) <= maximum
    except OverflowError:  # an integer beyond any float
        return False


def _range_hint(datatype: str) -> str:
    if datatype in INTEGER_RANGES:
        low, high = INTEGER_RANGES[datatype]
        return f" (integers from {low} to {high})"
    if datatype in FLOAT_MAXIMA:
        return f" (finite numbers of magnitude at most {FLOAT_MAXIMA[datatype]:.8g})"
    if datatype == "BOOL":
        return " (true or false)"
    return " (strings)"


def rows_from_matrix(tensor: Tensor, width: int) -> list[list[Any]]:
    """Split one numeric tensor of shape ``[n, width]`` (or ``[width]``) into ``n`` rows.

    Raises:
        BadRequest: (400) a non-numeric datatype or another shape.
    """
    name, datatype, shape, flat = tensor.name, tensor.datatype, tensor.shape, tensor.data
    if datatype not in NUMERIC_TYPES:
        raise BadRequest(f"input {quote(name)}: this model takes numbers, got datatype {datatype}")
    if len(shape) == 1 and shape[0] == width:
        shape = [1, width]
    if len(shape) != 2 or shape[1] != width:
        raise BadRequest(
            f"input {quote(name)} must have shape [n, {width}] (features in order), "
            f"got {quote(shape)}",
            [Problem(f"shape [n, {width}]", field=name)],
        )
    return [flat[i : i + width] for i in range(0, len(flat), width)]
