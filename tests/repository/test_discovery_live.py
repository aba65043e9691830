"""A model created in the model root while the server runs is served after a repository ``load``.

``POST /v2/repository/models/reviews/load`` answered "the repository holds: diabetes, penguins"
although ``models/reviews/`` existed: the names were fixed at start. Now ``load`` and the index
look in the model root again (a live gunicorn server with 2 workers, Flask and Django); the new
model is verified like any load, and every worker serves it after the load.
"""

from __future__ import annotations

import shutil
import time

import pytest
import requests

from ml_api.composition import build_repository, served_model
from ml_api.core.errors import BadRequest, NotFound
from ml_api.settings import Settings
from ml_api.train import TrainingOptions, train
from tests.live.conftest import framework_env
from tests.live.server import LiveServer
from tests.repository.conftest import DIABETES

pytestmark = pytest.mark.live


def _wrap(built):
    return served_model(built, auth_enabled=False, public_paths=())


def _index(url: str) -> dict[str, tuple[str, str]]:
    rows = requests.post(f"{url}/v2/repository/index", timeout=30).json()
    return {row["name"]: (row["version"], row["state"]) for row in rows}


@pytest.mark.parametrize("framework", ["flask", "django"])
def test_a_model_imported_after_start_is_loaded_and_served_by_every_worker(
    own_models, diabetes_csv, framework
):
    env = framework_env(framework, ML_API_RELOAD_SECONDS="0")
    with LiveServer(own_models, framework, workers=2, env=env) as server:
        url = server.url
        assert "reviews" not in _index(url)
        train(TrainingOptions(diabetes_csv, "target"), model_root=own_models, name="reviews")
        assert _index(url)["reviews"] == ("", "UNAVAILABLE")  # found, not loaded by itself
        loaded = requests.post(f"{url}/v2/repository/models/reviews/load", timeout=60)
        assert loaded.status_code == 200, loaded.text
        # the other worker follows within its watcher's tick (it verifies the model itself)
        deadline = time.monotonic() + 60
        answers: list[int] = []
        while time.monotonic() < deadline:
            answers = [
                requests.post(
                    f"{url}/models/reviews/predict", json={"features": DIABETES}, timeout=30
                ).status_code
                for _ in range(12)
            ]
            if answers == [200] * 12:
                break
            time.sleep(0.2)
        assert answers == [200] * 12
        assert _index(url)["reviews"] == ("1", "READY")
        r = requests.post(f"{url}/models/reviews/predict", json={"features": DIABETES}, timeout=30)
        assert r.json()["model"] == {"name": "reviews", "version": "1"}
        missing = requests.post(f"{url}/v2/repository/models/nothing/load", timeout=30)
        assert missing.status_code == 404
        assert "penguins, diabetes, reviews" in missing.json()["error"]


def test_a_found_model_is_verified_like_any_load(own_models, tmp_path):
    repository = build_repository(
        Settings(model_root=own_models, model_name="penguins"), wrap=_wrap
    )
    try:
        shutil.copytree(own_models / "diabetes", own_models / "tampered")
        model = next((own_models / "tampered" / "1").glob("model.*"))
        model.write_bytes(model.read_bytes() + b"x")
        with pytest.raises(BadRequest, match="tampered"):
            repository.load("tampered")
        assert {r["name"]: r["state"] for r in repository.index()}["tampered"] == "UNAVAILABLE"
        with pytest.raises(NotFound):
            repository.load("absent")
    finally:
        repository.close()


def test_a_server_given_its_models_does_not_take_others(own_models, diabetes_csv):
    settings = Settings(model_root=own_models, model_name="penguins", models=["penguins"])
    repository = build_repository(settings, wrap=_wrap)
    try:
        train(TrainingOptions(diabetes_csv, "target"), model_root=own_models, name="reviews")
        with pytest.raises(NotFound, match="the repository holds: penguins"):
            repository.load("reviews")
    finally:
        repository.close()
