"""Production behaviour of ``ml-api serve`` under gunicorn and granian, over real HTTP on loopback.

Metrics merged across workers, promtool-valid exposition, JSON-only output, SIGTERM draining under
load, concurrency correctness, the per-request time limit and API keys.
"""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.conftest import VALID_ROW
from tests.live.conftest import SERVERS
from tests.live.server import LiveServer
from tests.tools import require_tool

pytestmark = pytest.mark.live
PREDICT = {"features": VALID_ROW}


def _counter(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def _env(server_name: str, **extra: str) -> dict[str, str]:
    return {"ML_API_SERVER": server_name, **extra}


@pytest.fixture(scope="module", params=SERVERS)
def four_workers(request, model_root):
    env = _env(request.param, ML_API_DRAIN_SECONDS="0")
    srv = LiveServer(model_root, "flask", workers=4, env=env)
    srv.wait_ready()
    yield srv
    assert srv.terminate() == 0


def test_metrics_exact_across_four_workers(four_workers):
    n = 37
    with requests.Session() as s:
        for _ in range(n):
            # fresh connections so gunicorn spreads the requests over its workers
            r = requests.post(four_workers.url + "/predict", json=PREDICT, timeout=10)
            assert r.status_code == 200
        bad = s.post(four_workers.url + "/predict", json={"features": [1]}, timeout=10)
        assert bad.status_code == 422
    scrapes = [requests.get(four_workers.url + "/metrics", timeout=10).text for _ in range(8)]
    for text in scrapes:  # whichever worker answers, it reports the whole server
        assert _counter(text, "ml_api_predictions_total", predicted_class="Gentoo") == n
        assert _counter(text, "ml_api_http_requests_total", route="/predict", status="200") == n
        assert _counter(text, "ml_api_http_requests_total", route="/predict", status="422") == 1
        assert _counter(text, "ml_api_request_instances_count") == n
        assert _counter(text, "ml_api_model_info", model_name="penguins", model_version="1") == 1
        ratios = [
            _counter(text, "ml_api_model_training_class_ratio", **{"class": c})
            for c in ("Adelie", "Chinstrap", "Gentoo")
        ]
        assert abs(sum(ratios) - 1) < 1e-9 and all(r > 0 for r in ratios)


def test_metric_names_and_labels_are_the_documented_ones(four_workers):
    text = requests.get(four_workers.url + "/metrics", timeout=10).text
    families = {
        (name.removesuffix("_total"), kind)  # multiprocess mode writes counters' TYPE with _total
        for name, kind in re.findall(r"^# TYPE (ml_api_\w+) (\w+)$", text, re.M)
    }
    assert {
        ("ml_api_http_requests", "counter"),
        ("ml_api_http_request_duration_seconds", "histogram"),
        ("ml_api_http_requests_in_flight", "gauge"),
        ("ml_api_predictions", "counter"),
        ("ml_api_request_instances", "histogram"),
        ("ml_api_prediction_duration_seconds", "histogram"),
        ("ml_api_model_load_duration_seconds", "gauge"),
        ("ml_api_model_info", "gauge"),
        ("ml_api_model_training_class_ratio", "gauge"),
    } <= families
    requests.get(four_workers.url + "/no/such/path/12345", timeout=10)
    text = requests.get(four_workers.url + "/metrics", timeout=10).text
    assert "/no/such/path" not in text  # unmatched paths never become label values
    assert 'route="<unmatched>"' in text


def test_promtool_accepts_a_live_scrape(four_workers):
    promtool = require_tool("promtool")
    requests.post(four_workers.url + "/predict", json=PREDICT, timeout=10)
    text = requests.get(four_workers.url + "/metrics", timeout=10).text
    proc = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == "" and proc.stderr.strip() == "", proc.stdout + proc.stderr


@pytest.mark.parametrize("server_name", SERVERS)
def test_every_output_line_is_json_with_request_ids(model_root, server_name):
    env = _env(server_name, ML_API_DRAIN_SECONDS="0")
    srv = LiveServer(model_root, "flask", workers=2, env=env)
    srv.wait_ready()
    sent = []
    for body in (json.dumps(PREDICT), "{", '{"features": [1]}', '{"features": [NaN]}'):
        r = requests.post(
            srv.url + "/predict/",
            data=body,
            timeout=10,
            headers={"Content-Type": "application/json"},
        )
        sent.append((r.headers["X-Request-ID"], r.status_code))
    requests.post(srv.url + "/predict", data="x", headers={"X-Request-ID": "mine-1"}, timeout=10)
    requests.get(srv.url + "/nope", timeout=10)
    assert srv.terminate() == 0
    records = []
    for line in srv.output().splitlines():
        records.append(json.loads(line))  # fails the test on any non-JSON line
    for record in records:
        assert {"timestamp", "level", "logger", "message"} <= set(record)
    access = [r for r in records if r["logger"] == "ml_api.access"]
    by_id = {r["request_id"]: r for r in access}
    for rid, status in sent:
        rec = by_id[rid]
        assert rec["status"] == status and rec["path"] == "/predict/" and rec["method"] == "POST"
        assert isinstance(rec["duration_ms"], float) and rec["model_version"] in ("1", None)
    assert by_id[sent[0][0]]["instances"] == 1 and by_id[sent[0][0]]["model_version"] == "1"
    assert by_id["mine-1"]["status"] == 415
    assert any(r.get("status") == 404 for r in access)
    own = {"gunicorn": "gunicorn.error", "granian": "_granian"}[server_name]
    # the server's own lines too
    assert any("Shutting down" in r["message"] and r["logger"] == own for r in records)


@pytest.mark.parametrize("server_name", SERVERS)
def test_sigterm_under_load_answers_everything_accepted(model_root, server_name):
    """Steady traffic, SIGTERM: /ready flips to 503 at once, the load balancer (here: the
    clients, polling /ready like a readiness probe) stops sending, every request sent got 200,
    and the server exits 0."""
    srv = LiveServer(
        model_root, "flask", workers=2, env=_env(server_name, ML_API_DRAIN_SECONDS="2")
    )
    srv.wait_ready()
    out_of_rotation = threading.Event()
    stats = {"sent": 0, "ok": 0, "failed": []}
    lock = threading.Lock()

    def client() -> None:
        with requests.Session() as s:
            deadline = time.monotonic() + 30
            while not out_of_rotation.is_set() and time.monotonic() < deadline:
                try:
                    r = s.post(srv.url + "/predict", json=PREDICT, timeout=10)
                    ok = r.status_code == 200 and r.json()["prediction"] == ["Gentoo"]
                    outcome = None if ok else f"status {r.status_code}"
                except requests.RequestException as exc:
                    outcome = repr(exc)
                with lock:
                    stats["sent"] += 1
                    if outcome is None:
                        stats["ok"] += 1
                    else:
                        stats["failed"].append(outcome)

    with ThreadPoolExecutor(4) as pool:
        for _ in range(4):
            pool.submit(client)
        # SIGTERM once traffic is flowing (a count, not a fixed sleep: the machine may be slow).
        warm_until = time.monotonic() + 15
        while stats["sent"] < 25 and time.monotonic() < warm_until:
            time.sleep(0.05)
        srv.proc.send_signal(15)
        flipped_after = None
        t0 = time.monotonic()
        while time.monotonic() - t0 < 5:
            if requests.get(srv.url + "/ready", timeout=5).status_code == 503:
                flipped_after = time.monotonic() - t0
                break
            time.sleep(0.02)
        out_of_rotation.set()
    code = srv.proc.wait(40)
    srv.terminate()
    print(
        f"SIGTERM under load: sent={stats['sent']} ok={stats['ok']} "
        f"failed={len(stats['failed'])} ready->503 after {flipped_after}s exit={code}"
    )
    assert flipped_after is not None, "readiness never turned 503"
    assert stats["sent"] > 20
    assert stats["failed"] == [] and stats["ok"] == stats["sent"]
    assert code == 0


def test_concurrent_requests_get_exactly_the_single_call_answers(four_workers, penguins_frame):
    names = ["island", "bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g", "sex"]
    frame = penguins_frame[names].astype(object)
    rows = frame.where(frame.notna(), None).values.tolist()[:120]
    url = four_workers.url + "/predict"
    expected = [requests.post(url, json={"features": r}, timeout=10).json() for r in rows]

    def call(i: int) -> tuple[int, dict]:
        return i, requests.post(url, json={"features": rows[i]}, timeout=10).json()

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(call, list(range(len(rows))) * 3))
    runtime = requests.get(four_workers.url + "/metadata", timeout=10).json()["runtime"]
    # Labels and the envelope exactly; probabilities to the last few ULPs, because adaptive
    # batching may compute a row inside a larger matrix product (BLAS sums in another order):
    # ~1e-16 in scikit-learn's float64, ~1e-7 in ONNX Runtime's float32 (served by default).
    tol = 1e-15 if runtime == "scikit-learn" else 1e-6
    for i, body in results:
        assert body["prediction"] == expected[i]["prediction"]
        assert body["model"] == expected[i]["model"]
        for got, want in zip(body["probabilities"], expected[i]["probabilities"], strict=True):
            assert got == pytest.approx(want, rel=0, abs=tol)


