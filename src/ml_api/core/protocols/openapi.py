"""The OpenAPI 3.1 description of the served API, from the endpoint table and the feature schema.

``GET /openapi.json`` serves it (so Swagger UI, Postman or a client generator know the exact
features, their types, allowed categories and nullability); ``GET /docs`` shows it in the bundled
Swagger UI (``core/pages/docs_ui.py``). Its paths are the rows of
:data:`~ml_api.core.protocols.routes.ENDPOINTS` (summary, 200 body, error statuses, request body
kind), so a new endpoint is described by its row alone.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from ml_api.core.limits import Limits
from ml_api.core.model.card import ModelCard
from ml_api.core.model.schema import Feature, FeatureKind, FeatureSchema
from ml_api.core.protocols.body import CONTENT_ENCODING_PATTERN
from ml_api.core.protocols.routes import ENDPOINTS, JSON, Endpoint, concrete_paths
from ml_api.core.protocols.tensors import KNOWN_TYPES
from ml_api.core.protocols.v2 import OUTPUT_LABEL, OUTPUT_PROBA
from ml_api.core.runtimes.predictor import class_keys

_ERROR = {"$ref": "#/components/schemas/Error"}
"""Every error response's body (``ml_api.core.errors.to_payload``)."""


def _feature_schema(f: Feature) -> dict[str, Any]:
    if f.kind is FeatureKind.NUMERIC:
        schema: dict[str, Any] = {"type": "number", "description": f"numeric ({f.dtype})"}
        if f.minimum is not None:
            schema["description"] += f", {f.minimum:g} to {f.maximum:g} in training"
    elif f.kind is FeatureKind.TEXT:
        schema = {
            "type": "string",
            "maxLength": f.max_length,
            "description": f"free text, up to {f.max_length} characters",
        }
    elif f.codes is not None:  # a categorical feature over numeric codes: JSON numbers
        schema = {"type": "number", "enum": list(f.codes)}
    else:
        schema = {"type": "string", "enum": list(f.categories or ())}
    if f.nullable:
        schema = {"anyOf": [schema, {"type": "null"}], "description": "null: missing (imputed)"}
    return schema


def openapi_document(
    *,
    card: ModelCard,
    classes: Sequence[Any],
    limits: Limits,
    platform: str = "scikit-learn",
    auth_enabled: bool = False,
    public_paths: Iterable[str] = (),
    probabilities: bool = True,
) -> dict[str, Any]:
    """Build the OpenAPI 3.1 document for the served model: every row of the endpoint table.

    Each row of :data:`~ml_api.core.protocols.routes.ENDPOINTS` is one path item, in the table's
    order; what Swagger UI's "Try it out" needs is in it: request examples sent as they are
    (``POST /predict``: one per body form; V2 ``infer``: one tensor per feature), ``name`` and
    ``version`` path parameters defaulting to the served model and, with API keys configured,
    the ``bearer`` (``Authorization: Bearer <key>``) and ``apiKey`` (``X-API-Key``) schemes,
    required except on the public paths (``security: []``).

    Args:
        card: The model card (name, version and feature schema are described).
        classes: Class labels in probability column order (``Predictor.classes``); empty for
            regressors.
        limits: The request limits (``maxItems`` of a batch).
        platform: The runtime's name, for the description.
        auth_enabled: Whether API keys are configured.
        public_paths: Paths open without a key (``Settings.public_paths``, resolved).
        probabilities: Whether a classifier's answers carry ``probabilities``
            (``Predictor.has_probabilities``; a ``LinearSVC`` gives labels only).

    Returns:
        The document as a JSON-ready dict.
    """
    keys = class_keys(tuple(classes))
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": _info(card, platform),
        "paths": _paths(card, limits),
        "components": {
            "schemas": {
                **_instance_schemas(card.schema),
                "Prediction": _prediction_schema(keys, probabilities, _label_schema(classes)),
                "ModelRef": {
                    "type": "object",
                    "properties": {"name": {"type": "string"}, "version": {"type": "string"}},
                    "required": ["name", "version"],
                },
                "Error": _ERROR_SCHEMA,
                "RepositoryIndex": _REPOSITORY_INDEX,
                **_v2_schemas(card.schema, bool(keys)),
            },
        },
    }
    if auth_enabled:
        _require_keys(document, public_paths)
    return document


