"""What only Django does under gunicorn, over real HTTP (``test_both_live.py``: both apps).

The ``ALLOWED_HOSTS`` check with the probes' exemption, plain gunicorn on the WSGI module, JSON
logs from every source, and the drain on SIGTERM.
"""

import json
import signal
import sys
import time

import pytest
import requests

from tests.conftest import VALID_ROW
from tests.live.conftest import DJANGO_ENV
from tests.live.server import LiveServer

pytestmark = pytest.mark.live


@pytest.fixture(scope="module")
def server(model_root):
    """``ml-api serve --framework django`` with 2 workers (the shared ``server`` is both apps)."""
    srv = LiveServer(model_root, "django", workers=2, env=DJANGO_ENV)
    srv.wait_ready()
    yield srv
    code = srv.terminate()
    assert code == 0, srv.output()


def test_probes_answer_the_kubelets_pod_ip_host(server):
    pod_ip = {"Host": "10.244.0.12:8000"}
    assert requests.get(server.url + "/health", headers=pod_ip, timeout=5).status_code == 200
    assert requests.get(server.url + "/ready", headers=pod_ip, timeout=5).status_code == 200
    r = requests.post(server.url + "/predict", json={"features": VALID_ROW}, headers=pod_ip)
    assert r.status_code == 400 and r.json()["details"][0]["field"] == "Host"


def test_plain_gunicorn_on_the_wsgi_module_loads_the_model_in_app_ready(model_root):
    # The other way to run it: any WSGI server on ml_api.api.django_app.wsgi:application,
    # settings from the environment, the model loaded by AppConfig.ready() in each worker.
    srv = LiveServer(
        model_root,
        env=DJANGO_ENV,
        argv=lambda port: [
            sys.executable,
            "-m",
            "gunicorn",
            "ml_api.api.django_app.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "2",
        ],
    )
    srv.wait_ready()
    r = requests.post(srv.url + "/predict/", json={"features": VALID_ROW}, timeout=10)
    assert r.status_code == 200 and r.json()["model"]["version"] == "1"
    assert srv.terminate() == 0, srv.output()


def test_every_output_line_is_json_with_request_ids(model_root):
    srv = LiveServer(
        model_root, "django", workers=2, env={**DJANGO_ENV, "ML_API_DRAIN_SECONDS": "0"}
    )
    srv.wait_ready()
    sent = []
    for body in (json.dumps({"features": VALID_ROW}), "{", '{"features": [1]}'):
        r = requests.post(
            srv.url + "/predict/",
            data=body,
            headers={"Content-Type": "application/json"},
            timeout=10,
        )
        sent.append((r.headers["X-Request-ID"], r.status_code))
    requests.post(srv.url + "/predict", data="x", headers={"X-Request-ID": "mine-1"}, timeout=10)
    requests.get(srv.url + "/nope", timeout=10)
    requests.get(srv.url + "/metadata", headers={"Host": "evil.example"}, timeout=10)
    assert srv.terminate() == 0
    records = [json.loads(line) for line in srv.output().splitlines()]  # any non-JSON line fails
    for record in records:
        assert {"timestamp", "level", "logger", "message"} <= set(record)
    access = {r["request_id"]: r for r in records if r["logger"] == "ml_api.access"}
    for rid, status in sent:
        rec = access[rid]
        assert (rec["status"], rec["path"], rec["route"]) == (status, "/predict/", "/predict")
    assert access[sent[0][0]]["instances"] == 1 and access[sent[0][0]]["model_version"] == "1"
    assert access["mine-1"]["status"] == 415
    statuses = {(r["route"], r["status"]) for r in access.values()}
    assert {("<unmatched>", 404), ("<unmatched>", 400)} <= statuses
    assert any("Shutting down" in r["message"] for r in records)  # gunicorn's own lines too


def test_sigterm_drains_readiness_first_then_exits_zero(model_root):
    srv = LiveServer(
        model_root, "django", workers=2, env={**DJANGO_ENV, "ML_API_DRAIN_SECONDS": "3"}
    )
    srv.wait_ready()
    srv.proc.send_signal(signal.SIGTERM)
    with requests.Session() as s:
        deadline = time.monotonic() + 3
        ready = 200
        while ready == 200 and time.monotonic() < deadline:
            ready = s.get(srv.url + "/ready", timeout=5).status_code
        assert ready == 503  # out of rotation while still serving
        r = s.post(srv.url + "/predict", json={"features": VALID_ROW}, timeout=5)
        assert r.status_code == 200
    assert srv.terminate() == 0
