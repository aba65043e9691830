"""Every request's metric writes stay exact across gunicorn workers, over real HTTP.

The metric values keep the process id without a system call per write (``metrics.process_id``,
refreshed in each forked worker), and drift counting bins large requests with numpy. Neither may
lose or misplace a sample: ``ml-api serve`` with 2 workers answers requests of 1, 3 (the small
path) and 20 instances (the numpy path) on fresh connections until both workers have answered
``/predict`` (read from each worker's own metric file), then ``/metrics`` must give exactly the
requests and instances sent, in every series a prediction writes.
"""

from __future__ import annotations

import json
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import VALID_NAMED
from tests.live.conftest import FRAMEWORKS, framework_env
from tests.live.server import LiveServer

pytestmark = pytest.mark.live

SIZES = (1, 3, 20)
"""Instances per request: one, the small-request path, the numpy path of drift counting."""
ROUND = 12
"""Requests per round (4 of each size), sent 6 at a time on fresh connections."""
MAX_ROUNDS = 30
PREDICT_200 = {"method": "POST", "route": "/predict", "status": "200"}


def _predict_counts_by_pid(prom: Path) -> dict[str, float]:
    """``ml_api_http_requests_total`` for ``POST /predict`` 200, per process file."""
    out: dict[str, float] = {}
    for path in prom.glob("counter_*.db"):
        for key, value, _, _ in MmapedDict.read_all_values_from_file(str(path)):
            _, sample, labels, _ = json.loads(key)  # prometheus_client's mmap_key
            if sample == "ml_api_http_requests_total" and labels == PREDICT_200:
                out[path.stem] = out.get(path.stem, 0.0) + value
    return out


def _scrape(url: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    text = requests.get(url + "/metrics", timeout=10).text
    out: dict[str, dict[tuple[tuple[str, str], ...], float]] = defaultdict(dict)
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[s.name][tuple(sorted(s.labels.items()))] = s.value
    return out


def _total(series: dict[tuple[tuple[str, str], ...], float], **labels: str) -> float:
    return sum(v for k, v in series.items() if labels.items() <= dict(k).items())


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_counts_are_exact_across_two_workers(
    framework: str, model_root: Path, tmp_path: Path
) -> None:
    prom = tmp_path / "prom"
    env = framework_env(framework, PROMETHEUS_MULTIPROC_DIR=str(prom))
    with LiveServer(model_root, framework, workers=2, env=env) as server:

        def predict(n: int) -> int:
            body = {"instances": [VALID_NAMED] * n}
            answer = requests.post(server.url + "/predict", json=body, timeout=30)
            assert answer.status_code == 200, answer.text
            assert len(answer.json()["prediction"]) == n
            return n

        requests_sent = instances_sent = 0
        with ThreadPoolExecutor(6) as pool:
            for _ in range(MAX_ROUNDS):
                sizes = [SIZES[i % len(SIZES)] for i in range(ROUND)]
                instances_sent += sum(pool.map(predict, sizes))
                requests_sent += ROUND
                if len(_predict_counts_by_pid(prom)) >= 2:
                    break
        per_worker = _predict_counts_by_pid(prom)
        assert len(per_worker) == 2, f"both workers must answer /predict: {per_worker}"
        assert sum(per_worker.values()) == requests_sent

        m = _scrape(server.url)
        assert _total(m["ml_api_http_requests_total"], **PREDICT_200) == requests_sent
        count = m["ml_api_http_request_duration_seconds_count"]
        assert _total(count, **PREDICT_200) == requests_sent
        assert _total(m["ml_api_request_instances_count"]) == requests_sent
        assert _total(m["ml_api_request_instances_sum"]) == instances_sent
        assert _total(m["ml_api_predictions_total"], model_name="penguins") == instances_sent
        assert _total(m["ml_api_batch_rows_sum"]) == instances_sent
        # every increment was matched by its decrement: only the scrape itself is in flight
        assert _total(m["ml_api_http_requests_in_flight"]) == 1
        for feature in VALID_NAMED:
            counted = _total(
                m["ml_api_feature_values_total"], model_name="penguins", feature=feature
            )
            assert counted == instances_sent, feature
