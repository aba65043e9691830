"""The Django project as a user runs it: manage.py, the production settings, check --deploy."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from ml_api.api import django_app
from tests.conftest import DJANGO_SECRET_KEY
from tests.live.server import free_port

PROJECT = Path(django_app.__file__).resolve().parent
MANAGE = PROJECT / "manage.py"


def env_for(model_root, **extra):
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("ML_API_") and k != "DJANGO_SETTINGS_MODULE"
    }
    return {**env, "ML_API_MODEL_ROOT": str(model_root), "PYTHONUNBUFFERED": "1", **extra}


def manage(model_root, *args, cwd, **env):
    return subprocess.run(
        [sys.executable, str(MANAGE), *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env=env_for(model_root, **env),
    )


def test_production_settings_refuse_to_start_without_secret_key(model_root, tmp_path):
    proc = manage(model_root, "check", cwd=tmp_path)
    assert proc.returncode != 0
    assert "ML_API_SECRET_KEY is not set" in proc.stderr


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("abc", "3 characters, fewer than 50"),
        ("ab" * 30, "2 distinct characters, fewer than 5"),
        ("django-insecure-" + "x1Y2z3" * 10, "it starts with 'django-insecure-'"),
    ],
)
def test_production_refuses_a_weak_secret_key_with_the_reason(model_root, tmp_path, key, reason):
    proc = manage(model_root, "check", cwd=tmp_path, ML_API_SECRET_KEY=key)
    assert proc.returncode != 0
    assert f"ML_API_SECRET_KEY is too weak for production: {reason}" in proc.stderr
    assert key not in proc.stderr  # the reason, never the key
    proc = manage(model_root, "check", cwd=tmp_path, ML_API_SECRET_KEY=key, ML_API_DEBUG="true")
    assert proc.returncode == 0, proc.stderr  # development may use any key


def test_serve_django_without_secret_key_exits_1_with_one_message(model_root, tmp_path):
    proc = subprocess.run(
        [
            *(sys.executable, "-m", "ml_api.cli", "serve", "--framework", "django"),
            *("--host", "127.0.0.1", "--port", str(free_port()), "--workers", "1"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=env_for(model_root),
    )
    assert proc.returncode == 1
    lines = (proc.stdout + proc.stderr).splitlines()
    assert len(lines) == 1, lines  # one clear JSON line, no traceback
    record = json.loads(lines[0])
    assert record["level"] == "CRITICAL" and record["logger"] == "ml_api.serve"
    assert "ML_API_SECRET_KEY is not set" in record["message"]


def test_debug_mode_uses_a_development_key_with_a_warning(model_root, tmp_path):
    proc = manage(model_root, "check", cwd=tmp_path, ML_API_DEBUG="true")
    assert proc.returncode == 0, proc.stderr
    assert "using a development SECRET_KEY" in proc.stderr


def test_check_deploy_passes_with_production_settings(model_root, tmp_path):
    proc = manage(
        model_root,
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        cwd=tmp_path,
        ML_API_SECRET_KEY=DJANGO_SECRET_KEY,
        ML_API_ALLOWED_HOSTS="ml-api.example.com,.svc.cluster.local",
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "no issues" in proc.stdout + proc.stderr


def test_check_deploy_fails_in_debug_mode(model_root, tmp_path):
    proc = manage(
        model_root, "check", "--deploy", "--fail-level", "WARNING", cwd=tmp_path, ML_API_DEBUG="1"
    )
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert "security.W018" in out and "security.W009" in out


def test_settings_come_from_the_environment(model_root, tmp_path):
    proc = manage(
        model_root,
        "diffsettings",
        cwd=tmp_path,
        ML_API_SECRET_KEY=DJANGO_SECRET_KEY,
        ML_API_ALLOWED_HOSTS="ml-api.example.com, .svc.cluster.local",
        ML_API_MAX_BODY_BYTES="12345",
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "ALLOWED_HOSTS = ['ml-api.example.com', '.svc.cluster.local']" in out
    assert "DATA_UPLOAD_MAX_MEMORY_SIZE = 12345" in out
    assert "APPEND_SLASH = False" in out
    assert "DATABASES" not in out  # Django's default, {}: no database
    assert "DEBUG = True" not in out
    assert f"SECRET_KEY = '{DJANGO_SECRET_KEY}'" in out


def test_manage_py_works_from_its_own_directory(model_root):
    # Python puts the script's directory first on sys.path: nothing in it may shadow ``ml_api``
    # (the Django app labelled ``ml_api`` lives in ``ml_api_app/`` for that reason).
    proc = manage(model_root, "check", cwd=PROJECT, ML_API_SECRET_KEY=DJANGO_SECRET_KEY)
    assert proc.returncode == 0, proc.stderr


def test_missing_model_is_one_clear_error(tmp_path):
    proc = manage(tmp_path, "check", cwd=tmp_path, ML_API_SECRET_KEY=DJANGO_SECRET_KEY)
    assert proc.returncode != 0
    (line,) = (proc.stdout + proc.stderr).splitlines()  # ml-api's JSON logging, one record
    record = json.loads(line)
    assert record["level"] == "CRITICAL"
    assert "ImproperlyConfigured: no model 'penguins'" in record["exc_info"]
    assert str(tmp_path.resolve()) in record["exc_info"]


@pytest.mark.live
def test_runserver_serves_the_api_for_development(model_root, tmp_path):
    port = free_port()
    log = tmp_path / "runserver.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, str(MANAGE), "runserver", f"127.0.0.1:{port}", "--noreload"],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
            env=env_for(model_root, ML_API_DEBUG="true"),
        )
        try:
            url = f"http://127.0.0.1:{port}"
            _wait_ready(url, proc, log)
            r = requests.post(
                url + "/predict",
                json={"features": ["Biscoe", 50.0, 15.0, 220.0, 5500.0, "male"]},
                timeout=10,
            )
            assert r.status_code == 200 and r.json()["prediction"] == ["Gentoo"]
            # DEBUG is on, yet a 404 and a disallowed host are still the JSON envelope
            r = requests.get(url + "/nope", timeout=10)
            assert r.status_code == 404 and r.headers["Content-Type"] == "application/json"
            r = requests.get(url + "/metadata", headers={"Host": "evil.example"}, timeout=10)
            assert r.status_code == 400 and r.json()["details"][0]["field"] == "Host"
        finally:
            proc.terminate()
            proc.wait(30)


def _wait_ready(url, proc, log, timeout=60.0):
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()
        try:
            if requests.get(url + "/ready", timeout=1).status_code == 200:
                return
        except requests.ConnectionError:
            time.sleep(0.2)
    raise AssertionError(f"runserver not ready:\n{log.read_text()}")
