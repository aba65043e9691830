"""The image serving Flask and Django: real containers (``--network host``, ``--read-only``,
``--tmpfs /tmp``, each its own PORT), the README's requests and the request table over HTTP."""

from __future__ import annotations

import importlib.util
import json
import secrets
import time

import pytest
import requests

from tests.cases import body_bytes, check_response, headers, load_cases
from tests.container.engine import SESSION_ID, Container, free_port
from tests.container.readme import post_examples

pytestmark = pytest.mark.container

CASES = load_cases()
README_EXAMPLES = post_examples()
DJANGO_MERGED = importlib.util.find_spec("ml_api.api.django_app") is not None
APP_UID = "10001"

FRAMEWORK_ENV = {
    "flask": {},
    "django": {
        "ML_API_FRAMEWORK": "django",
        "ML_API_SECRET_KEY": secrets.token_urlsafe(50),
        "ML_API_ALLOWED_HOSTS": "127.0.0.1,localhost",
    },
}


@pytest.fixture(
    scope="module",
    params=[
        "flask",
        pytest.param(
            "django",
            marks=pytest.mark.skipif(not DJANGO_MERGED, reason="Django adapter not merged"),
        ),
    ],
)
def served(request, image):
    framework = request.param
    env = {
        # the request table's limits (tests/testdata assumes these, as the live tests do)
        "ML_API_MAX_INSTANCES": "50",
        "ML_API_MAX_BODY_BYTES": "65536",
        "WEB_CONCURRENCY": "2",
        **FRAMEWORK_ENV[framework],
    }
    # Health checks every second, so the image's HEALTHCHECK is seen to pass within the test.
    health = ["--health-interval", "1s", "--health-start-period", "60s"]
    container = Container(
        image.ref, f"ml_api-test-{SESSION_ID}-{framework}", free_port(), env, extra_args=health
    )
    try:
        container.wait_ready()
        yield framework, container
    finally:
        container.remove()


def test_readme_requests_get_the_documented_answers(served):
    _, container = served
    assert len(README_EXAMPLES) >= 5
    for example in README_EXAMPLES:
        r = requests.post(
            container.url + example.path,
            data=example.body,
            headers={"Content-Type": "application/json"},
            timeout=10,
        )
        body = r.json()
        documented = example.documented or {}
        if "error" in documented:
            assert r.status_code == 422, body
            documented_problems = {(d["instance"], d["field"]) for d in documented["details"]}
            assert {(d["instance"], d["field"]) for d in body["details"]} == documented_problems
            continue
        assert r.status_code == 200, (example.body, body)
        assert len(body["prediction"]) == example.n_instances()
        assert body["model"] == {"name": "penguins", "version": "1"}
        if "prediction" in documented:
            assert body["prediction"] == documented["prediction"]


@pytest.mark.parametrize(("name", "case"), CASES, ids=[n for n, _ in CASES])
def test_request_table(served, name, case):
    _, container = served
    r = requests.post(
        container.url + case["path"], data=body_bytes(case), headers=headers(case), timeout=10
    )
    assert r.headers["Content-Type"].startswith("application/json")
    check_response(case, r.status_code, r.json())


def test_trailing_slash_and_unknown_routes(served):
    _, container = served
    ok = requests.post(
        container.url + "/predict/",
        json={"features": ["Dream", 46.5, 17.9, 192.0, 3500.0, "female"]},
        timeout=10,
    )
    assert ok.status_code == 200 and ok.json()["prediction"] == ["Chinstrap"]
    missing = requests.get(container.url + "/nope", timeout=10)
    assert missing.status_code == 404 and missing.json()["error"]
    wrong_method = requests.get(container.url + "/predict", timeout=10)
    assert wrong_method.status_code == 405 and "POST" in wrong_method.headers["Allow"]


def test_probe_and_model_card_endpoints(served):
    _, container = served
    assert requests.get(container.url + "/health", timeout=10).json() == {"status": "ok"}
    ready = requests.get(container.url + "/ready", timeout=10)
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    card = requests.get(container.url + "/metadata", timeout=10).json()
    assert card["model"] == {"name": "penguins", "version": "1"}
    assert [f["name"] for f in card["features"]][:2] == ["island", "bill_length_mm"]


def test_metrics_are_served_from_a_read_only_container(served):
    _, container = served
    requests.post(
        container.url + "/predict",
        json={"features": ["Biscoe", 50.0, 15.0, 220.0, 5500.0, "male"]},
        timeout=10,
    )
    r = requests.get(container.url + "/metrics", timeout=10)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("text/plain")
    assert "ml_api_http_requests_total{" in r.text
    assert 'ml_api_predictions_total{model_name="penguins"' in r.text


def test_served_by_gunicorn_as_the_unprivileged_user(served):
    framework, container = served
    r = requests.get(container.url + "/health", timeout=10)
    assert r.headers.get("Server", "").startswith("gunicorn")
    assert container.exec("id", "-u").stdout.strip() == APP_UID
    status = container.exec("cat", "/proc/1/status").stdout
    uid_line = next(line for line in status.splitlines() if line.startswith("Uid:"))
    assert uid_line.split()[1:] == [APP_UID] * 4  # real, effective, saved, filesystem
    cmdline = container.exec("cat", "/proc/1/cmdline").stdout.split("\0")
    # exec form: PID 1 is the Python process that becomes the gunicorn master, not a shell
    assert cmdline[:3] == ["/opt/venv/bin/python", "/opt/ml-api/bin/ml-api", "serve"]
    assert f"with {framework} on http://0.0.0.0:{container.port}" in container.logs()


def test_root_filesystem_is_read_only_and_tmp_is_writable(served):
    _, container = served
    denied = container.exec("touch", "/app/models/x", check=False)
    assert denied.returncode != 0 and "Read-only file system" in denied.stderr
    assert container.exec("touch", "/tmp/x").returncode == 0


def test_image_healthcheck_reports_healthy(served):
    _, container = served
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        health = container.state().get("Health") or {}
        if health.get("Status") == "healthy":
            break
        time.sleep(0.5)
    assert health.get("Status") == "healthy", json.dumps(health, indent=1)
    assert health["Log"][-1]["ExitCode"] == 0
