"""What the built image is: its configuration, what is (and is not) inside, and the build context
the engine receives."""

from __future__ import annotations

import subprocess

import pytest
import requests

from tests.container.engine import ROOT, SESSION_ID, Container, docker, free_port, inspect_image

pytestmark = pytest.mark.container


def sh(image_ref: str, script: str) -> subprocess.CompletedProcess:
    """Run a shell script in a throwaway container of the image (read-only, no network use)."""
    return docker(
        "run", "--rm", "--network", "host", "--read-only", "--entrypoint", "sh", image_ref,
        "-c", script,
    )  # fmt: skip


def test_image_configuration(image):
    config = inspect_image(image.ref)["Config"]
    assert config["User"] == "10001:0"  # numeric, so Kubernetes' runAsNonRoot can check it
    assert config["WorkingDir"] == "/app"
    assert config["Entrypoint"] == ["ml-api", "serve"]  # exec form: no shell between
    assert set(config["ExposedPorts"]) == {"5000/tcp", "8000/tcp"}
    assert config["Healthcheck"]["Test"] == ["CMD", "python", "-m", "ml_api.serving.healthcheck"]
    assert "ML_API_MODEL_ROOT=/app/models" in config["Env"]


def test_runtime_stage_has_no_build_tools_sources_or_caches(image):
    script = r"""
        for tool in gcc cc g++ make git curl wget; do
            command -v "$tool" && echo "found $tool"
        done
        ls /opt/venv/bin/pip* 2>/dev/null && echo "found pip in the venv"
        [ -e /build ] && echo "found /build"
        [ -e /root/.cache ] && echo "found /root/.cache"
        find / -xdev \( -name test_api.py -o -name conftest.py \) -print 2>/dev/null
        find /opt/venv/lib -type d \( -name tests -o -path '*/joblib/test' \) -print
        ls -A /app
        true
    """
    assert sh(image.ref, script).stdout.split() == ["models"]


def test_default_model_is_inside_and_verifies(image):
    proc = docker("run", "--rm", "--network", "host", "--read-only", "--entrypoint", "ml-api",
                  image.ref, "info")  # fmt: skip
    assert '"name": "penguins"' in proc.stdout and '"version": "1"' in proc.stdout


def test_app_files_belong_to_group_zero_with_owner_permissions(image):
    # Platforms that run an arbitrary UID in group 0 (OpenShift) can read what 10001 can.
    out = sh(image.ref, "find /app -exec stat -c '%u %g %A' {} +").stdout.splitlines()
    assert out, "no files under /app"
    for line in out:
        uid, gid, mode = line.split()
        assert (uid, gid) == ("10001", "0")
        assert mode[1:4].replace("w", "-") == mode[4:7].replace("w", "-")  # group r/x = owner's


def test_build_context_is_only_what_the_dockerfile_needs(docker_engine, tmp_path):
    # Build a throwaway image that copies the whole context, with the repository's .dockerignore.
    dockerfile = tmp_path / "Dockerfile.context"
    dockerfile.write_text("FROM python:3.11-slim\nCOPY . /ctx\n")
    tag = "ml_api-test-context:latest"
    docker("build", "--network", "host", "-q", "-f", str(dockerfile), "-t", tag, str(ROOT))
    try:
        listing = docker("run", "--rm", "--network", "host", "--entrypoint", "sh", tag, "-c",
                         "cd /ctx && find . -maxdepth 2 | sort").stdout.split()  # fmt: skip
    finally:
        docker("rmi", tag, check=False)
    top = {p.split("/")[1] for p in listing if p != "."}
    assert top == {"pyproject.toml", "constraints.txt", "README.md", "src", "data", "docker"}
    assert "./data/processed" not in listing
    assert not any("__pycache__" in p or p.endswith(".egg-info") for p in listing)


def test_an_arbitrary_uid_in_group_zero_can_serve(image):
    # OpenShift-style: a random UID with no passwd entry, group 0, read-only root filesystem.
    name = f"ml_api-test-{SESSION_ID}-arbitrary-uid"
    with Container(image.ref, name, free_port(), extra_args=["--user", "1234567:0"]) as container:
        container.wait_ready()
        assert container.exec("id", "-u").stdout.strip() == "1234567"
        r = requests.post(
            container.url + "/predict",
            json={"features": ["Torgersen", 39.1, 18.7, 181.0, 3750.0, "male"]},
            timeout=10,
        )
        assert r.status_code == 200 and r.json()["prediction"] == ["Adelie"]
