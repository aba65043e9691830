"""Two models in one live server (``ml-api serve``, gunicorn, 2 workers) over loopback: Flask and
Django, V1 and V2, the repository extension through Triton's client with API keys on, a
promotion and a SIGHUP reaching every worker, a version that fails verification never serving,
and a swap under 64 concurrent clients with no failed request and every answer its version's own.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import requests

from ml_api.composition import build_scoring
from ml_api.core.model.versions import set_alias
from ml_api.settings import Settings
from tests.live.conftest import framework_env
from tests.live.server import LiveServer
from tests.repository.conftest import DIABETES, PENGUIN

httpclient = pytest.importorskip("tritonclient.http", reason="tritonclient[http] not installed")
utils = pytest.importorskip("tritonclient.utils")
pytestmark = pytest.mark.live

KEY = "repository-test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
OTHER = [-0.05, -0.04, -0.05, -0.03, 0.04, 0.05, 0.03, -0.01, -0.03, 0.01]


def versions_answering(url: str, n: int = 12, headers: dict | None = None) -> set[str]:
    """The versions ``n`` requests to the diabetes model got (several workers answer)."""
    seen = set()
    for _ in range(n):
        answer = requests.post(
            f"{url}/models/diabetes/predict", json={"features": DIABETES}, headers=headers,
            timeout=30,
        )  # fmt: skip
        assert answer.status_code == 200, answer.text
        seen.add(answer.json()["model"]["version"])
    return seen


def wait_for(url: str, version: str, headers: dict | None = None, timeout: float = 60) -> None:
    """Poll until every one of a run of requests is answered by ``version``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if versions_answering(url, headers=headers) == {version}:
            return
        time.sleep(0.2)
    raise AssertionError(f"version {version} did not reach every worker in {timeout} s")


@pytest.mark.parametrize("framework", ["flask", "django"])
def test_two_models_v1_v2_and_the_repository_extension(own_models, framework):
    env = framework_env(framework, ML_API_API_KEYS=KEY, ML_API_RELOAD_SECONDS="0")
    with LiveServer(own_models, framework, workers=2, env=env) as server:
        url = server.url
        body = {"features": PENGUIN}
        default = requests.post(f"{url}/predict", json=body, headers=AUTH, timeout=30)
        by_name = requests.post(f"{url}/models/penguins/predict", json=body, headers=AUTH,
                                timeout=30)  # fmt: skip
        assert default.status_code == 200 and default.content == by_name.content
        assert default.json()["model"] == {"name": "penguins", "version": "1"}
        regression = requests.post(
            f"{url}/models/diabetes/versions/1/predict", json={"features": DIABETES},
            headers=AUTH, timeout=30,
        )  # fmt: skip
        assert regression.json()["model"] == {"name": "diabetes", "version": "1"}
        assert isinstance(regression.json()["prediction"][0], float)
        assert requests.post(f"{url}/v2/repository/index", timeout=30).status_code == 401

        client = httpclient.InferenceServerClient(url=f"127.0.0.1:{server.port}")
        try:
            index = client.get_model_repository_index(headers=AUTH)
            assert [(m["name"], m["version"], m["state"]) for m in index] == [
                ("diabetes", "1", "READY"),
                ("penguins", "1", "READY"),
            ]
            tensor = httpclient.InferInput("input-0", [2, 10], "FP64")
            tensor.set_data_from_numpy(np.array([DIABETES, OTHER]), binary_data=False)
            result = client.infer("diabetes", [tensor], headers=AUTH)
            assert result.get_response()["model_version"] == "1"
            assert result.as_numpy("predict")[0] == regression.json()["prediction"][0]
            assert client.is_model_ready("diabetes", "1", headers=AUTH)

            client.unload_model("diabetes", headers=AUTH)
            # the worker that unloaded it answers at once; the other follows within its tick
            assert _settles(lambda: not client.is_model_ready("diabetes", headers=AUTH))
            deadline = time.monotonic() + 60  # the other worker follows within its 0.2 s tick
            while time.monotonic() < deadline:
                codes = {
                    requests.post(f"{url}/models/diabetes/predict", json={"features": DIABETES},
                                  headers=AUTH, timeout=30).status_code
                    for _ in range(12)
                }  # fmt: skip
                if codes == {404}:
                    break
                time.sleep(0.2)
            assert codes == {404}
            client.load_model("diabetes", headers=AUTH)
            assert _settles(lambda: client.is_model_ready("diabetes", headers=AUTH))
            with pytest.raises(utils.InferenceServerException, match="unknown model"):
                client.load_model("x" * 2_000, headers=AUTH)
        finally:
            client.close()
        assert server.terminate() == 0, server.output()


