"""docs/runbooks.md points only at what the kit has: metrics that a live server's ``GET /metrics``
exports (or a recording rule, or an exporter the kit installs), sections and pages that exist,
dashboard panels, objects the kit renders, and procedures the kit allows.

The runbooks had pointed at README sections that do not exist ("Sizing", "Canary"), at memory
limits two measurements old, at a KEDA HPA name the component no longer uses, at Kibana (the kit
has none) and at ``kubectl rollout undo``, which the release pin in git undoes at the next apply.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from .kit import DEPLOY, ROOT, documents
from .test_monitoring import (
    EXTERNAL_METRICS,
    RUNBOOKS,
    _anchor,
    all_rules,
    dashboard_queries,
    metric_names,
    recorded,
    rendered,
    scraped_names,  # noqa: F401 - the fixture
)

DASHBOARD_TITLES = re.compile(r'"title":\s*"([^"]+)"')
# Objects outside the kit that the runbooks name: the charts' own (docs/kubernetes.md, "In
# production", installs them under these release names).
CHART_OBJECTS = {"kube-prometheus-stack-prometheus", "ingress-nginx-controller"}


def text() -> str:
    return RUNBOOKS.read_text()


def code(markdown: str) -> list[str]:
    """Inline code spans and the lines of fenced blocks."""
    fenced = re.findall(r"```[a-z]*\n(.*?)```", markdown, flags=re.S)
    inline = re.findall(r"`([^`\n]+)`", re.sub(r"```.*?```", "", markdown, flags=re.S))
    return inline + [line for block in fenced for line in block.splitlines()]


def prometheus_names(snippet: str) -> set[str]:
    """Metric-like names in a snippet: the app's, recording rules and the exporters' prefixes."""
    return set(
        re.findall(
            r"(?<![\w.-])((?:ml_api[_:]|container_|kube_|nginx_ingress_|fluentbit_)[\w:]*)",
            snippet,
        )
    ) - {"ml_api_log_writer"}  # an Elasticsearch role, not a metric


def headings(path: Path) -> set[str]:
    return {
        _anchor(line.lstrip("#"))
        for line in path.read_text().splitlines()
        if re.match(r"#{1,6} ", line)
    }


@pytest.mark.live
def test_every_metric_a_runbook_names_is_exported(scraped_names: set[str]) -> None:  # noqa: F811
    named = set().union(*(prometheus_names(s) for s in code(text())))
    assert {"ml_api_http_requests_total", "fluentbit_output_dropped_records_total"} <= named
    missing = named - EXTERNAL_METRICS - recorded() - scraped_names
    assert not missing, f"the runbooks query metrics nothing exports: {missing}"


def test_metric_names_are_found_in_code() -> None:
    snippet = 'sum by (le) (rate(ml_api_request_instances_bucket{namespace="ml-api"}[5m]))'
    assert prometheus_names(snippet) == {"ml_api_request_instances_bucket"}
    assert prometheus_names("python -m ml_api.serving.healthcheck") == set()


def test_links_and_section_references_resolve() -> None:
    docs = RUNBOOKS.parent
    for label, target in re.findall(r"\[([^\]]+)\]\(([^)\s]+)\)", text()):
        if target.startswith("http"):
            continue
        page, _, anchor = target.partition("#")
        path = (docs / page) if page else RUNBOOKS
        assert path.is_file(), (label, target)
        assert not anchor or anchor in headings(path), (label, target)
    # `README "Section"` references name a README heading.
    readme = headings(ROOT / "README.md")
    for section in re.findall(r'README "([^"]+)"', text()):
        assert _anchor(section) in readme, f'README has no section "{section}"'


def test_dashboard_panels_named_exist() -> None:
    titles = set(
        DASHBOARD_TITLES.findall((DEPLOY / "monitoring" / "dashboards" / "ml-api.json").read_text())
    )
    named = re.findall(r'"([^"]+)"\s+panel', text())
    assert named, "the runbooks name dashboard panels"
    assert set(named) <= titles, set(named) - titles


def test_objects_named_are_rendered_by_the_kit() -> None:
    """Every ``kind/name`` and every ``ml-api-...`` / ``...-hpa`` name in a command or code span
    is an object the kit renders (or a Secret it mounts, created by hand), or a chart's own."""
    names = set(CHART_OBJECTS)
    for variant in (
        "production+django",
        "logging",
        "logging-monitoring",
        "monitoring",
        "bootstrap",
    ):
        for doc in rendered(variant):
            names.add(doc["metadata"]["name"])
            names.add(doc["metadata"].get("namespace", ""))
            names.update(_secret_names(doc))
    keda = rendered_keda()
    names.add(keda["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["name"])
    named = set()
    for snippet in code(text()):
        named.update(
            re.findall(
                r"(?<![\w/.-])(?:deploy|deployment|svc|service|hpa|daemonset|job)/([a-z0-9-]+)(?![\w/.-])",
                snippet,
            )
        )
        if re.fullmatch(r"[a-z0-9-]*(?:ml-api|-hpa)[a-z0-9-]*", snippet.strip()):
            named.add(snippet.strip())
    assert {"ml-api-deployment", "ml-api-hpa"} <= named
    assert named <= names, named - names


def _secret_names(doc: dict) -> set[str]:
    found = set()
    for match in re.finditer(r"'(?:secretName|name)': '([a-z0-9-]+)'", str(doc)):
        found.add(match.group(1))
    return found


def rendered_keda() -> dict:
    from .kit import K8S, Variant, find, render

    variant = Variant("keda", K8S / "overlays" / "production", (K8S / "components" / "keda",))
    return find(documents(render(variant)), "ScaledObject")


def test_figures_and_procedures_match_the_kit() -> None:
    """Memory figures are the rendered limits; a bad release is undone the kit's way (the pin in
    git), never with `rollout undo`."""
    limits = {
        c["resources"]["limits"]["memory"]
        for doc in rendered("production")
        if doc["kind"] == "Deployment"
        for c in doc["spec"]["template"]["spec"]["containers"]
    }
    for figure in re.findall(r"\b(\d+) ?Mi\b", text()):
        assert f"{figure}Mi" in limits, f"{figure} Mi is no memory limit of the kit: {limits}"
    commands = [s for s in code(text()) if re.search(r"rollout undo \S", s)]
    assert not commands, commands
    assert "kibana" not in text().lower()  # the kit ships Elasticsearch, not Kibana


def test_alert_metrics_cover_the_dashboard_and_rules() -> None:
    """The names the live checks compare are found at all (a parser that found none would pass)."""
    assert set().union(*(metric_names(e) for e in dashboard_queries()))
    assert set().union(*(metric_names(r["expr"]) for r in all_rules()))


def test_autoscaler_names_in_alerts_and_panels_exist() -> None:
    """kube-state-metrics names HPAs by object name: the alerts and panels must use the kit's.
    KEDA keeps `ml-api-hpa` (components/keda); `keda-hpa-ml-api` was left over from before."""
    hpas = {
        d["metadata"]["name"]
        for d in rendered("production")
        if d["kind"] == "HorizontalPodAutoscaler"
    }
    hpas.add(rendered_keda()["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["name"])
    queries = [r["expr"] for r in all_rules()] + dashboard_queries()
    named = set()
    for query in queries:
        for value in re.findall(r'horizontalpodautoscaler=~?"([^"]+)"', query):
            named.update(value.split("|"))
    assert named, "the alerts and panels select the HPA by name"
    assert named <= hpas, named - hpas