_REPOSITORY_INDEX = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "version": {"type": "string"},
            "state": {"type": "string", "enum": ["READY", "UNAVAILABLE"]},
            "reason": {"type": "string"},
        },
        "required": ["name", "version", "state", "reason"],
    },
}
"""``POST /v2/repository/index``'s 200 body: one entry a model (the Open Inference Protocol's
repository extension; ``ml_api.core.repository.Repository.index`` writes it)."""


def _info(card: ModelCard, platform: str) -> dict[str, Any]:
    return {
        "title": f"ml-api: {card.name} version {card.version}",
        "version": card.version,
        "description": f"Predictions from a {platform} model. Also speaks the Open Inference "
        "Protocol under /v2 (see its specification).",
    }


def _instance_schemas(schema: FeatureSchema) -> dict[str, Any]:
    names = list(schema.names)
    named = {
        "type": "object",
        "properties": {f.name: _feature_schema(f) for f in schema.features},
        "required": names,
        "additionalProperties": False,
    }
    positional = {
        "type": "array",
        "prefixItems": [_feature_schema(f) for f in schema.features],
        "items": False,
        "minItems": len(names),
        "description": "values in this order: " + ", ".join(names),
    }
    return {"NamedInstance": named, "PositionalInstance": positional}


def _predict_request(schema: FeatureSchema, limits: Limits) -> dict[str, Any]:
    instance = {"oneOf": [{"$ref": "#/components/schemas/NamedInstance"},
                          {"$ref": "#/components/schemas/PositionalInstance"}]}  # fmt: skip
    batch = {"type": "array", "items": instance, "minItems": 1, "maxItems": limits.max_instances}
    example = schema.example()
    body = {
        "oneOf": [
            {
                "type": "object",
                "properties": {"features": {"oneOf": [instance, batch]}},
                "required": ["features"],
                "additionalProperties": False,
            },
            {
                "type": "object",
                "properties": {"instances": batch},
                "required": ["instances"],
                "additionalProperties": False,
            },
        ],
        "examples": [{"features": [example[n] for n in schema.names]}, {"instances": [example]}],
    }
    return {"required": True, "content": {"application/json": {"schema": body}}}


def _label_schema(classes: Sequence[Any]) -> dict[str, Any]:
    """The JSON type of one V1 prediction: the classes' own type, or a number for a regressor."""
    if not classes:
        return {"type": ["number", "null"]}
    if all(isinstance(c, bool) for c in classes):
        return {"type": "boolean"}
    if all(isinstance(c, int) and not isinstance(c, bool) for c in classes):
        return {"type": "integer"}
    return {"type": "string"}


def _prediction_schema(
    keys: Sequence[str], probabilities: bool = True, label: dict[str, Any] | None = None
) -> dict[str, Any]:
    label = label or ({"type": "string"} if keys else {"type": ["number", "null"]})
    prediction: dict[str, Any] = {
        "type": "object",
        "properties": {
            "prediction": {"type": "array", "items": label},
            "model": {"$ref": "#/components/schemas/ModelRef"},
            "warnings": _WARNINGS,
        },
        "required": ["prediction", "model"],
    }
    if keys and probabilities:
        prediction["properties"]["probabilities"] = {
            "type": "array",
            "items": {"type": "object", "properties": {c: {"type": "number"} for c in keys}},
        }
        prediction["required"].append("probabilities")
    return prediction


_PROBLEM = {
    "type": "object",
    "properties": {
        "instance": {"type": ["integer", "null"]},
        "field": {"type": ["string", "null"]},
        "problem": {"type": "string"},
    },
    "required": ["instance", "field", "problem"],
}
"""One entry of an error's ``details`` or a prediction's ``warnings``."""

_WARNINGS = {
    "type": "array",
    "items": _PROBLEM,
    "description": "Present only when a numeric value lies outside its feature's training range "
    "and ML_API_OUT_OF_RANGE is warn (the default): one entry per instance and feature, "
    "at most 50, then one entry (instance and field null) saying how many more.",
}

_ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "error": {"type": "string"},
        "details": {"type": "array", "items": _PROBLEM},
        "request_id": {"type": "string"},
    },
    "required": ["error", "details"],
}