def _settles(holds, seconds: float = 60.0) -> bool:
    """Whether ``holds()`` is true in 3 answers in a row within ``seconds`` (2 workers: each
    switches within its own tick, so one answer may still come from the one not yet switched)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if all(holds() for _ in range(3)):
            return True
        time.sleep(0.1)
    return False


def test_a_promotion_and_a_sighup_reach_every_worker_and_a_bad_version_never_serves(own_models):
    env = {"ML_API_RELOAD_SECONDS": "0"}  # only SIGHUP (and load) make the workers look
    with LiveServer(own_models, "flask", workers=2, env=env) as server:
        assert versions_answering(server.url) == {"1"}
        promote = subprocess.run(
            [sys.executable, "-m", "ml_api.cli", "promote", "diabetes", "2",
             "--model-root", str(own_models)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        assert "ml-api promote diabetes 1" in promote.stdout  # the rollback, printed
        assert versions_answering(server.url) == {"1"}  # no reload: nothing moves
        server.proc.send_signal(1)  # SIGHUP, what systemctl reload sends
        wait_for(server.url, "2")
        assert server.proc.poll() is None

        model_file = own_models / "diabetes" / "1" / "model.joblib"
        model_file.write_bytes(model_file.read_bytes() + b"tampered")
        set_alias(own_models, "diabetes", "production", 1)
        server.proc.send_signal(1)
        deadline = time.monotonic() + 60
        while "failed verification" not in server.output() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "version 2 keeps serving" in server.output()
        assert versions_answering(server.url, n=30) == {"2"}  # the tampered one never serves
        listing = subprocess.run(
            [sys.executable, "-m", "ml_api.cli", "versions", "diabetes",
             "--model-root", str(own_models)],
            capture_output=True, text=True,
        )  # fmt: skip
        assert "fails verification" in listing.stdout, listing.stdout + listing.stderr
        metrics = requests.get(f"{server.url}/metrics", timeout=30).text
        assert 'ml_api_model_swap_failures_total{model_name="diabetes"}' in metrics
        assert server.terminate() == 0, server.output()


def expected_answers(root: Path) -> dict[str, list[float]]:
    """Each diabetes version's own answer for the two rows, predicted in this process."""
    answers = {}
    for version in ("1", "2"):
        settings = Settings(model_root=root, model_name="diabetes", model_version=version)
        result = build_scoring(settings).predict_rows([DIABETES, OTHER])
        answers[version] = result.labels.tolist()
    assert answers["1"] != answers["2"]
    return answers


def test_a_swap_under_64_clients_fails_no_request_and_every_answer_is_its_versions_own(
    own_models,
):
    expected = expected_answers(own_models)
    env = {"ML_API_RELOAD_SECONDS": "0.2", "ML_API_DRAIN_SECONDS": "0"}
    with LiveServer(own_models, "flask", workers=2, env=env) as server:
        url = f"{server.url}/models/diabetes/predict"
        stop = threading.Event()
        failures: list[str] = []
        seen: list[str] = []
        lock = threading.Lock()

        def client() -> None:
            with requests.Session() as session:
                for _ in range(300):  # bounded, also if the swaps never came
                    if stop.is_set():
                        return
                    try:
                        answer = session.post(url, json={"features": [DIABETES, OTHER]},
                                              timeout=60)  # fmt: skip
                    except requests.RequestException as exc:
                        failures.append(repr(exc))
                        continue
                    if answer.status_code != 200:
                        failures.append(f"{answer.status_code} {answer.text[:200]}")
                        continue
                    body = answer.json()
                    version = body["model"]["version"]
                    if body["prediction"] != expected[version]:
                        failures.append(f"version {version} answered {body['prediction']}")
                    with lock:
                        seen.append(version)

        threads = [threading.Thread(target=client) for _ in range(64)]
        for thread in threads:
            thread.start()
        swaps = 0
        try:
            for target in ("2", "1", "2", "1"):
                set_alias(own_models, "diabetes", "production", int(target))
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:
                    with lock:
                        recent = seen[-64:]
                    if len(recent) == 64 and set(recent) == {target}:
                        swaps += 1
                        break
                    time.sleep(0.05)
        finally:
            stop.set()
            for thread in threads:
                thread.join(120)
        assert failures == []
        assert swaps == 4, f"{swaps} swaps seen under load; answers by version: {set(seen)}"
        assert {"1", "2"} <= set(seen)
        assert server.terminate() == 0, server.output()
