"""The prediction log on a real server: a 64-client soak loses no request, the sampled records are
bounded and hold no excluded field and no API key; on stdout they carry what Fluent Bit routes on.
"""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.deploy.kit import find
from tests.deploy.test_logging import logging_docs, sections
from tests.live.server import LiveServer
from tests.live.test_drift_live import records, samples

pytestmark = pytest.mark.live

KEY = "sk-live-h25-0123456789abcdef"
CLIENTS = 64
PER_CLIENT = 40


def _log_records(paths: list[Path]) -> list[dict[str, Any]]:
    out = []
    for path in paths:
        for line in path.read_text().splitlines():
            if '"log_type"' in line:
                record = json.loads(line)
                if record.get("log_type") == "prediction":
                    out.append(record)
    return out


def _outcomes(url: str) -> dict[str, float]:
    text = requests.get(url + "/metrics", timeout=10).text
    return {
        s.labels["outcome"]: s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name == "ml_api_prediction_log_records_total"
    }


def test_soak_with_the_log_on_loses_no_request_and_logs_a_bounded_sample(
    model_root: Path, tmp_path: Path
) -> None:
    log = tmp_path / "log" / "predictions.jsonl"
    env = {
        "ML_API_PREDICTION_LOG_RATE": "0.1",
        "ML_API_PREDICTION_LOG_FILE": str(log),
        "ML_API_PREDICTION_LOG_MAX_BYTES": "200000",
        "ML_API_PREDICTION_LOG_BACKUPS": "2",
        "ML_API_PREDICTION_LOG_MAX_INSTANCES": "3",
        "ML_API_LOG_EXCLUDE_FEATURES": "sex,island",
        "ML_API_API_KEYS": KEY,
    }
    rows = records(samples()[0])
    statuses: list[int] = []
    errors: list[str] = []

    def client(k: int) -> None:
        with requests.Session() as http:
            http.headers["X-API-Key"] = KEY
            for i in range(PER_CLIENT):
                start = (k * PER_CLIENT + i) * 4 % (len(rows) - 4)
                try:
                    r = http.post(
                        server.url + "/predict",
                        json={"instances": rows[start : start + 4]},
                        timeout=60,
                    )
                    statuses.append(r.status_code)
                except requests.RequestException as exc:
                    errors.append(repr(exc))

    with LiveServer(model_root, workers=2, env=env) as server:
        threads = [threading.Thread(target=client, args=(k,)) for k in range(CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(600)
        assert not errors and statuses == [200] * (CLIENTS * PER_CLIENT), (
            errors[:3],
            sorted(set(statuses)),
        )
        deadline = threading.Event()
        outcomes: dict[str, float] = {}
        for _ in range(100):  # the writers drain their queues within a moment
            outcomes = _outcomes(server.url)
            files = sorted(log.parent.glob("predictions.jsonl*"))
            files = [f for f in files if not f.name.endswith(".lock")]
            if outcomes.get("written", 0) and sum(
                len(f.read_text().splitlines()) for f in files
            ) == outcomes.get("written"):
                break
            deadline.wait(0.2)
        server_log = server.log_path.read_text()
    sent = CLIENTS * PER_CLIENT
    assert outcomes.get("dropped", 0) == 0 and outcomes.get("failed", 0) == 0, outcomes
    # a 10 % sample of 2,560 requests: 256 expected, sd 15
    assert 0.06 * sent <= outcomes["written"] <= 0.14 * sent, outcomes
    assert all(f.stat().st_size <= 200_000 for f in files) and len(files) <= 3
    logged = _log_records(files)
    assert len(logged) == outcomes["written"]
    for record in logged:
        assert record["instances_total"] == 4 and len(record["instances"]) == 3
        assert set(record["instances"][0]) == {
            "bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g",
        }  # fmt: skip
        assert len(record["predictions"]) == 3 and record["request_id"]
        assert record["model"] == {"name": "penguins", "version": "1"}
    ids = [r["request_id"] for r in logged]
    assert len(set(ids)) == len(ids)
    for text in (*(f.read_text() for f in files), server_log):
        assert KEY not in text


def test_on_stdout_records_are_what_fluent_bit_routes_to_their_own_index(
    model_root: Path,
) -> None:
    env = {"ML_API_PREDICTION_LOG_RATE": "1", "ML_API_API_KEYS": KEY}
    rows = records(samples()[0])[:5]
    with LiveServer(model_root, workers=1, env=env) as server, requests.Session() as http:
        http.headers["Authorization"] = f"Bearer {KEY}"
        for row in rows:
            r = http.post(server.url + "/predict", json={"instances": [row]}, timeout=30)
            assert r.status_code == 200, r.text
        text = ""
        for _ in range(100):
            text = server.log_path.read_text()
            if text.count('"log_type":"prediction"') >= len(rows):
                break
            threading.Event().wait(0.1)
    logged = [json.loads(line) for line in text.splitlines() if '"log_type":"prediction"' in line]
    assert len(logged) == len(rows) and KEY not in text
    assert [r["instances"][0] for r in logged] == rows
    # Fluent Bit: the rewrite_tag rule matches these records and re-tags them to the output
    # that writes the ml-api-predictions-* index.
    conf = find(logging_docs(), "ConfigMap")["data"]["fluent-bit.conf"]
    parsed = sections(conf)
    (rule,) = [s["rule"][0] for name, s in parsed if name == "FILTER" and "rule" in s]
    key, regex, tag, keep = rule.split()
    assert key == "$log_type" and keep == "false"
    assert all(re.search(regex, r["log_type"]) for r in logged)
    (out,) = [
        s for name, s in parsed if name == "OUTPUT" and s["match"][0].startswith("predictions")
    ]
    assert tag.startswith("predictions.") and out["logstash_prefix"] == ["ml-api-predictions"]
