"""Input drift end to end: a real server counts, /metrics shows it, promtool's rules score it,
the dashboard's drift panels show it.

The default penguins model is served by ``ml-api serve`` (gunicorn, 2 workers). 2,000 instances
drawn from the training data are sent, then 2,000 with ``body_mass_g`` +30 % and every ``island``
Biscoe. From the scraped counters (exact across the workers: every feature's bins add up to the
instances sent) the PSI of the second sample crosses 0.25 for those two features only; the same
scraped series, given to ``promtool test rules`` with the PrometheusRule's recording rules and
alert, give the same answer.
"""

from __future__ import annotations

import json
import math
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import requests
import yaml
from prometheus_client.parser import text_string_to_metric_families

from ml_api import preprocess
from ml_api.core.model.profile import psi
from tests.deploy.test_monitoring import DASHBOARD, rule_groups, run_promtool
from tests.live.server import LiveServer

pytestmark = pytest.mark.live

THRESHOLD = 0.25
DRIFTED = {"body_mass_g", "island"}
N = 2_000
BATCH = 50  # the live server's ML_API_MAX_INSTANCES

Counts = dict[tuple[str, str], float]
"""(feature, bin) -> value, for the penguins model."""


def samples() -> tuple[pd.DataFrame, pd.DataFrame]:
    """2,000 training rows (seeded draw with replacement), and the same rows drifted."""
    frame = pd.read_csv(preprocess.PENGUINS_CSV).dropna(subset=["species"])
    features = frame.drop(columns=["species", *preprocess.PENGUINS_DROP])
    rng = np.random.default_rng(25)
    base = features.iloc[rng.integers(0, len(features), N)].reset_index(drop=True)
    drifted = base.assign(body_mass_g=base["body_mass_g"] * 1.3, island="Biscoe")
    return base, drifted


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
        for row in frame.to_dict(orient="records")
    ]


def send(http: requests.Session, url: str, frame: pd.DataFrame) -> None:
    rows = records(frame)
    for start in range(0, len(rows), BATCH):
        response = http.post(url + "/predict", json={"instances": rows[start : start + BATCH]})
        assert response.status_code == 200, response.text


def scrape(http: requests.Session, url: str) -> tuple[Counts, Counts]:
    """``(ml_api_feature_values_total, ml_api_feature_reference_ratio)`` of the penguins model."""
    values: Counts = {}
    reference: Counts = {}
    text = http.get(url + "/metrics", timeout=10).text
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.labels.get("model_name") != "penguins" or "bin" not in s.labels:
                continue
            key = (s.labels["feature"], s.labels["bin"])
            if s.name == "ml_api_feature_values_total":
                values[key] = s.value
            elif s.name == "ml_api_feature_reference_ratio":
                reference[key] = s.value
    return values, reference


def totals(values: Counts) -> dict[str, float]:
    out: dict[str, float] = defaultdict(float)
    for (feature, _), v in values.items():
        out[feature] += v
    return dict(out)


def settle(http: requests.Session, url: str, expected: int) -> tuple[Counts, Counts]:
    """Scrape until every feature counts ``expected`` instances (the workers flush each second)."""
    deadline = time.monotonic() + 60
    while True:
        values, reference = scrape(http, url)
        got = totals(values)
        if got and all(v == expected for v in got.values()):
            return values, reference
        assert time.monotonic() < deadline, f"counters never reached {expected}: {got}"
        time.sleep(0.5)


def scores(values: Counts, reference: Counts) -> dict[str, float]:
    out = {}
    for feature in {f for f, _ in reference}:
        bins = sorted(b for f, b in reference if f == feature)
        out[feature] = psi(
            [reference[feature, b] for b in bins], [values.get((feature, b), 0) for b in bins]
        )
    return out


def panel_exprs(title: str, feature: str = "") -> list[str]:
    """A dashboard panel's queries as Grafana sends them (namespace and feature filled in)."""
    panels = json.loads(DASHBOARD.read_text())["panels"]
    (panel,) = [p for p in panels if p["title"].startswith(title)]
    return [
        t["expr"].replace("$namespace", "ml-api").replace("$feature", feature)
        for t in panel["targets"]
    ]


def dashboard_checks(features: set[str]) -> list[dict[str, Any]]:
    """The drift panels on the scraped series at 130 minutes: the PSI panel crosses 0.25 for the
    drifted features only; island's panel shows every served instance in Biscoe, none elsewhere,
    beside the training shares."""
    (psi_panel,) = panel_exprs("Input drift (PSI)")
    served, training = panel_exprs("Drift of $feature", "island")
    profile_bins = ("Biscoe", "Dream", "Torgersen", "(other)", "(missing)")
    return [
        {
            "expr": f"({psi_panel}) > bool {THRESHOLD}",
            "eval_time": "130m",
            "exp_samples": [
                {
                    "labels": f'{{model_name="penguins", model_version="1", feature="{f}"}}',
                    "value": int(f in DRIFTED),
                }
                for f in sorted(features)
            ],
        },
        {
            "expr": served,
            "eval_time": "130m",
            "exp_samples": [
                {"labels": f'{{model_version="1", bin="{b}"}}', "value": int(b == "Biscoe")}
                for b in profile_bins
            ],
        },
        {
            "expr": f"count({training})",
            "eval_time": "130m",
            "exp_samples": [{"labels": "{}", "value": len(profile_bins)}],
        },
    ]


