"""Batch-invariant answers over real HTTP: 50 concurrent clients get the single-call answers.

One gunicorn worker (so the adaptive batcher coalesces the concurrent requests into shared model
calls), Flask and Django, each runtime. Every client's answer for each of its instances, V1
``/predict`` and V2 infer, must be byte-for-byte the answer that instance gets when sent alone.
"""

from __future__ import annotations

import json
import random
import re
from concurrent.futures import ThreadPoolExecutor

import pandas as pd
import pytest
import requests

from ml_api import preprocess
from tests.live.conftest import framework_env
from tests.live.server import LiveServer

pytestmark = pytest.mark.live

CLIENTS = 50
FEATURES = ["island", "bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g", "sex"]


@pytest.fixture(scope="module")
def instances() -> list[dict]:
    frame = pd.read_csv(preprocess.PENGUINS_CSV)[FEATURES].dropna()
    rows = frame.sample(120, random_state=7).to_dict("records")
    return [
        {k: (float(v) if k not in ("island", "sex") else v) for k, v in r.items()} for r in rows
    ]


def _v1(url: str, batch: list[dict]) -> list[str]:
    r = requests.post(url + "/predict", json={"instances": batch}, timeout=60)
    assert r.status_code == 200, r.text
    body = r.json()
    probs = body.get("probabilities") or [None] * len(batch)
    return [json.dumps([p, q]) for p, q in zip(body["prediction"], probs, strict=True)]


def _v2(url: str, batch: list[dict]) -> list[str]:
    inputs = []
    for name in FEATURES:
        text = name in ("island", "sex")
        inputs.append(
            {
                "name": name,
                "datatype": "BYTES" if text else "FP64",
                "shape": [len(batch)],
                "data": [row[name] for row in batch],
            }
        )
    r = requests.post(url + "/v2/models/penguins/infer", json={"inputs": inputs}, timeout=60)
    assert r.status_code == 200, r.text
    outputs = {o["name"]: o for o in r.json()["outputs"]}
    n = len(batch)
    per_row = {}
    for name, out in outputs.items():
        data, width = out["data"], (len(out["data"]) // n)
        per_row[name] = [data[i * width : (i + 1) * width] for i in range(n)]
    return [json.dumps({k: v[i] for k, v in sorted(per_row.items())}) for i in range(n)]


def _model_calls(url: str) -> float:
    """Model calls so far (the batcher's ``ml_api_batch_rows`` observations)."""
    text = requests.get(url + "/metrics", timeout=10).text
    found = re.findall(r"^ml_api_batch_rows_count\{[^}]*\} (\S+)", text, re.M)
    return sum(float(v) for v in found)


@pytest.mark.parametrize("runtime", ["onnx", "sklearn"])
@pytest.mark.parametrize("framework", ["flask", "django"])
def test_concurrent_answers_equal_single_call_answers(model_root, instances, framework, runtime):
    env = framework_env(framework, ML_API_RUNTIME=runtime, ML_API_THREADS="64")
    server = LiveServer(model_root, framework, workers=1, env=env)
    server.wait_ready(timeout=240)  # a loaded machine boots a worker slowly
    with server:
        for call in (_v1, _v2):
            alone = {i: call(server.url, [row])[0] for i, row in enumerate(instances)}
            rng = random.Random(f"{framework}-{runtime}-{call.__name__}")
            calls, requests_sent = _model_calls(server.url), 0
            for _round in range(10):
                # each client sends 1 to 4 random instances; 50 clients at once
                picks = [
                    rng.sample(range(len(instances)), rng.randint(1, 4)) for _ in range(CLIENTS)
                ]

                def send(pick, call=call):
                    return pick, call(server.url, [instances[i] for i in pick])

                with ThreadPoolExecutor(CLIENTS) as pool:
                    answers = list(pool.map(send, picks))
                requests_sent += CLIENTS
                for pick, got in answers:
                    for i, answer in zip(pick, got, strict=True):
                        assert answer == alone[i], (framework, runtime, call.__name__, i)
                if _model_calls(server.url) - calls < requests_sent:
                    break
            # fewer model calls than requests: the batcher merged concurrent requests
            assert _model_calls(server.url) - calls < requests_sent
