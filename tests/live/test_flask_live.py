"""Flask under gunicorn, started as ``ml-api serve``, over real HTTP on loopback."""

import json
import os
import subprocess
import sys

import pytest
import requests

from tests.cases import body_bytes, check_response, headers, load_cases
from tests.live.server import LiveServer

pytestmark = pytest.mark.live
CASES = load_cases()


@pytest.fixture(scope="module")
def server(model_root):
    srv = LiveServer(model_root, "flask", workers=2)
    srv.wait_ready()
    yield srv
    code = srv.terminate()
    assert code == 0, srv.output()


@pytest.mark.parametrize(("name", "case"), CASES, ids=[n for n, _ in CASES])
def test_request_table_over_http(server, name, case):
    r = requests.post(
        server.url + case["path"], data=body_bytes(case), headers=headers(case), timeout=10
    )
    assert r.headers["Content-Type"].startswith("application/json")
    assert r.headers["X-Request-ID"]
    check_response(case, r.status_code, r.json())


def test_seed_curl_form_and_readme_answer(server):
    r = requests.post(
        server.url + "/predict",
        json={"features": ["Biscoe", 50.0, 15.0, 220.0, 5500.0, "male"]},
        timeout=10,
    )
    assert r.status_code == 200
    assert r.json()["prediction"] == ["Gentoo"]


def test_served_by_gunicorn_not_a_dev_server(server):
    r = requests.get(server.url + "/health", timeout=5)
    assert r.headers.get("Server", "").startswith("gunicorn")
    assert "development server" not in server.output().lower()


def test_large_body_refused_413(server):
    big = b'{"features": [' + b"1," * 600_000 + b"1]}"
    r = requests.post(
        server.url + "/predict", data=big, headers={"Content-Type": "application/json"}, timeout=10
    )
    assert r.status_code == 413


def test_no_traceback_in_any_response(server):
    for body in (b"{", b"[]", b'{"features": {"a": 1}}', b'{"features": [[[[1]]]]}'):
        r = requests.post(
            server.url + "/predict",
            data=body,
            headers={"Content-Type": "application/json"},
            timeout=10,
        )
        assert 400 <= r.status_code < 500
        assert "Traceback" not in r.text and json.loads(r.text)["error"]


def test_sigterm_exits_zero_and_removes_its_metrics_dir(model_root, tmp_path):
    srv = LiveServer(model_root, "flask", workers=1, env={"TMPDIR": str(tmp_path)})
    srv.wait_ready()
    assert requests.get(srv.url + "/health", timeout=5).status_code == 200
    assert len(list(tmp_path.glob("ml-api-metrics-*"))) == 1
    assert srv.terminate() == 0
    assert list(tmp_path.glob("ml-api-metrics-*")) == []


def test_serve_without_model_exits_nonzero_with_one_message(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "ml_api.cli",
            "serve",
            "--model-root",
            str(tmp_path / "none"),
            "--port",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "TMPDIR": str(tmp_path)},
    )
    assert proc.returncode == 1
    lines = (proc.stdout + proc.stderr).splitlines()
    assert len(lines) == 1, lines  # one clear line, no traceback
    record = json.loads(lines[0])
    assert record["level"] == "CRITICAL" and record["logger"] == "ml_api.serve"
    assert str(tmp_path.resolve()) in record["message"] and "ml-api train" in record["message"]
    assert list(tmp_path.glob("ml-api-metrics-*")) == []  # nothing left behind