@pytest.fixture(scope="module")
def scraped(model_root: Path) -> Iterator[tuple[Counts, Counts, Counts]]:
    """Counters after the training-like sample, after the drifted one, and the reference."""
    base, drifted = samples()
    with LiveServer(model_root, workers=2) as server, requests.Session() as http:
        send(http, server.url, base)
        first, reference = settle(http, server.url, N)
        send(http, server.url, drifted)
        both, _ = settle(http, server.url, 2 * N)
        yield first, both, reference


def test_counters_are_exact_across_workers_and_only_the_drifted_features_cross(
    scraped: tuple[Counts, Counts, Counts],
) -> None:
    first, both, reference = scraped
    assert set(totals(first)) == {
        "island", "bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g", "sex",
    }  # fmt: skip
    assert all(math.isclose(sum(v for (f, _), v in reference.items() if f == feature), 1.0)
               for feature in totals(first))  # fmt: skip
    calm = scores(first, reference)
    assert all(s < 0.1 for s in calm.values()), calm
    second = {k: both[k] - first.get(k, 0) for k in both}
    drift = scores(second, reference)
    assert {f for f, s in drift.items() if s > THRESHOLD} == DRIFTED, drift
    assert all(s < 0.1 for f, s in drift.items() if f not in DRIFTED), drift


def test_the_recording_rules_and_the_alert_agree_on_the_scraped_series(
    scraped: tuple[Counts, Counts, Counts], tmp_path: Path
) -> None:
    """promtool: the scraped counts at 1 min (phase one), 81 min (phase two), scored at 50 and 130
    minutes with the real rules; the score is 1 exactly for the drifted features."""
    first, both, reference = scraped
    labels = 'namespace="ml-api", pod="live", model_name="penguins", model_version="1"'
    series = []
    for (feature, bin_), value in both.items():
        sel = f'{labels}, feature="{feature}", bin="{bin_}"'
        series.append(
            {
                "series": f"ml_api_feature_values_total{{{sel}}}",
                "values": f"0 {first.get((feature, bin_), 0):g}x79 {value:g}x60",
            }
        )
        series.append(
            {
                "series": f"ml_api_feature_reference_ratio{{{sel}}}",
                "values": f"{reference[feature, bin_]!r}x141",
            }
        )

    def expected(drifted: set[str]) -> list[dict[str, Any]]:
        return [
            {
                "labels": f'{{namespace="ml-api", model_name="penguins", model_version="1", '
                f'feature="{f}"}}',
                "value": int(f in drifted),
            }
            for f in sorted(totals(both))
        ]

    second = {k: both[k] - first.get(k, 0) for k in both}
    alerts = [
        {
            "exp_labels": {
                "severity": "warning",
                "namespace": "ml-api",
                "model_name": "penguins",
                "model_version": "1",
                "feature": f,
            },
            "exp_annotations": {
                "summary": "A feature's input distribution has drifted from the training data",
                "description": f"Feature {f} of model penguins v1 in ml-api has a PSI of "
                f"{scores(second, reference)[f]:.2f} over the last hour against its training "
                "data (above 0.25): the model is seeing inputs unlike the ones it learnt from.",
                "runbook_url": "https://github.com/your-org/ml-api/blob/main/docs/runbooks.md"
                "#mlapifeaturedrift",
            },
        }
        for f in sorted(DRIFTED)
    ]
    test = {
        "rule_files": ["rules.yaml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": series,
                "promql_expr_test": [
                    {
                        "expr": f"ml_api:feature_drift_psi:1h > bool {THRESHOLD}",
                        "eval_time": "50m",
                        "exp_samples": expected(set()),
                    },
                    {
                        "expr": f"ml_api:feature_drift_psi:1h > bool {THRESHOLD}",
                        "eval_time": "130m",
                        "exp_samples": expected(DRIFTED),
                    },
                    *dashboard_checks(set(totals(both))),
                ],
                "alert_rule_test": [
                    {"eval_time": "50m", "alertname": "MlApiFeatureDrift", "exp_alerts": []},
                    {"eval_time": "130m", "alertname": "MlApiFeatureDrift", "exp_alerts": alerts},
                ],
            }
        ],
    }
    drift_group = [g for g in rule_groups() if g["name"] == "ml-api.drift"]
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": drift_group}))
    (tmp_path / "test.yaml").write_text(yaml.safe_dump(test, width=1000))
    assert "SUCCESS" in run_promtool("test", "rules", "test.yaml", cwd=tmp_path)
