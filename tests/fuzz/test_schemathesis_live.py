"""schemathesis against the real servers: their own ``/openapi.json`` and the Open Inference spec.

Flask and Django each run as ``ml-api serve`` (gunicorn) on loopback. For every operation of

- the document each server serves at ``/openapi.json`` (read over HTTP from that server), and
- the Open Inference Protocol's REST spec (``tests/specs/open_inference_rest.yaml``, its
  ``${MODEL_NAME}`` templates adapted),

schemathesis generates requests that fit the document (positive) and requests that break it
(negative), derandomized, ``FUZZ_EXAMPLES`` per operation and mode (``make fuzz`` raises it), and
sends them over HTTP. Checks: no 5xx; a body that fits the documented schema of its status;
ml-api's own document must also list every status it answers, and must be as strict as the server
where it can be (positive requests with a valid body are answered 200, as their count shows).
Every operation must get requests in both modes. The counts per status are written to
``$TMPDIR/ml-api-schemathesis-<source>-<framework>.json``.
"""

from __future__ import annotations

import copy
import gzip
import json
import os
import tempfile
import zlib
from collections import Counter
from pathlib import Path

import pytest
import schemathesis
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from ml_api.core.errors import MAX_ERROR_BODY_BYTES
from tests.contract.open_inference import SPEC_PATH
from tests.live.conftest import framework_env
from tests.live.server import LiveServer

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "30"))
"""Requests per operation and mode (``make test``: 30; ``make fuzz``: 1000)."""

OWN_CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
              response_schema_conformance]  # fmt: skip
SPEC_CHECKS = [not_a_server_error, response_schema_conformance]
"""The Open Inference spec documents 200 and 400 only (404, 413, 415 are ml-api's additions,
which the protocol's prose allows), so only the bodies of the documented statuses are checked."""

SERVED = {"name": "penguins", "version": "1", "MODEL_NAME": "penguins", "MODEL_VERSION": "1"}


@pytest.fixture(scope="module", params=["flask", "django"])
def server(request, model_root):
    srv = LiveServer(model_root, request.param, workers=1, env=framework_env(request.param))
    srv.wait_ready()
    yield request.param, srv
    assert srv.terminate() == 0, srv.output()


def _open_inference_spec(base_url: str):
    spec = yaml.safe_load(SPEC_PATH.read_text())
    spec["paths"] = {p.replace("${", "{"): op for p, op in spec["paths"].items()}
    api = schemathesis.openapi.from_dict(copy.deepcopy(spec))
    api.config.update(base_url=base_url)
    return api


def _encode_as_declared(case) -> None:
    """A client that declares ``Content-Encoding: gzip`` (or ``deflate``) compresses its body."""
    coding = (case.headers or {}).get("Content-Encoding", "").lower()
    if coding in ("gzip", "x-gzip", "deflate") and case.body is not None:
        raw = case.body if isinstance(case.body, bytes) else json.dumps(case.body).encode()
        case.body = gzip.compress(raw) if "gzip" in coding else zlib.compress(raw)


@pytest.mark.parametrize("source", ["own", "open-inference"])
def test_schemathesis_finds_no_fault_over_http(server, source):
    framework, srv = server
    if source == "own":
        api = schemathesis.openapi.from_url(srv.url + "/openapi.json")
        checks = OWN_CHECKS
    else:
        api = _open_inference_spec(srv.url)
        checks = SPEC_CHECKS
    counts: dict[str, Counter] = {}
    for operation in [result.ok() for result in api.get_all_operations()]:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            tally = counts.setdefault(f"{operation.label} {mode.value}", Counter())
            _run(
                operation,
                mode,
                checks,
                tally,
                fixed_path=mode is GenerationMode.POSITIVE,
            )
    report = Path(tempfile.gettempdir()) / f"ml-api-schemathesis-{source}-{framework}.json"
    report.write_text(json.dumps({k: dict(v) for k, v in counts.items()}, indent=1))
    for label, tally in counts.items():
        if not label.startswith("GET") or label.endswith("positive"):
            assert sum(tally.values()) > 0, f"no request generated for {label}"
    # every POST answers 200 to some valid request, but unload: its only model here is the
    # default one, which the repository refuses to unload (400; /predict must keep answering)
    posted = [
        t
        for label, t in counts.items()
        if label.startswith("POST") and "positive" in label and "/unload" not in label
    ]
    assert all(t.get("200", 0) > 0 for t in posted) or source != "own", counts


def _run(operation, mode, checks, tally: Counter, fixed_path: bool) -> None:
    path_parameters = (
        {k: v for k, v in SERVED.items() if "{" + k + "}" in operation.path} if fixed_path else None
    )

    @given(case=operation.as_strategy(generation_mode=mode, path_parameters=path_parameters))
    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case):
        _encode_as_declared(case)
        response = case.call(timeout=30)
        tally[str(response.status_code)] += 1
        case.validate_response(response, checks=checks)
        if response.status_code >= 400:
            assert len(response.content) <= MAX_ERROR_BODY_BYTES, response.content[:200]

    try:
        check()
    except Unsatisfiable:
        # An operation with no body, query or header to break (a GET, the repository's POSTs,
        # whose only input is a path segment any string fills): no negative case exists.
        nothing_to_break = operation.method.upper() == "GET" or not (
            list(operation.body) or list(operation.query) or list(operation.headers)
        )
        if mode is GenerationMode.NEGATIVE and nothing_to_break:
            tally["nothing to break"] += 1
            return
        raise
