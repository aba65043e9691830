"""The OpenAPI 3.1 description of the served API, generated from the model's feature schema.

``GET /openapi.json`` serves it (so Swagger UI, Postman or a client generator know the exact
features, their types, allowed categories and nullability); ``GET /docs`` shows it in Swagger UI
(:mod:`ml_api.core.docs_ui`).
"""

from __future__ import annotations

from typing import Any

from ml_api.core.predictor import class_keys
from ml_api.core.schema import Feature, FeatureSchema

_ERROR = {"$ref": "#/components/schemas/Error"}


def _feature_schema(f: Feature) -> dict[str, Any]:
    if f.kind == "numeric":
        schema: dict[str, Any] = {"type": "number", "description": f"numeric ({f.dtype})"}
        if f.minimum is not None:
            schema["description"] += f", {f.minimum:g} to {f.maximum:g} in training"
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


def openapi_document(service: Any) -> dict[str, Any]:
    """Build the OpenAPI 3.1 document for a prediction service.

    Args:
        service: The ``PredictionService`` (its schema, classes and limits are described).

    Returns:
        The document as a JSON-ready dict.
    """
    schema: FeatureSchema = service.schema
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
    instance = {"oneOf": [{"$ref": "#/components/schemas/NamedInstance"},
                          {"$ref": "#/components/schemas/PositionalInstance"}]}  # fmt: skip
    limit = service.settings.max_instances
    batch = {"type": "array", "items": instance, "minItems": 1, "maxItems": limit}
    example = schema.example()
    request = {
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
        "examples": [{"features": [example[n] for n in names]}, {"instances": [example]}],
    }
    label = {"type": "string"} if service.predictor.is_classifier else {"type": ["number", "null"]}
    prediction: dict[str, Any] = {
        "type": "object",
        "properties": {
            "prediction": {"type": "array", "items": label},
            "model": {"$ref": "#/components/schemas/ModelRef"},
        },
        "required": ["prediction", "model"],
    }
    if service.predictor.is_classifier:
        prediction["properties"]["probabilities"] = {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    c: {"type": "number"} for c in class_keys(service.predictor.classes)
                },
            },
        }
        prediction["required"].append("probabilities")
    status_body = {"type": "object"}
    ref = service.model_ref
    return {
        "openapi": "3.1.0",
        "info": {
            "title": f"ml-api: {ref['name']} version {ref['version']}",
            "version": ref["version"],
            "description": "Predictions from a scikit-learn model. Also speaks the Open Inference "
            "Protocol under /v2 (see its specification).",
        },
        "paths": {
            "/predict": {
                "post": {
                    "summary": "Predict one instance or a batch",
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": request}},
                    },
                    "responses": _responses(
                        {"$ref": "#/components/schemas/Prediction"}, 400, 401, 413, 415, 422, 504
                    ),
                }
            },
            "/health": {"get": {"summary": "Liveness", "responses": _responses(status_body)}},
            "/ready": {"get": {"summary": "Readiness", "responses": _responses(status_body, 503)}},
            "/metadata": {
                "get": {"summary": "The model card", "responses": _responses(status_body, 401)}
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics",
                    "responses": {
                        "200": {"description": "OK", "content": {"text/plain": {"schema": {}}}}
                    },
                }
            },
        },
        "components": {
            "schemas": {
                "NamedInstance": named,
                "PositionalInstance": positional,
                "Prediction": prediction,
                "ModelRef": {
                    "type": "object",
                    "properties": {"name": {"type": "string"}, "version": {"type": "string"}},
                    "required": ["name", "version"],
                },
                "Error": {
                    "type": "object",
                    "properties": {
                        "error": {"type": "string"},
                        "details": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {
                                    "instance": {"type": ["integer", "null"]},
                                    "field": {"type": ["string", "null"]},
                                    "problem": {"type": "string"},
                                },
                                "required": ["instance", "field", "problem"],
                            },
                        },
                        "request_id": {"type": "string"},
                    },
                    "required": ["error", "details"],
                },
            }
        },
    }
