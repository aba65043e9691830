"""The parity table: every ``tests/testdata`` request at both spellings of ``/predict``, plus the
routes, methods and headers around it. Each entry is a request both apps must answer alike.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from tests.cases import body_bytes, load_cases

VALID = b'{"features": ["Biscoe", 50.0, 15.0, 220.0, 5500.0, "male"]}'
JSON = "application/json"
FEATURES = ("island", "bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g", "sex")
ROW = ["Biscoe", 50.0, 15.0, 220.0, 5500.0, "male"]


@dataclass(frozen=True)
class Call:
    """One request: what to send (``volatile``: the body changes between calls, e.g. /metrics)."""

    method: str
    path: str
    body: bytes = b""
    content_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    volatile: bool = False


def _v2_tensors(row: list, names: tuple[str, ...] = FEATURES) -> dict:
    return {
        "id": "req-1",
        "inputs": [
            {
                "name": name,
                "datatype": "BYTES" if isinstance(value, str) else "FP64",
                "shape": [1],
                "data": [value],
            }
            for name, value in zip(names, row, strict=True)
        ],
    }


def _table() -> dict[str, Call]:
    calls: dict[str, Call] = {}
    for name, case in load_cases():
        for path in ("/predict", "/predict/"):
            calls[f"{name}@{path}"] = Call(
                case["method"], path, body_bytes(case), case["content_type"]
            )
    routes = [
        ("GET", "/health"),
        ("GET", "/ready"),
        ("GET", "/metadata"),
        ("HEAD", "/health"),
        ("HEAD", "/ready"),
        ("HEAD", "/metadata"),
        ("GET", "/predict"),
        ("GET", "/predict/"),
        ("PUT", "/predict"),
        ("PATCH", "/predict/"),
        ("DELETE", "/predict"),
        ("HEAD", "/predict"),
        ("TRACE", "/predict"),
        ("POST", "/health"),
        ("PUT", "/ready"),
        ("DELETE", "/metadata"),
        ("OPTIONS", "/predict"),
        ("OPTIONS", "/predict/"),
        ("OPTIONS", "/health"),
        ("GET", "/"),
        ("GET", "/nope"),
        ("POST", "/nope"),
        ("OPTIONS", "/nope"),
        ("GET", "/health/"),
        ("GET", "/metadata/"),
        ("POST", "/predict/extra"),
        ("POST", "/predict//"),
        ("POST", "/Predict"),
        ("GET", "/h%C3%A9llo"),
        ("POST", "/metrics"),
        ("GET", "/metrics/"),
        ("GET", "/v2"),
        ("GET", "/v2/"),
        ("GET", "/v2/health/live"),
        ("GET", "/v2/health/ready"),
        ("POST", "/v2/health/ready"),
        ("GET", "/v2/models/penguins"),
        ("GET", "/v2/models/penguins/"),
        ("GET", "/v2/models/penguins/versions/1"),
        ("GET", "/v2/models/penguins/versions/9"),
        ("GET", "/v2/models/other"),
        ("GET", "/v2/models/penguins/ready"),
        ("GET", "/v2/models/penguins/versions/1/ready"),
        ("GET", "/v2/models/other/ready"),
        ("GET", "/v2/models/penguins/infer"),
        ("HEAD", "/v2/models/penguins"),
        ("OPTIONS", "/v2/models/penguins/infer"),
        ("GET", "/openapi.json"),
        ("GET", "/docs"),
        ("HEAD", "/docs"),
        ("POST", "/openapi.json"),
        ("GET", "/docs/"),
        ("GET", "/docs/swagger-initializer.js"),
        ("GET", "/docs/nothing.js"),
        ("GET", "/model"),
        ("POST", "/model"),
    ]
    for method, path in routes:
        calls[f"{method} {path}"] = Call(method, path)
    calls["POST /predict with a query string"] = Call("POST", "/predict?debug=1", VALID, JSON)
    calls["GET /health with a JSON body"] = Call("GET", "/health", VALID, JSON)
    calls["POST /predict Accept: text/html"] = Call(
        "POST", "/predict", VALID, JSON, {"Accept": "text/html"}
    )
    calls["POST /predict Accept: application/xml, bad body"] = Call(
        "POST", "/predict", b"{", JSON, {"Accept": "application/xml"}
    )
    calls["POST /predict with session and CSRF cookies"] = Call(
        "POST", "/predict", VALID, JSON, {"Cookie": "sessionid=abc; csrftoken=def"}
    )
    calls["POST /predict Content-Type with +json suffix"] = Call(
        "POST", "/predict", VALID, "application/vnd.api+json"
    )
    calls["POST /predict form-encoded"] = Call(
        "POST", "/predict", b"features=1", "application/x-www-form-urlencoded"
    )
    calls["POST /predict multipart"] = Call(
        "POST", "/predict", b"--x\r\n\r\n--x--", "multipart/form-data; boundary=x"
    )
    calls["POST /predict invalid UTF-8"] = Call("POST", "/predict", b'{"features": ["\xff"]}', JSON)
    calls["POST /predict unicode category"] = Call(
        "POST",
        "/predict",
        '{"features": ["Bisc\u2028oe", 50, 15, 220, 5500, "m\u00e4le"]}'.encode(),
        JSON,
    )
    calls["POST /predict deep nesting"] = Call("POST", "/predict", b"[" * 100_000, JSON)
    calls["POST /predict over the byte limit"] = Call(
        "POST", "/predict", b'{"features": [' + b"1," * 40_000 + b"1]}", JSON
    )
    calls["GET /metrics"] = Call("GET", "/metrics", volatile=True)
    valid_v2 = json.dumps(_v2_tensors(ROW)).encode()
    for path in ("/v2/models/penguins/infer", "/v2/models/penguins/versions/1/infer"):
        calls[f"V2 infer valid @{path}"] = Call("POST", path, valid_v2, JSON)
    infer = "/v2/models/penguins/infer"
    calls["V2 infer without Content-Type"] = Call("POST", infer, valid_v2)
    calls["V2 infer text/plain"] = Call("POST", infer, valid_v2, "text/plain")
    calls["V2 infer unknown model"] = Call("POST", "/v2/models/other/infer", valid_v2, JSON)
    calls["V2 infer unknown version"] = Call(
        "POST", "/v2/models/penguins/versions/7/infer", valid_v2, JSON
    )
    calls["V2 infer malformed JSON"] = Call("POST", infer, b"{", JSON)
    calls["V2 infer empty body"] = Call("POST", infer, b"", JSON)
    calls["V2 infer binary extension"] = Call(
        "POST", infer, valid_v2, JSON, {"Inference-Header-Content-Length": "10"}
    )
    calls["V2 infer unseen category"] = Call(
        "POST", infer, json.dumps(_v2_tensors(["Atlantis", *ROW[1:]])).encode(), JSON
    )
    outside = [ROW[0], ROW[1], ROW[2], 900.0, 90000, ROW[5]]  # beyond the training ranges
    calls["POST /predict outside the training range (warnings)"] = Call(
        "POST", "/predict", json.dumps({"features": [ROW, outside]}).encode(), JSON
    )
    calls["V2 infer outside the training range (parameters)"] = Call(
        "POST", infer, json.dumps(_v2_tensors(outside)).encode(), JSON
    )
    calls["V2 infer string for a number"] = Call(
        "POST", infer, json.dumps(_v2_tensors([ROW[0], "50", *ROW[2:]])).encode(), JSON
    )
    calls["V2 infer a missing tensor"] = Call(
        "POST", infer, json.dumps(_v2_tensors(ROW[:5], FEATURES[:5])).encode(), JSON
    )
    calls["V2 infer only predict_proba"] = Call(
        "POST",
        infer,
        json.dumps({**_v2_tensors(ROW), "outputs": [{"name": "predict_proba"}]}).encode(),
        JSON,
    )
    calls["V2 infer over the byte limit"] = Call(
        "POST", infer, b'{"inputs": [' + b" " * 70_000 + b"]}", JSON
    )
    return calls


CALLS = _table()

COMPARED_HEADERS = ("Content-Type", "Content-Length", "X-Request-ID", "WWW-Authenticate")
"""Headers that must be equal byte for byte; ``Allow`` is compared as a set of methods."""


def allow_set(value: str | None) -> set[str] | None:
    return None if value is None else {m.strip() for m in value.split(",")}
