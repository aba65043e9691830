"""Out-of-range warnings over real HTTP from gunicorn, Flask then Django (``server`` fixture).

Two workers in prometheus_client's multiprocess mode: the counter a scrape shows is the sum over
the workers, whichever one answered the predictions.
"""

from __future__ import annotations

import json

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.live

LONG_FLIPPER = ["Biscoe", 50.0, 15.0, 900.0, 5500.0, "male"]  # training range 172 to 231 mm
EXPECTED = [
    {
        "instance": 0,
        "field": "flipper_length_mm",
        "problem": "900 is outside the training range 172 to 231",
    }
]


def out_of_range_total(url: str, feature: str) -> float:
    text = requests.get(url + "/metrics", timeout=10).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if (
                sample.name == "ml_api_out_of_range_total"
                and sample.labels.get("feature") == feature
            ):
                return sample.value
    return 0.0


def test_warnings_in_v1_and_v2_and_counted_across_workers(server):
    before = out_of_range_total(server.url, "flipper_length_mm")
    for _ in range(4):  # connections spread over both workers
        r = requests.post(server.url + "/predict", json={"features": LONG_FLIPPER}, timeout=10)
        assert r.status_code == 200
        assert r.json()["warnings"] == EXPECTED
    v2 = {
        "inputs": [
            {"name": "island", "datatype": "BYTES", "shape": [1], "data": ["Biscoe"]},
            {"name": "bill_length_mm", "datatype": "FP64", "shape": [1], "data": [50.0]},
            {"name": "bill_depth_mm", "datatype": "FP64", "shape": [1], "data": [15.0]},
            {"name": "flipper_length_mm", "datatype": "FP64", "shape": [1], "data": [900.0]},
            {"name": "body_mass_g", "datatype": "FP64", "shape": [1], "data": [5500.0]},
            {"name": "sex", "datatype": "BYTES", "shape": [1], "data": ["male"]},
        ]
    }
    r = requests.post(server.url + "/v2/models/penguins/infer", json=v2, timeout=10)
    assert r.status_code == 200
    assert json.loads(r.json()["parameters"]["out_of_range"]) == EXPECTED
    assert out_of_range_total(server.url, "flipper_length_mm") == before + 5
    inside = requests.post(
        server.url + "/predict",
        json={"features": ["Biscoe", 50.0, 15.0, 220.0, 5500.0, "male"]},
        timeout=10,
    )
    assert "warnings" not in inside.json()
