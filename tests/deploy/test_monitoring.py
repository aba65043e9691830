"""The alerting rules and the dashboard: promtool checks them, and they ask for real metrics.

- ``promtool check rules`` and ``promtool test rules`` on the PrometheusRule's groups, with the
  unit tests in ``deploy/monitoring/tests`` (each alert fires when it should and only then).
- The dashboard's queries parse as PromQL (promtool checks them as recording rules), and every
  metric they name appears in a live scrape of ``GET /metrics`` from a real server that has
  answered a few requests.
"""

from __future__ import annotations

import functools
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import VALID_ROW
from tests.live.server import LiveServer
from tests.tools import require_tool

from .kit import DEPLOY, VARIANTS, documents, find, render

RULE_TESTS = DEPLOY / "monitoring" / "tests" / "ml-api-rules.test.yaml"
FLUENT_BIT_RULE_TESTS = DEPLOY / "logging" / "monitoring" / "tests" / "fluent-bit-rules.test.yaml"
# Each PrometheusRule of the kit: the variant that renders it, the rules file name its promtool
# unit tests load, the unit tests, and how many alerts it has.
RULE_SETS = {
    "monitoring": ("ml-api.rules.yaml", RULE_TESTS, 14),
    "logging-monitoring": ("fluent-bit.rules.yaml", FLUENT_BIT_RULE_TESTS, 4),
}
DASHBOARD = DEPLOY / "monitoring" / "dashboards" / "ml-api.json"
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$namespace": "ml-api", "$feature": "island"}


def promtool() -> str:
    return require_tool("promtool")


