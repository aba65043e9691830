"""After a hot swap, a live server (``ml-api serve``, gunicorn, 2 workers) exports exactly one
serving version per model over ``/metrics``: ``ml_api_model_info`` at 1 for the new version and 0
for the one it replaced, in the merged files of the master and every worker, whether the master
swapped too (SIGHUP) or never heard of it (an alias change the workers' polling found).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from ml_api.core.model.versions import set_alias
from tests.live.server import LiveServer
from tests.repository.conftest import DIABETES

pytestmark = pytest.mark.live


def versions_answering(url: str, n: int = 12) -> set[str]:
    """The versions ``n`` requests to the diabetes model got (either worker answers)."""
    seen = set()
    for _ in range(n):
        answer = requests.post(
            f"{url}/models/diabetes/predict", json={"features": DIABETES}, timeout=30
        )
        assert answer.status_code == 200, answer.text
        seen.add(answer.json()["model"]["version"])
    return seen


def wait_for(url: str, version: str, timeout: float = 60) -> None:
    """Poll until every one of a run of requests is answered by ``version`` (a worker that had
    not answered yet refreshes before its first answer)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if versions_answering(url) == {version}:
            return
        time.sleep(0.2)
    raise AssertionError(f"version {version} did not reach every worker in {timeout} s")


def serving(url: str) -> tuple[dict[str, dict[str, float]], dict[str, float]]:
    """``ml_api_model_info`` as ``{model: {version: value}}`` and ``ml_api_model_serving_version``
    as ``{model: version}``, from one scrape over HTTP."""
    answer = requests.get(f"{url}/metrics", timeout=30)
    assert answer.status_code == 200, answer.text
    info: dict[str, dict[str, float]] = {}
    versions: dict[str, float] = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            labels = sample.labels
            if sample.name == "ml_api_model_info":
                assert "pid" not in labels, sample  # one series per version, not per process
                by_version = info.setdefault(labels["model_name"], {})
                assert labels["model_version"] not in by_version, f"duplicate series: {sample}"
                by_version[labels["model_version"]] = sample.value
            elif sample.name == "ml_api_model_serving_version":
                versions[labels["model_name"]] = sample.value
    return info, versions


def promote(root: Path, version: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "ml_api.cli", "promote", "diabetes", version,
         "--model-root", str(root)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip


def test_a_sighup_swap_there_and_back_leaves_one_serving_version(own_models):
    env = {"ML_API_RELOAD_SECONDS": "0"}  # only SIGHUP moves the master and the workers
    with LiveServer(own_models, "flask", workers=2, env=env) as server:
        assert versions_answering(server.url) == {"1"}
        assert serving(server.url) == ({"diabetes": {"1": 1}, "penguins": {"1": 1}},
                                       {"diabetes": 1, "penguins": 1})  # fmt: skip

        promote(own_models, "2")
        server.proc.send_signal(1)  # SIGHUP
        wait_for(server.url, "2")  # every worker answers with version 2
        assert serving(server.url) == ({"diabetes": {"1": 0, "2": 1}, "penguins": {"1": 1}},
                                       {"diabetes": 2, "penguins": 1})  # fmt: skip

        promote(own_models, "1")  # the rollback: the lower version is the one serving
        server.proc.send_signal(1)
        wait_for(server.url, "1")
        assert serving(server.url) == ({"diabetes": {"1": 1, "2": 0}, "penguins": {"1": 1}},
                                       {"diabetes": 1, "penguins": 1})  # fmt: skip
        assert server.terminate() == 0, server.output()


def test_an_alias_change_the_workers_find_leaves_one_serving_version(own_models):
    # No SIGHUP: the workers' polling finds the new alias and the master keeps version 1 loaded
    # (its file still holds version 1 at 1, written at start).
    env = {"ML_API_RELOAD_SECONDS": "0.2"}
    with LiveServer(own_models, "flask", workers=2, env=env) as server:
        assert versions_answering(server.url) == {"1"}
        set_alias(own_models, "diabetes", "production", 2)
        wait_for(server.url, "2")
        assert serving(server.url) == ({"diabetes": {"1": 0, "2": 1}, "penguins": {"1": 1}},
                                       {"diabetes": 2, "penguins": 1})  # fmt: skip
        assert server.terminate() == 0, server.output()
