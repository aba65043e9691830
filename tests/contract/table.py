"""The parity table: every ``tests/testdata`` request at both spellings of ``/predict``, plus the
routes, methods and headers around it. Each entry is a request both apps must answer alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tests.cases import body_bytes, load_cases

VALID = b'{"features": ["Biscoe", 50.0, 15.0, 220.0, 5500.0, "male"]}'
JSON = "application/json"


@dataclass(frozen=True)
class Call:
    """One request: what to send."""

    method: str
    path: str
    body: bytes = b""
    content_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


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
    return calls


CALLS = _table()

COMPARED_HEADERS = ("Content-Type", "Content-Length", "X-Request-ID", "WWW-Authenticate")
"""Headers that must be equal byte for byte; ``Allow`` is compared as a set of methods."""


def allow_set(value: str | None) -> set[str] | None:
    return None if value is None else {m.strip() for m in value.split(",")}