_OBJECT = {"type": "object"}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


_CONTENT_ENCODING = {
    "name": "Content-Encoding",
    "in": "header",
    "required": False,
    "description": "gzip or deflate (a comma-separated list, applied in order; identity or empty: "
    "no coding): the body is decoded, the byte limit applying to the decoded size (413 past it; "
    "400 if the body is not what the header says; 415 for other codings)",
    "schema": {"type": "string", "pattern": CONTENT_ENCODING_PATTERN},
}


def _v2_request_schemas(schema: FeatureSchema, classifier: bool) -> dict[str, Any]:
    """The inference request as strictly as the server reads it (``core/v2_request.py``)."""
    name: dict[str, Any] = {"type": "string"}
    if not schema.all_numeric:  # one tensor per feature; all-numeric models also take a matrix
        name = {"type": "string", "enum": list(schema.names)}
    outputs = [OUTPUT_LABEL] + ([OUTPUT_PROBA] if classifier else [])
    return {
        "V2RequestInput": {
            "type": "object",
            "properties": {
                "name": name,
                "datatype": {"type": "string", "enum": sorted(KNOWN_TYPES)},
                "shape": {
                    "type": "array",
                    "items": {"type": "integer", "minimum": 0},
                    "minItems": 1,
                },
                "data": {"type": "array"},
                "parameters": {"type": "object"},
            },
            "required": ["name", "datatype", "shape", "data"],
        },
        "V2RequestOutput": {
            "type": "object",
            "properties": {
                "name": {"type": "string", "enum": outputs},
                "parameters": {"type": "object"},
            },
            "required": ["name"],
        },
        "V2InferenceRequest": {
            "type": "object",
            "properties": {
                "id": {"type": "string"},
                "parameters": {"type": "object"},
                "inputs": {"type": "array", "items": _ref("V2RequestInput"), "minItems": 1},
                "outputs": {"type": "array", "items": _ref("V2RequestOutput")},
            },
            "required": ["inputs"],
        },
    }


def _v2_schemas(schema: FeatureSchema, classifier: bool) -> dict[str, Any]:
    tensor = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "datatype": {"type": "string"},
            "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
            "data": {"type": "array"},
            "parameters": {"type": "object"},
        },
        "required": ["name", "datatype", "shape", "data"],
    }
    described = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "datatype": {"type": "string"},
            "shape": {"type": "array", "items": {"type": "integer"}},
        },
        "required": ["name", "datatype", "shape"],
    }
    return {
        "V2Tensor": tensor,
        "V2ServerMetadata": {
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "version": {"type": "string"},
                "extensions": {"type": "array", "items": {"type": "string"}},
            },
            "required": ["name", "version", "extensions"],
        },
        "V2Live": {"type": "object", "properties": {"live": {"type": "boolean"}}},
        "V2Ready": {"type": "object", "properties": {"ready": {"type": "boolean"}}},
        "V2ModelReady": {
            "type": "object",
            "properties": {"name": {"type": "string"}, "ready": {"type": "boolean"}},
        },
        "V2ModelMetadata": {
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "versions": {"type": "array", "items": {"type": "string"}},
                "platform": {"type": "string"},
                "inputs": {"type": "array", "items": described},
                "outputs": {"type": "array", "items": described},
                "parameters": {"type": "object"},
            },
            "required": ["name", "platform", "inputs", "outputs"],
        },
        **_v2_request_schemas(schema, classifier),
        "V2InferenceResponse": {
            "type": "object",
            "properties": {
                "model_name": {"type": "string"},
                "model_version": {"type": "string"},
                "id": {"type": "string"},
                "outputs": {"type": "array", "items": _ref("V2Tensor")},
                "parameters": {
                    "type": "object",
                    "description": "out_of_range (a JSON-encoded list like /predict's "
                    "warnings) and out_of_range_count, when values lie outside the training "
                    "range and ML_API_OUT_OF_RANGE is warn",
                },
            },
            "required": ["model_name", "outputs"],
        },
    }


