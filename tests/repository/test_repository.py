"""The model repository in one process: two models served, promotion swapped in after
verification, a tampered version never serving, load/unload, the memory budget, and per-model
batching queues that do not wait on each other. (Live servers, both frameworks and every worker:
``test_repository_live.py``.)"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from ml_api.api.flask_app import create_app
from ml_api.composition import build
from ml_api.core.model.versions import set_alias
from ml_api.settings import Settings
from tests.repository.conftest import DIABETES, PENGUIN


def settings_for(root: Path, **extra: object) -> Settings:
    return Settings(model_root=root, model_name="penguins", reload_seconds=0, **extra)


@pytest.fixture
def two(two_models: Path):
    application = build(settings_for(two_models))
    yield application
    application.repository.close()


def test_every_model_is_served_and_predict_is_the_default_byte_for_byte(two, two_models):
    multi = create_app(application=two).test_client()
    alone = create_app(application=build(settings_for(two_models), service=two.service))
    body = {"features": PENGUIN}
    assert (
        multi.post("/predict", json=body).data
        == alone.test_client().post("/predict", json=body).data
    )
    assert (
        multi.post("/models/penguins/predict", json=body).data
        == multi.post("/predict", json=body).data
    )
    answer = multi.post("/models/diabetes/predict", json={"features": [DIABETES, DIABETES]})
    assert answer.status_code == 200
    assert answer.json["model"] == {"name": "diabetes", "version": "1"}
    assert len(answer.json["prediction"]) == 2 and "probabilities" not in answer.json
    pinned = multi.post("/models/diabetes/versions/1/predict", json={"features": DIABETES})
    assert pinned.json == multi.post("/models/diabetes/predict", json={"features": DIABETES}).json
    assert multi.get("/models/diabetes/metadata").json["task"] == "regression"
    assert (
        multi.get("/models/diabetes/openapi.json")
        .json["info"]["title"]
        .startswith("ml-api: diabetes version 1")
    )
    assert b"diabetes" in multi.get("/models/diabetes/card").data
    v2 = multi.get("/v2/models/diabetes/versions/1")
    assert v2.status_code == 200 and v2.json["name"] == "diabetes"
    assert multi.get("/v2/models/penguins/ready").json == {"name": "penguins", "ready": True}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "/models/{x}/predict"),
        ("post", "/models/diabetes/versions/{x}/predict"),
        ("post", "/models/diabetes/versions/2/predict"),  # not the serving version
        ("get", "/models/{x}/metadata"),
        ("get", "/models/{x}/openapi.json"),
        ("get", "/v2/models/{x}"),
        ("get", "/v2/models/diabetes/versions/{x}/ready"),
        ("post", "/v2/models/{x}/infer"),
        ("post", "/v2/repository/models/{x}/load"),
        ("post", "/v2/repository/models/{x}/unload"),
    ],
)
def test_unknown_names_are_404_and_never_echoed_whole(two, method, path):
    client = create_app(application=two).test_client()
    answer = getattr(client, method)(path.replace("{x}", "n" * 20_000), json={})
    assert answer.status_code == 404, answer.data
    assert len(answer.data) < 1_000
    assert answer.json["error"].startswith("unknown")


def test_a_promotion_is_verified_and_swapped_in_and_requests_in_flight_keep_theirs(own_models):
    application = build(settings_for(own_models))
    client = create_app(application=application).test_client()
    row = {"features": DIABETES}
    before = client.post("/models/diabetes/predict", json=row).json
    in_flight = application.model("diabetes")  # what a request took when it began
    set_alias(own_models, "diabetes", "production", 2)
    application.repository.refresh()
    after = client.post("/models/diabetes/predict", json=row).json
    assert before["model"]["version"] == "1" and after["model"]["version"] == "2"
    assert before["prediction"] != after["prediction"]
    assert in_flight.v1.predict_instances([DIABETES]) == before  # finishes on version 1
    assert client.post("/models/diabetes/versions/1/predict", json=row).status_code == 404
    set_alias(own_models, "diabetes", "production", 1)  # the rollback: one promote
    application.repository.refresh()
    assert client.post("/models/diabetes/predict", json=row).json == before
    application.repository.close()


def test_a_version_that_fails_verification_never_serves(own_models, caplog):
    application = build(settings_for(own_models))
    client = create_app(application=application).test_client()
    model_file = own_models / "diabetes" / "2" / "model.joblib"
    good = model_file.read_bytes()
    model_file.write_bytes(good + b"tampered")
    set_alias(own_models, "diabetes", "production", 2)
    for _ in range(3):  # the periodic refresh tries it once, then leaves it refused
        application.repository.refresh()
        answer = client.post("/models/diabetes/predict", json={"features": DIABETES})
        assert answer.json["model"]["version"] == "1"
    refused = [r for r in caplog.records if "failed verification" in r.getMessage()]
    assert len(refused) == 1
    assert "version 1 keeps serving" in refused[0].getMessage()
    assert "does not match its card" in refused[0].getMessage()
    index = {row["name"]: row for row in client.post("/v2/repository/index").json}
    assert index["diabetes"]["version"] == "1" and "version 2" in index["diabetes"]["reason"]
    metrics = client.get("/metrics").data.decode()
    assert 'ml_api_model_swap_failures_total{model_name="diabetes"}' in metrics
    load = client.post("/v2/repository/models/diabetes/load")
    assert load.status_code == 400 and "does not match its card" in load.json["error"]
    model_file.write_bytes(good)  # repaired: a load verifies it again and swaps it in
    assert client.post("/v2/repository/models/diabetes/load").status_code == 200
    answer = client.post("/models/diabetes/predict", json={"features": DIABETES})
    assert answer.json["model"]["version"] == "2"
    application.repository.close()


def test_load_unload_and_the_index(own_models):
    application = build(settings_for(own_models))
    client = create_app(application=application).test_client()
    assert client.post("/v2/repository/index").json == [
        {"name": "diabetes", "version": "1", "state": "READY", "reason": ""},
        {"name": "penguins", "version": "1", "state": "READY", "reason": ""},
    ]
    unload = client.post(
        "/v2/repository/models/diabetes/unload", json={"parameters": {"unload_dependents": False}}
    )
    assert unload.status_code == 200 and unload.json == {}
    assert client.post("/models/diabetes/predict", json={"features": DIABETES}).status_code == 404
    assert client.post("/v2/repository/index", json={"ready": True}).json == [
        {"name": "penguins", "version": "1", "state": "READY", "reason": ""}
    ]
    refused = client.post("/v2/repository/models/penguins/unload")
    assert refused.status_code == 400 and "default model" in refused.json["error"]
    assert client.post("/v2/repository/models/diabetes/load").status_code == 200
    assert client.post("/models/diabetes/predict", json={"features": DIABETES}).status_code == 200
    bad = client.post("/v2/repository/index", data=json.dumps({"ready": "yes"}))
    assert bad.status_code == 400 and "ready" in bad.json["error"]
    application.repository.close()


def model_info(client, name: str) -> dict[str, float]:
    """``ml_api_model_info`` of one model from ``/metrics``, as ``{version: value}`` (the largest
    over runtimes: another test of this process may have served it on another runtime)."""
    info: dict[str, float] = {}
    for family in text_string_to_metric_families(client.get("/metrics").data.decode()):
        for sample in family.samples:
            if sample.name == "ml_api_model_info" and sample.labels["model_name"] == name:
                version = sample.labels["model_version"]
                info[version] = max(info.get(version, 0.0), sample.value)
    return info


def test_model_info_is_one_for_the_serving_version_only_through_swaps_and_unloads(own_models):
    application = build(settings_for(own_models))
    client = create_app(application=application).test_client()
    assert [v for v, value in model_info(client, "diabetes").items() if value == 1] == ["1"]
    set_alias(own_models, "diabetes", "production", 2)
    application.repository.refresh()
    assert model_info(client, "diabetes") == {"1": 0, "2": 1}
    client.post("/v2/repository/models/diabetes/unload")
    assert model_info(client, "diabetes") == {"1": 0, "2": 0}  # served before, none now
    assert client.post("/v2/repository/models/diabetes/load").status_code == 200
    assert model_info(client, "diabetes") == {"1": 0, "2": 1}
    application.repository.close()


def test_the_memory_budget_refuses_a_load_and_metrics_show_memory_per_model(own_models):
    application = build(settings_for(own_models))
    client = create_app(application=application).test_client()
    metrics = client.get("/metrics").data.decode()
    for name in ("penguins", "diabetes"):
        line = next(
            line
            for line in metrics.splitlines()
            if line.startswith(f'ml_api_model_memory_bytes{{model_name="{name}"}}')
        )
        assert float(line.split()[-1]) > 0
    client.post("/v2/repository/models/diabetes/unload")
    application.repository.memory_budget_bytes = 1  # less than any model
    refused = client.post("/v2/repository/models/diabetes/load")
    assert refused.status_code == 507
    assert "ML_API_MEMORY_BUDGET_MB" in refused.json["error"]
    assert client.post("/models/diabetes/predict", json={"features": DIABETES}).status_code == 404
    application.repository.close()


def test_a_configured_set_and_pins(own_models):
    application = build(settings_for(own_models, models=["diabetes:2"]))
    assert application.model("diabetes").service.artifact.version == "2"
    assert sorted(application.repository.names) == ["diabetes", "penguins"]
    alone = build(settings_for(own_models, models=[]))
    assert alone.repository.names == ("penguins",)
    application.repository.close()
    alone.repository.close()


def test_one_models_busy_batch_does_not_hold_up_another(two):
    """Each model has its own batching queue: a model call in progress on one model does not
    make another model's request wait."""
    penguins = two.model("penguins").service
    diabetes = two.model("diabetes").service
    assert penguins.batcher is not diabetes.batcher
    started, release = threading.Event(), threading.Event()
    predictor = penguins.predictor
    original = predictor.predict

    def slow(columns):
        started.set()
        release.wait(30)
        return original(columns)

    predictor.predict = slow
    try:
        worker = threading.Thread(target=lambda: penguins.predict_rows([PENGUIN]))
        worker.start()
        assert started.wait(30)
        answer = diabetes.predict_rows([DIABETES])  # would block here if queues were shared
        assert len(answer) == 1
        assert worker.is_alive()  # the penguins call is still in progress
    finally:
        release.set()
        predictor.predict = original
        worker.join(30)