def run_promtool(*args: str, cwd: Path) -> str:
    proc = subprocess.run(
        [promtool(), *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


@functools.cache
def rendered(name: str) -> list[dict[str, Any]]:
    return documents(render(next(v for v in VARIANTS if v.name == name)))


def rule_groups(variant: str = "monitoring") -> list[dict[str, Any]]:
    return find(rendered(variant), "PrometheusRule")["spec"]["groups"]


def all_rules() -> list[dict[str, Any]]:
    """Every rule of every PrometheusRule in the kit."""
    return [r for name in RULE_SETS for g in rule_groups(name) for r in g["rules"]]


@pytest.mark.parametrize("variant", RULE_SETS)
def test_rules_check_and_unit_tests(tmp_path: Path, variant: str) -> None:
    rules_file, unit_tests, _ = RULE_SETS[variant]
    (tmp_path / rules_file).write_text(yaml.safe_dump({"groups": rule_groups(variant)}))
    shutil.copy(unit_tests, tmp_path / unit_tests.name)
    run_promtool("check", "rules", rules_file, cwd=tmp_path)
    output = run_promtool("test", "rules", unit_tests.name, cwd=tmp_path)
    assert "SUCCESS" in output


@pytest.mark.parametrize("variant", RULE_SETS)
def test_every_alert_has_a_firing_unit_test(variant: str) -> None:
    _, unit_tests, count = RULE_SETS[variant]
    alerts = {r["alert"] for g in rule_groups(variant) for r in g["rules"] if "alert" in r}
    assert len(alerts) == count
    tests = yaml.safe_load(unit_tests.read_text())["tests"]
    fired = {
        case["alertname"]
        for test in tests
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    silent = {
        case["alertname"]
        for test in tests
        for case in test.get("alert_rule_test", [])
        if not case.get("exp_alerts")
    }
    assert alerts == fired == silent


RUNBOOKS = DEPLOY.parent / "docs" / "runbooks.md"


def _anchor(heading: str) -> str:
    """GitHub's anchor for a Markdown heading: lower case, punctuation dropped, spaces to -."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_every_alert_links_a_runbook_section_that_exists() -> None:
    anchors = {
        _anchor(line.lstrip("#"))
        for line in RUNBOOKS.read_text().splitlines()
        if line.startswith("## ")
    }
    alerts = [r for r in all_rules() if "alert" in r]
    assert {r["alert"] for r in alerts} >= {"MlApiTargetAbsent", "FluentBitDroppedRecords"}
    for rule in alerts:
        url = rule["annotations"]["runbook_url"]
        assert url.startswith("https://") and "/docs/runbooks.md#" in url, rule["alert"]
        anchor = url.rsplit("#", 1)[1]
        assert anchor == rule["alert"].lower() and anchor in anchors, (rule["alert"], anchor)
    # And no section is left over from an alert that is gone.
    assert anchors == {r["alert"].lower() for r in alerts}


def test_aggregations_keep_the_namespace() -> None:
    """Every ``by (...)`` keeps ``namespace`` (``exported_namespace`` for ingress-nginx's series),
    so two installations, or a canary namespace, are never summed together."""
    for group in (g for name in RULE_SETS for g in rule_groups(name)):
        for rule in group["rules"]:
            lists = re.findall(r"\bby\s*\(([^)]*)\)", rule["expr"])
            for labels in lists:
                names = {n.strip() for n in labels.split(",")}
                assert names & {"namespace", "exported_namespace"}, (_name(rule), labels)
            if re.search(r"\b(sum|max|min|avg|count)\s*\(", rule["expr"]):
                assert lists, f"{_name(rule)} aggregates without `by`, dropping namespace"


def _name(rule: dict[str, Any]) -> str:
    return str(rule.get("alert") or rule["record"])


def recorded() -> set[str]:
    """The series the PrometheusRule's recording rules make (the drift score and its parts)."""
    return {r["record"] for g in rule_groups() for r in g["rules"] if "record" in r}


def test_the_drift_score_is_recorded_per_feature() -> None:
    assert {
        "ml_api:feature_values:increase1h",
        "ml_api:feature_bin_ratio:1h",
        "ml_api:feature_drift_psi:1h",
    } <= recorded()


def test_prediction_alerts_cover_the_v2_infer_routes() -> None:
    exprs = {r["alert"]: r["expr"] for g in rule_groups() for r in g["rules"] if "alert" in r}
    for alert in ("MlApiHighErrorRatio", "MlApiHighLatencyP99"):
        assert "/v2/models/<name>/infer" in exprs[alert], alert
        assert "/v2/models/<name>/versions/<version>/infer" in exprs[alert], alert


# --- the dashboard -------------------------------------------------------------------------------

PROMQL_KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or",
    "unless", "offset", "inf", "nan",
    # aggregation operators, which may stand before their `by (...)` clause
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk",
    "topk", "quantile", "limitk", "limit_ratio",
}  # fmt: skip


def dashboard_queries() -> list[str]:
    """Every PromQL query in the dashboard: panel targets and template variables."""
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    for variable in dashboard["templating"]["list"]:
        query = variable.get("query")
        if isinstance(query, dict):
            exprs.append(query["query"])
    return exprs


def substitute(expr: str) -> str:
    for name, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(name, value)
    return expr


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (functions, labels and keywords removed).

    Grafana's ``label_values(metric, label)`` counts its first argument as a metric.
    """
    expr = substitute(expr)
    label_values = re.fullmatch(r"\s*label_values\(\s*([a-zA-Z_:][\w:]*)\s*,.*\)\s*", expr)
    if label_values:
        return {label_values.group(1)}
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals (label values, regexes)
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # range and subquery selectors
    expr = re.sub(
        r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", r"\1", expr
    )  # label lists
    names = set()
    for match in re.finditer(r"(?<![\w:.])([a-zA-Z_:][\w:]*)(\s*\()?", expr):
        word, is_call = match.group(1), match.group(2)
        if not is_call and word.lower() not in PROMQL_KEYWORDS:
            names.add(word)
    return names


def test_metric_name_extraction() -> None:
    assert metric_names(
        'sum by (le, route) (rate(a_bucket{route="/x", b="c"}[5m])) / on (route) group_left '
        "sum(rate(b_total[$__rate_interval] offset 5m)) > bool 0.5 and c unless d"
    ) == {"a_bucket", "b_total", "c", "d"}
    assert metric_names("label_values(ml_api_model_info, namespace)") == {"ml_api_model_info"}
    assert metric_names('label_replace(x, "dst", "$1", "src", "(.+)")') == {"x"}


def test_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    rules = [
        {"record": f"dashboard:query_{i}", "expr": substitute(e)}
        for i, e in enumerate(dashboard_queries())
        if not e.startswith("label_values(")
    ]
    assert len(rules) >= 8
    (tmp_path / "dashboard.rules.yaml").write_text(
        yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]})
    )
    run_promtool("check", "rules", "dashboard.rules.yaml", cwd=tmp_path)


def test_dashboard_panels_cover_the_issue() -> None:
    titles = " | ".join(p["title"].lower() for p in json.loads(DASHBOARD.read_text())["panels"])
    for topic in (
        "request rate",
        "error ratio",
        "latency",
        "by class",
        "instances",
        "replicas",
        "autoscaler",
        "out-of-range",
        "drift",
        "serving version and swap failures per model",
        "memory per model",
    ):
        assert topic in titles


@pytest.fixture(scope="module")
def scraped_names(model_root: Path) -> Iterator[set[str]]:
    """Sample names from ``GET /metrics`` of a real server after valid and invalid predictions."""
    with LiveServer(model_root, workers=2) as server, requests.Session() as http:
        # the last valid row's body mass is far outside the training range: a warning, counted
        far_out = [*VALID_ROW[:4], 90000.0, VALID_ROW[5]]
        bodies = ({"features": VALID_ROW}, {"features": [VALID_ROW, far_out]}, {"x": 1})
        for body in bodies:
            http.post(server.url + "/predict", json=body, timeout=10)
        http.get(server.url + "/ready", timeout=10)
        response = http.get(server.url + "/metrics", timeout=10)
        if response.status_code == 404:
            pytest.skip("this checkout's server has no GET /metrics yet (issue 4 adds it)")
        assert response.status_code == 200
        families = list(text_string_to_metric_families(response.text))
        # Sample names, and family names (a histogram's base name, as prose names it).
        bases = {f.name for f in families if f.type in ("histogram", "summary")}
        yield {s.name for f in families for s in f.samples} | bases


@pytest.mark.live
def test_dashboard_uses_only_exported_metrics(scraped_names: set[str]) -> None:
    wanted = set().union(*(metric_names(e) for e in dashboard_queries()))
    assert {"ml_api_http_requests_total", "ml_api_out_of_range_total"} <= wanted
    cluster = {n for n in wanted if n.startswith("kube_")}  # kube-state-metrics (autoscaler)
    assert cluster <= {"kube_horizontalpodautoscaler_status_desired_replicas"}
    missing = wanted - cluster - recorded() - scraped_names
    assert not missing, f"the dashboard queries metrics the app does not export: {missing}"


# Series the kit's Prometheus gets from elsewhere than the app, by exact name (a misspelt one would
# match nothing and never fire): kube-state-metrics and cAdvisor (kube-prometheus-stack installs
# both), ingress-nginx's controller, Prometheus' own `up`, and Fluent Bit's output counters
# (fluent-bit src/flb_output.c, served at /api/v2/metrics/prometheus).
EXTERNAL_METRICS = {
    "up",
    "kube_deployment_status_replicas_available",
    "kube_horizontalpodautoscaler_spec_max_replicas",
    "kube_horizontalpodautoscaler_status_current_replicas",
    "kube_horizontalpodautoscaler_status_desired_replicas",
    "kube_pod_container_resource_limits",
    "kube_pod_container_status_last_terminated_reason",
    "kube_pod_container_status_restarts_total",
    "container_cpu_cfs_throttled_periods_total",
    "container_memory_rss",
    "container_memory_working_set_bytes",
    "container_oom_events_total",
    "nginx_ingress_controller_requests",
    "fluentbit_output_proc_records_total",
    "fluentbit_output_proc_bytes_total",
    "fluentbit_output_errors_total",
    "fluentbit_output_retries_total",
    "fluentbit_output_retries_failed_total",
    "fluentbit_output_dropped_records_total",
    "fluentbit_output_retried_records_total",
}


@pytest.mark.live
def test_alerts_use_exported_metrics_or_known_exporters(scraped_names: set[str]) -> None:
    wanted = set().union(*(metric_names(r["expr"]) for r in all_rules()))
    assert {"fluentbit_output_dropped_records_total", "ml_api_http_requests_total"} <= wanted
    missing = wanted - EXTERNAL_METRICS - recorded() - scraped_names
    assert not missing, f"the alerts query metrics nothing exports: {missing}"
