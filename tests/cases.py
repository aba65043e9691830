"""The request table in ``tests/testdata/*.json``, shared by core, Flask, Django and parity tests.

Each file is one request (method, path, Content-Type, a JSON or raw body) and what must come back
(status, and the ``(instance, field)`` pairs the error's details must name).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

TESTDATA = Path(__file__).resolve().parent / "testdata"


def load_cases() -> list[tuple[str, dict[str, Any]]]:
    """Return ``(name, case)`` for every file, sorted by name."""
    return [(p.stem, json.loads(p.read_text())) for p in sorted(TESTDATA.glob("*.json"))]


def body_bytes(case: dict[str, Any]) -> bytes:
    """The exact bytes to send for a case."""
    if "raw_body" in case:
        return case["raw_body"].encode()
    return json.dumps(case["json_body"]).encode()


def headers(case: dict[str, Any]) -> dict[str, str]:
    """Request headers for a case (no Content-Type when the case has none)."""
    return {"Content-Type": case["content_type"]} if case["content_type"] else {}


def check_response(case: dict[str, Any], status: int, body: dict[str, Any]) -> None:
    """Assert the contract for one case: status, envelope shape and the named problems."""
    expect = case["expect"]
    assert status == expect["status"], body
    if status == 200:
        assert set(body) <= {"prediction", "probabilities", "model"}
        n = len(body["prediction"])
        assert n >= 1
        assert len(body["probabilities"]) == n
        for probs in body["probabilities"]:
            assert set(probs) == {"Adelie", "Chinstrap", "Gentoo"}
            # 1e-6: ONNX Runtime computes probabilities in float32 (ML_API_RUNTIME=auto serves it)
            assert abs(sum(probs.values()) - 1.0) < 1e-6
        assert body["model"]["name"] == "penguins"
        return
    assert set(body) == {"error", "details", "request_id"}, body
    assert isinstance(body["error"], str) and body["error"] and "\n" not in body["error"]
    assert "Traceback" not in json.dumps(body)
    named = {(d["instance"], d["field"]) for d in body["details"]}
    for problem in expect["problems"]:
        assert (problem["instance"], problem["field"]) in named, (problem, body)