@pytest.mark.parametrize("server_name", SERVERS)
def test_request_time_limit_answers_504_json(model_root, server_name):
    srv = LiveServer(
        model_root,
        "flask",
        workers=1,
        env=_env(
            server_name,
            ML_API_REQUEST_TIMEOUT_SECONDS="0.0005",
            ML_API_MAX_INSTANCES="5000",
            ML_API_MAX_BODY_BYTES="10000000",
            ML_API_DRAIN_SECONDS="0",
        ),
    )
    with srv:
        r = requests.post(srv.url + "/predict", json={"features": [VALID_ROW] * 5000}, timeout=30)
        assert r.status_code == 504
        body = r.json()
        assert "longer than 0.0005 s" in body["error"] and body["request_id"]
        # the worker survived and still answers
        assert requests.get(srv.url + "/health", timeout=10).status_code == 200
    assert "WORKER TIMEOUT" not in srv.output()


def test_api_keys_live(model_root, tmp_path):
    keyfile = tmp_path / "keys"
    keyfile.write_text("# rotated 2026-11\nfile-key-123\n")
    srv = LiveServer(
        model_root,
        "flask",
        workers=1,
        env={
            "ML_API_API_KEYS": "env-key-456",
            "ML_API_API_KEYS_FILE": str(keyfile),
            "ML_API_DRAIN_SECONDS": "0",
        },
    )
    with srv:
        url = srv.url + "/predict"
        r = requests.post(url, json=PREDICT, timeout=10)
        assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Bearer")
        assert r.json()["error"].startswith("missing API key")
        r = requests.post(url, json=PREDICT, headers={"Authorization": "Bearer wrong"}, timeout=10)
        assert r.status_code == 401 and 'error="invalid_token"' in r.headers["WWW-Authenticate"]
        ok = {"Authorization": "Bearer file-key-123"}
        assert requests.post(url, json=PREDICT, headers=ok, timeout=10).status_code == 200
        ok = {"X-API-Key": "env-key-456"}
        assert requests.post(url, json=PREDICT, headers=ok, timeout=10).status_code == 200
        for open_path in ("/health", "/ready", "/metrics"):
            assert requests.get(srv.url + open_path, timeout=10).status_code == 200
        assert requests.get(srv.url + "/metadata", timeout=10).status_code == 401
    output = srv.output()
    assert "file-key-123" not in output and "env-key-456" not in output
    assert "API keys required" in output
