"""The JSON types of an Open Inference Protocol (V2) inference request, checked before its values.

The protocol's ``inference_request`` (``shared/specs/open_inference_rest.yaml``) is an object with
``id`` (string), ``parameters`` (object), ``inputs`` (array of ``request_input``: ``name``
string, ``shape`` array, ``datatype`` string, ``data`` array, ``parameters`` object; the first
four required) and ``outputs`` (array of ``request_output``: ``name`` string, required;
``parameters`` object). :func:`check_request_types` refuses any field of another JSON type with a
400 naming the field by its path (``inputs[2].datatype``), so no later step meets a value of a type
it does not expect; the values themselves (datatypes, shapes, data) are checked by the decoder.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ml_api.core.errors import BadRequest, Problem

JSON_TYPES: dict[type, str] = {
    dict: "object",
    list: "array",
    str: "string",
    bool: "boolean",
    int: "number",
    float: "number",
    type(None): "null",
}
"""The JSON name of each type :func:`ml_api.core.codecs.parse_json` returns."""

REQUEST_FIELDS: dict[str, tuple[type, bool]] = {
    "id": (str, False),
    "parameters": (dict, False),
    "inputs": (list, True),
    "outputs": (list, False),
}
"""Fields of ``inference_request``: ``name -> (JSON type, required)``."""

INPUT_FIELDS: dict[str, tuple[type, bool]] = {
    "name": (str, True),
    "shape": (list, True),
    "datatype": (str, True),
    "data": (list, True),
    "parameters": (dict, False),
}
"""Fields of each ``inputs[i]`` (``request_input``)."""

OUTPUT_FIELDS: dict[str, tuple[type, bool]] = {
    "name": (str, True),
    "parameters": (dict, False),
}
"""Fields of each ``outputs[i]`` (``request_output``)."""


def json_type(value: Any) -> str:
    """The JSON type name of a parsed value: ``object``, ``array``, ``string``, ``number``, ..."""
    return JSON_TYPES.get(type(value), type(value).__name__)


def check_request_types(request: Any) -> None:
    """Refuse a V2 inference request any of whose fields has the wrong JSON type.

    Args:
        request: The parsed body.

    Raises:
        BadRequest: (400) the body is not an object; a required field is missing; a field is of
            another JSON type than the protocol's (``null`` included); an element of ``inputs`` or
            ``outputs`` is not an object. The message names the field's path (``inputs[0].shape``);
            the problem's ``instance`` is the index in ``inputs``/``outputs`` and its ``field`` the
            field's name.
    """
    if not isinstance(request, Mapping):
        raise BadRequest(
            f"the inference request must be a JSON object, got {json_type(request)}",
            [Problem(f"got {json_type(request)}")],
        )
    _check_fields(request, REQUEST_FIELDS, "", None)
    for key, fields in (("inputs", INPUT_FIELDS), ("outputs", OUTPUT_FIELDS)):
        for i, item in enumerate(request.get(key) or ()):
            if not isinstance(item, Mapping):
                raise BadRequest(
                    f"{key}[{i}] must be an object, got {json_type(item)}",
                    [Problem(f"not an object: {json_type(item)}", instance=i, field=key)],
                )
            _check_fields(item, fields, f"{key}[{i}].", i)


def _check_fields(
    obj: Mapping[str, Any], fields: dict[str, tuple[type, bool]], prefix: str, index: int | None
) -> None:
    for name, (wanted, required) in fields.items():
        if name not in obj:
            if required:
                raise BadRequest(
                    f"{prefix}{name} is required ({JSON_TYPES[wanted]})",
                    [Problem("required", instance=index, field=name)],
                )
            continue
        value = obj[name]
        if type(value) is not wanted:
            got = json_type(value)
            raise BadRequest(
                f"{prefix}{name} must be a JSON {JSON_TYPES[wanted]}, got {got}",
                [Problem(f"not {JSON_TYPES[wanted]}: {got}", instance=index, field=name)],
            )
