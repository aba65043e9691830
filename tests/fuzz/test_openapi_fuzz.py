"""Fuzz both frameworks from their own ``/openapi.json`` with schemathesis (issue 12, item 8).

For every documented operation, schemathesis generates requests that fit the document (and, in
its negative phase, requests that break it). Whatever it sends: no 5xx, every response valid
against the document (status, content type, body schema), and no error body over the bound of
:data:`ml_api.core.errors.MAX_ERROR_BODY_BYTES`. The run is bounded and derandomized, so it is the
same run each time (and part of ``make test``).
"""

from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from ml_api.api.flask_app import create_app
from ml_api.core.errors import MAX_ERROR_BODY_BYTES

EXAMPLES_PER_OPERATION = int(os.environ.get("FUZZ_EXAMPLES", "75"))
"""Per operation and generation mode: a few hundred requests per framework in all (``make test``);
``make fuzz`` runs more (``FUZZ_EXAMPLES``)."""

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module", params=["flask", "django"])
def api_schema(request, settings, service, django_app):
    app = create_app(settings, service) if request.param == "flask" else django_app
    return schemathesis.openapi.from_wsgi("/openapi.json", app)


def _operations(api_schema) -> list:
    ops = [result.ok() for result in api_schema.get_all_operations()]
    assert "POST /predict" in {op.label for op in ops}
    return ops


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_input_breaks_the_documented_contract(api_schema, mode):
    for operation in _operations(api_schema):
        # Positive cases address the served model (random names would only ever find 404s).
        served = {"name": "penguins", "version": "1"}
        path_parameters = (
            {k: v for k, v in served.items() if "{" + k + "}" in operation.path}
            if mode is GenerationMode.POSITIVE
            else None
        )

        @given(case=operation.as_strategy(generation_mode=mode, path_parameters=path_parameters))
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            derandomize=True,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case):
            response = case.call()
            case.validate_response(response, checks=CHECKS)
            if response.status_code >= 400:
                assert len(response.content) <= MAX_ERROR_BODY_BYTES, response.content[:200]

        try:
            check()
        except Unsatisfiable:
            # An operation with no body, query or header to break (a GET, the repository's
            # POSTs, whose only input is a path segment any string fills): no negative case exists.
            nothing_to_break = operation.method.upper() == "GET" or not (
                list(operation.body) or list(operation.query) or list(operation.headers)
            )
            if mode is GenerationMode.NEGATIVE and nothing_to_break:
                continue
            raise