def _paths(card: ModelCard, limits: Limits) -> dict[str, Any]:
    """One path item per row of the endpoint table, in the table's order.

    A row's trailing-slash spelling is not listed; ``name``/``version`` path parameters default
    to the served model (what Swagger UI's "Try it out" sends).
    """
    defaults = {"name": str(card.name), "version": str(card.version)}
    paths: dict[str, Any] = {}
    for endpoint in ENDPOINTS:
        path = endpoint.paths[0]
        item: dict[str, Any] = {}
        params = [p for p in re.findall(r"{(\w+)}", path) if p not in endpoint.values]
        if params:
            item["parameters"] = [_path_parameter(p, defaults.get(p)) for p in params]
        for method in endpoint.methods:
            item[method.lower()] = _operation(endpoint, card.schema, limits)
        paths[path] = item
    return paths


def _path_parameter(name: str, default: str | None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    if default is not None:
        schema = {"type": "string", "enum": [default], "default": default}
    return {"name": name, "in": "path", "required": True, "schema": schema}


def _operation(endpoint: Endpoint, schema: FeatureSchema, limits: Limits) -> dict[str, Any]:
    operation: dict[str, Any] = {"summary": endpoint.summary}
    if endpoint.body is not None:
        operation["parameters"] = [_CONTENT_ENCODING]
        operation["requestBody"] = _REQUEST_BODIES[endpoint.body](schema, limits)
    elif endpoint.values:
        operation["parameters"] = [
            {"name": name, "in": "path", "required": True,
             "schema": {"type": "string", "enum": list(values)}}
            for name, values in endpoint.values.items()
        ]  # fmt: skip
    ok = _ref(endpoint.ok) if endpoint.ok else _OBJECT
    content = {m: {"schema": ok if m == JSON else {}} for m in endpoint.media}
    responses: dict[str, Any] = {"200": {"description": "OK", "content": content}}
    for code in endpoint.errors:
        responses[str(code)] = {
            "description": "error",
            "content": {"application/json": {"schema": _ERROR}},
        }
    operation["responses"] = responses
    return operation


def _predict_body(schema: FeatureSchema, limits: Limits) -> dict[str, Any]:
    body = _predict_request(schema, limits)
    body["content"]["application/json"]["examples"] = _v1_examples(schema)
    return body


def _infer_body(schema: FeatureSchema, limits: Limits) -> dict[str, Any]:
    media = {"schema": _ref("V2InferenceRequest"), "example": _v2_example(schema)}
    return {"required": True, "content": {"application/json": media}}


_REQUEST_BODIES: dict[str, Callable[[FeatureSchema, Limits], dict[str, Any]]] = {
    "predict": _predict_body,
    "infer": _infer_body,
}
"""The request body of each kind an endpoint declares (``Endpoint.body``)."""


def _v1_examples(schema: FeatureSchema) -> dict[str, Any]:
    example = schema.example()
    names = list(schema.names)
    return {
        "positional": {
            "summary": "one instance, values in feature order",
            "value": {"features": [example[n] for n in names]},
        },
        "named": {"summary": "one named instance", "value": {"features": example}},
        "records": {"summary": "a batch of records", "value": {"instances": [example, example]}},
    }


def _v2_example(schema: FeatureSchema) -> dict[str, Any]:
    example = schema.example()
    return {
        "inputs": [
            {
                "name": f.name,
                "datatype": "FP64" if f.kind == "numeric" else "BYTES",
                "shape": [1],
                "data": [example[f.name]],
            }
            for f in schema.features
        ]
    }


def _require_keys(document: dict[str, Any], public_paths: Iterable[str]) -> None:
    """Add the API-key schemes, required by default, and ``security: []`` on public paths."""
    document["components"]["securitySchemes"] = {
        "bearer": {
            "type": "http",
            "scheme": "bearer",
            "description": "Authorization: Bearer <API key>",
        },
        "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
    }
    document["security"] = [{"bearer": []}, {"apiKey": []}]
    public = {"/" + p.strip("/") for p in public_paths}
    for endpoint in ENDPOINTS:  # a template is public when every path it stands for is
        if endpoint.values and set(concrete_paths(endpoint)) <= public:
            public.add(endpoint.paths[0])
    for path, item in document["paths"].items():
        if path in public:
            for method, op in item.items():
                if method != "parameters":
                    op["security"] = []
