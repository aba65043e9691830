"""The OpenAPI 3.1 description of the served API, generated from the model's feature schema.

``GET /openapi.json`` serves it (so Swagger UI, Postman or a client generator know the exact
features, their types, allowed categories and nullability); ``GET /docs`` shows it in the bundled
Swagger UI (``core/pages/docs_ui.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ml_api.core.limits import Limits
from ml_api.core.model.card import ModelCard
from ml_api.core.model.schema import Feature, FeatureKind, FeatureSchema
from ml_api.core.protocols.body import CONTENT_CODINGS
from ml_api.core.protocols.v2 import KNOWN_TYPES, OUTPUT_LABEL, OUTPUT_PROBA
from ml_api.core.runtimes.predictor import class_keys

_ERROR = {"$ref": "#/components/schemas/Error"}
"""Every error response's body (``ml_api.core.errors.to_payload``)."""


def _feature_schema(f: Feature) -> dict[str, Any]:
    if f.kind is FeatureKind.NUMERIC:
        schema: dict[str, Any] = {"type": "number", "description": f"numeric ({f.dtype})"}
        if f.minimum is not None:
            schema["description"] += f", {f.minimum:g} to {f.maximum:g} in training"
    elif f.codes is not None:  # a categorical feature over numeric codes: JSON numbers
        schema = {"type": "number", "enum": list(f.codes)}
    else:
        schema = {"type": "string", "enum": list(f.categories or ())}
    if f.nullable:
        schema = {"anyOf": [schema, {"type": "null"}], "description": "null: missing (imputed)"}
    return schema


def _responses(ok: dict[str, Any], *errors: int) -> dict[str, Any]:
    out = {"200": {"description": "OK", "content": {"application/json": {"schema": ok}}}}
    for code in errors:
        out[str(code)] = {
            "description": "error",
            "content": {"application/json": {"schema": _ERROR}},
        }
    return out


def openapi_document(
    *, card: ModelCard, classes: Sequence[Any], limits: Limits, platform: str = "scikit-learn"
) -> dict[str, Any]:
    """Build the OpenAPI 3.1 document for the served model: every route both adapters serve.

    Args:
        card: The model card (name, version and feature schema are described).
        classes: Class labels in probability column order (``Predictor.classes``); empty for
            regressors.
        limits: The request limits (``maxItems`` of a batch).
        platform: The runtime's name, for the description.

    Returns:
        The document as a JSON-ready dict.
    """
    keys = class_keys(tuple(classes))
    return {
        "openapi": "3.1.0",
        "info": _info(card, platform),
        "paths": {**_v1_paths(card.schema, limits), **_docs_paths(), **_v2_paths()},
        "components": {
            "schemas": {
                **_instance_schemas(card.schema),
                "Prediction": _prediction_schema(keys),
                "ModelRef": {
                    "type": "object",
                    "properties": {"name": {"type": "string"}, "version": {"type": "string"}},
                    "required": ["name", "version"],
                },
                "Error": _ERROR_SCHEMA,
                **_v2_schemas(card.schema, bool(keys)),
            },
        },
    }


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


def _prediction_schema(keys: Sequence[str]) -> dict[str, Any]:
    label = {"type": "string"} if keys else {"type": ["number", "null"]}
    prediction: dict[str, Any] = {
        "type": "object",
        "properties": {
            "prediction": {"type": "array", "items": label},
            "model": {"$ref": "#/components/schemas/ModelRef"},
            "warnings": _WARNINGS,
        },
        "required": ["prediction", "model"],
    }
    if keys:
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


def _get(summary: str, ok: dict[str, Any], *errors: int) -> dict[str, Any]:
    return {"get": {"summary": summary, "responses": _responses(ok, *errors)}}


def _v1_paths(schema: FeatureSchema, limits: Limits) -> dict[str, Any]:
    return {
        "/predict": {
            "post": {
                "summary": "Predict one instance or a batch",
                "parameters": [_CONTENT_ENCODING],
                "requestBody": _predict_request(schema, limits),
                "responses": _responses(_ref("Prediction"), 400, 401, 413, 415, 422, 504),
            }
        },
        "/health": _get("Liveness", _OBJECT),
        "/ready": _get("Readiness", _OBJECT, 503),
        "/metadata": _get("The model card", _OBJECT, 401),
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics",
                "responses": {
                    "200": {"description": "OK", "content": {"text/plain": {"schema": {}}}}
                },
            }
        },
    }


def _docs_paths() -> dict[str, Any]:
    return {
        "/openapi.json": _get("This document", _OBJECT, 401),
        "/docs": {
            "get": {
                "summary": "This document as an HTML page",
                "responses": {
                    "200": {"description": "OK", "content": {"text/html": {"schema": {}}}},
                    "401": _responses(_OBJECT, 401)["401"],
                },
            }
        },
    }


_NAME = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
_CONTENT_ENCODING = {
    "name": "Content-Encoding",
    "in": "header",
    "required": False,
    "description": "gzip or deflate: the body is decoded, the byte limit applying to the decoded "
    "size (413 past it; 400 if the body is not what the header says; 415 for other codings)",
    "schema": {"type": "string", "enum": [*CONTENT_CODINGS, "identity"]},
}
_VERSION = {"name": "version", "in": "path", "required": True, "schema": {"type": "string"}}


def _v2_paths() -> dict[str, Any]:
    """The Open Inference Protocol's REST paths, each model path also under ``/versions/{v}``."""
    paths: dict[str, Any] = {
        "/v2": _get("V2 server metadata", _ref("V2ServerMetadata"), 401),
        "/v2/health/live": _get("V2 server liveness", _ref("V2Live"), 401),
        "/v2/health/ready": _get("V2 server readiness", _ref("V2Ready"), 401, 503),
    }
    for base, params in (
        ("/v2/models/{name}", [_NAME]),
        ("/v2/models/{name}/versions/{version}", [_NAME, _VERSION]),
    ):
        paths[base] = {
            "parameters": params,
            **_get("V2 model metadata", _ref("V2ModelMetadata"), 401, 404),
        }
        paths[f"{base}/ready"] = {
            "parameters": params,
            **_get("V2 model readiness", _ref("V2ModelReady"), 401, 404, 503),
        }
        paths[f"{base}/infer"] = {
            "parameters": params,
            "post": {
                "summary": "V2 inference on tensors",
                "parameters": [_CONTENT_ENCODING],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("V2InferenceRequest")}},
                },
                "responses": _responses(_ref("V2InferenceResponse"), 400, 401, 404, 413, 415, 504),
            },
        }
    return paths


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
