"""``ml-api serve`` through :mod:`ml_api.serving.launch`: the development server of each framework.

gunicorn and granian are started by the live suites (tests/live); these start ``--dev``, which
runs the framework's own server (Flask's ``run``, or ``wsgiref`` for Django) in one process.
"""

from __future__ import annotations

import json

import pytest
import requests

from ml_api.serving.launch import port_in_use
from tests.cases import TESTDATA
from tests.live.server import LiveServer


@pytest.mark.parametrize("framework", ["flask", "django"])
def test_the_development_server_serves_predictions(model_root, framework):
    case = json.loads((TESTDATA / "valid_single_named.json").read_text())
    env = {"ML_API_SECRET_KEY": "k3Y-for-the-dev-server-test-" + "aB9x" * 8}
    server = LiveServer(model_root, framework, args=("--dev",), env=env)
    with server:
        r = requests.post(server.url + "/predict", json=case["json_body"], timeout=30)
        assert r.status_code == 200, r.text
        assert r.json()["prediction"] == ["Gentoo"]
        assert port_in_use("127.0.0.1", server.port) is not None  # what serve refuses to share
    records = [json.loads(line) for line in server.output().splitlines() if line.startswith("{")]
    messages = [r["message"] for r in records if r.get("logger") == "ml_api.serve"]
    assert messages[1].startswith("development server: use 'ml-api serve' without --dev")
    assert messages[0].startswith("serving model penguins version 1 (") and framework in messages[0]
