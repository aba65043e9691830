"""``make push`` to a real registry and a pull back: the seed guide's Docker Hub step, proven on
loopback with Debian's ``docker-registry`` (the CNCF distribution server), which this test starts
as its own process with its own configuration and storage. Docker treats registries on 127.0.0.0/8
as insecure, so no TLS is needed."""

from __future__ import annotations

import hashlib
import subprocess
import time
from collections.abc import Iterator

import pytest
import requests

from tests.container.engine import ROOT, SESSION_ID, docker, free_port, image_exists, inspect_image
from tests.tools import require_tool

pytestmark = pytest.mark.container

MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"


@pytest.fixture(scope="module")
def registry(docker_engine, tmp_path_factory) -> Iterator[str]:
    """A registry on 127.0.0.1:<free port>; yields ``host:port``."""
    binary = require_tool("docker-registry")
    work = tmp_path_factory.mktemp("registry")
    address = f"127.0.0.1:{free_port()}"
    config = work / "config.yml"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: warn\n"
        f"storage:\n  filesystem:\n    rootdirectory: {work / 'storage'}\n"
        f"http:\n  addr: {address}\n"
    )
    log = open(work / "registry.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([binary, "serve", str(config)], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, (work / "registry.log").read_text()
            try:
                if requests.get(f"http://{address}/v2/", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, "registry did not answer within 30 s"
            time.sleep(0.2)
        yield address
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def test_make_push_then_pull_back(image, registry):
    namespace = f"{registry}/ml-api-test-{SESSION_ID}"
    pushed = f"{namespace}/{image.repository}:{image.tag}"
    proc = subprocess.run(
        ["make", "--no-print-directory", "push", f"REGISTRY={namespace}",
         f"IMAGE={image.repository}", f"TAG={image.tag}"],
        cwd=ROOT, capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert f"docker push {pushed}" in proc.stdout

    # The registry holds the tag, its manifest names this image's config, and every layer blob.
    repo_path = f"http://{registry}/v2/ml-api-test-{SESSION_ID}/{image.repository}"
    tags = requests.get(f"{repo_path}/tags/list", timeout=10).json()["tags"]
    assert tags == [image.tag]
    manifest = requests.get(
        f"{repo_path}/manifests/{image.tag}", headers={"Accept": MANIFEST_V2}, timeout=10
    ).json()
    assert manifest["config"]["digest"] == image.id
    config_blob = requests.get(f"{repo_path}/blobs/{image.id}", timeout=30).content
    assert "sha256:" + hashlib.sha256(config_blob).hexdigest() == image.id
    layers = manifest["layers"]
    assert len(layers) == len(inspect_image(image.ref)["RootFS"]["Layers"])
    for layer in layers:
        head = requests.head(f"{repo_path}/blobs/{layer['digest']}", timeout=10)
        assert head.status_code == 200 and int(head.headers["Content-Length"]) == layer["size"]

    # Remove the pushed tag locally, pull it back, and run what came back.
    docker("rmi", "--no-prune", pushed)
    assert not image_exists(pushed)
    try:
        docker("pull", pushed, timeout=600)
        assert inspect_image(pushed)["Id"] == image.id
        info = docker("run", "--rm", "--network", "host", "--read-only", "--entrypoint", "ml-api",
                      pushed, "info")  # fmt: skip
        assert '"name": "penguins"' in info.stdout
    finally:
        docker("rmi", "--no-prune", pushed, check=False)
