"""Helpers for the Open Inference Protocol conformance tests: the spec and valid requests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import yaml
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

SPEC_PATH = Path(__file__).resolve().parents[1] / "specs" / "open_inference_rest.yaml"
SPEC = yaml.safe_load(SPEC_PATH.read_text())
_REGISTRY = Registry().with_resource("spec", Resource(contents=SPEC, specification=DRAFT4))

PENGUIN = ["Biscoe", 50.0, 15.0, 220.0, 5500.0, "male"]
FEATURES = ["island", "bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g", "sex"]


def validate(body: Any, schema_name: str) -> None:
    """Validate a response body against ``components/schemas/<schema_name>`` of the spec."""
    schema = {"$ref": f"spec#/components/schemas/{schema_name}"}
    jsonschema.Draft4Validator(schema, registry=_REGISTRY).validate(body)


def spec_paths() -> set[str]:
    """The spec's paths with ``${NAME}`` templates turned into ``{NAME}``."""
    return {p.replace("${", "{").rstrip("/") or "/" for p in SPEC["paths"]}


def infer_request(rows: list[list[Any]], request_id: str | None = "req-1", **extra: Any) -> dict:
    """A V2 inference request with one tensor per penguin feature."""
    inputs = []
    for j, name in enumerate(FEATURES):
        numeric = name not in ("island", "sex")
        inputs.append(
            {
                "name": name,
                "datatype": "FP64" if numeric else "BYTES",
                "shape": [len(rows)],
                "data": [r[j] for r in rows],
            }
        )
    body: dict[str, Any] = {"inputs": inputs, **extra}
    if request_id is not None:
        body["id"] = request_id
    return body
