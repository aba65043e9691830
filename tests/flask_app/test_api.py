"""The Flask adapter through its test client: the whole request table, plus routing and limits."""

import pytest

from ml_api.api.flask_app import create_app
from tests.cases import body_bytes, check_response, headers, load_cases

CASES = load_cases()


@pytest.fixture(scope="module")
def client(settings, service):
    return create_app(settings, service).test_client()


@pytest.mark.parametrize(("name", "case"), CASES, ids=[n for n, _ in CASES])
@pytest.mark.parametrize("path", ["/predict", "/predict/"])
def test_request_table(client, name, case, path):
    response = client.open(
        path, method=case["method"], data=body_bytes(case), headers=headers(case)
    )
    assert response.content_type == "application/json"
    check_response(case, response.status_code, response.get_json())


def test_health_ready_metadata(client):
    assert client.get("/health").get_json() == {"status": "ok"}
    assert client.get("/ready").get_json()["status"] == "ready"
    meta = client.get("/metadata").get_json()
    assert meta["model"] == {"name": "penguins", "version": "1"}
    assert meta["features"][0]["name"] == "island"
    assert meta["limits"] == {
        "max_body_bytes": 65_536,
        "max_instances": 50,
        "request_timeout_seconds": 10.0,
    }


def test_unknown_route_and_wrong_method_answer_json(client):
    r = client.get("/nope")
    assert r.status_code == 404 and r.content_type == "application/json"
    assert set(r.get_json()) == {"error", "details", "request_id"}
    r = client.get("/predict")
    assert r.status_code == 405 and "POST" in r.headers["Allow"]
    assert r.get_json()["error"] == "method GET is not allowed on /predict"
    r = client.post("/health")
    assert r.status_code == 405


def test_body_over_limit_is_413_before_parsing(client):
    big = b'{"features": [' + b"1," * 40_000 + b"1]}"
    r = client.post("/predict", data=big, headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    assert "65536" in r.get_json()["error"]


def test_request_id_echoed_or_generated(client):
    r = client.post(
        "/predict",
        data=b"{",
        headers={"Content-Type": "application/json", "X-Request-ID": "abc-123"},
    )
    assert r.headers["X-Request-ID"] == "abc-123"
    assert r.get_json()["request_id"] == "abc-123"
    r = client.post(
        "/predict",
        data=b"{",
        headers={"Content-Type": "application/json", "X-Request-ID": "bad id with spaces"},
    )
    generated = r.headers["X-Request-ID"]
    assert len(generated) == 32 and r.get_json()["request_id"] == generated


def test_draining_turns_readiness_503(settings, model_root):
    from ml_api.core.service import PredictionService

    service = PredictionService.from_settings(settings)
    client = create_app(settings, service).test_client()
    service.start_draining()
    r = client.get("/ready")
    assert r.status_code == 503 and "shutting down" in r.get_json()["error"]
    assert client.get("/health").status_code == 200
    ok = client.post("/predict", json={"features": ["Biscoe", 50.0, 15.0, 220.0, 5500.0, "male"]})
    assert ok.status_code == 200  # accepted work still completes while draining


def test_unexpected_error_is_a_json_500_without_traceback(settings, service, monkeypatch):
    app = create_app(settings, service)
    monkeypatch.setattr(service.predictor, "predict", lambda frame: 1 / 0)
    r = app.test_client().post("/predict", json={"features": ["Biscoe", 50, 15, 220, 5500, "male"]})
    assert r.status_code == 500
    body = r.get_json()
    assert body["error"] == "internal server error" and "ZeroDivision" not in r.get_data(True)


def test_create_app_without_model_fails_loudly(tmp_path):
    from ml_api.core.artifact import ArtifactError
    from ml_api.settings import Settings

    with pytest.raises(ArtifactError, match=str(tmp_path)):
        create_app(Settings(model_root=tmp_path))


def test_api_keys_in_the_flask_app(model_root):
    from ml_api.core.service import PredictionService
    from ml_api.settings import Settings

    settings = Settings(model_root=model_root, api_keys="k-1,k-2")
    client = create_app(settings, PredictionService.from_settings(settings)).test_client()
    row = {"features": ["Biscoe", 50.0, 15.0, 220.0, 5500.0, "male"]}
    r = client.post("/predict", json=row)
    assert r.status_code == 401 and r.headers["WWW-Authenticate"] == 'Bearer realm="ml-api"'
    assert set(r.get_json()) == {"error", "details", "request_id"}
    assert client.post("/predict", json=row, headers={"X-API-Key": "k-2"}).status_code == 200
    assert client.get("/health").status_code == 200
    assert client.get("/nope", headers={"X-API-Key": "k-1"}).status_code == 404
