"""The log shipper's configuration against its DaemonSet (issue 16, items 1 and 9).

Fluent Bit's tail input keeps its SQLite database at ``DB`` and its buffer under
``storage.path``; SQLite does not create a missing parent directory, so a ``DB`` in a directory
nothing creates makes the input fail and Fluent Bit exit on every node. Every such path must lie
directly in a directory that a writable mount of the DaemonSet provides (a hostPath with
``DirectoryOrCreate``, or an emptyDir), checked for every path-valued key in the config.
"""

from __future__ import annotations

import functools
import re
from pathlib import PurePosixPath
from typing import Any

from .kit import DEPLOY, Variant, documents, find, render

PATH_KEYS = {"db", "storage.path"}


@functools.cache
def logging_docs() -> list[dict[str, Any]]:
    return documents(render(Variant("logging", DEPLOY / "logging")))


def sections(conf: str) -> list[tuple[str, dict[str, list[str]]]]:
    """Parse Fluent Bit's classic format: ``[SECTION]`` then ``Key Value`` lines (keys repeat)."""
    out: list[tuple[str, dict[str, list[str]]]] = []
    for raw in conf.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        header = re.fullmatch(r"\[(\w+)\]", line)
        if header:
            out.append((header.group(1).upper(), {}))
            continue
        key, _, value = line.partition(" ")
        out[-1][1].setdefault(key.lower(), []).append(value.strip())
    return out


def writable_mount_dirs(daemonset: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Mount path -> volume, for the writable mounts whose directory the mount itself creates."""
    pod = daemonset["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    dirs = {}
    for container in pod["containers"]:
        for mount in container["volumeMounts"]:
            volume = volumes[mount["name"]]
            if mount.get("readOnly"):
                continue
            created = "emptyDir" in volume or (
                "hostPath" in volume and volume["hostPath"].get("type") == "DirectoryOrCreate"
            )
            if created:
                dirs[str(PurePosixPath(mount["mountPath"]))] = volume
    return dirs


def misplaced_paths(conf: str, mount_dirs: set[str]) -> list[str]:
    """The DB/storage.path values whose parent directory is not a writable mount."""
    bad = []
    for name, keys in sections(conf):
        for key in PATH_KEYS & keys.keys():
            for value in keys[key]:
                if str(PurePosixPath(value).parent) not in mount_dirs:
                    bad.append(f"[{name}] {key} {value}")
    return bad


def _config_and_daemonset() -> tuple[str, dict[str, Any]]:
    docs = logging_docs()
    return find(docs, "ConfigMap")["data"]["fluent-bit.conf"], find(docs, "DaemonSet")


def test_every_state_path_lies_in_a_directory_a_mount_creates() -> None:
    conf, daemonset = _config_and_daemonset()
    mounts = writable_mount_dirs(daemonset)
    assert mounts, "Fluent Bit has no writable mount for its state"
    paths = [v for _, keys in sections(conf) for k in PATH_KEYS for v in keys.get(k, [])]
    assert len(paths) >= 2  # the tail DB and the filesystem buffer
    assert misplaced_paths(conf, set(mounts)) == []


def test_the_check_catches_the_crash_looping_layout() -> None:
    """The layout that crash-looped: the DB one directory below what the hostPath creates."""
    conf, daemonset = _config_and_daemonset()
    broken = re.sub(r"(?m)^(\s*DB\s+)\S+", r"\1/var/fluent-bit/state/tail-ml-api.db", conf)
    assert misplaced_paths(broken, set(writable_mount_dirs(daemonset))) == [
        "[INPUT] db /var/fluent-bit/state/tail-ml-api.db"
    ]


def test_logs_survive_an_elasticsearch_outage_within_a_bounded_backlog() -> None:
    conf, _ = _config_and_daemonset()
    parsed = sections(conf)
    (service,) = [keys for name, keys in parsed if name == "SERVICE"]
    outputs = [keys for name, keys in parsed if name == "OUTPUT"]
    assert service["storage.backlog.mem_limit"]
    for inp in (keys for name, keys in parsed if name == "INPUT"):
        assert inp["storage.type"] == ["filesystem"]  # unsent chunks wait on disk
    for out in outputs:
        assert out["retry_limit"] in (["no_limits"], ["False"])  # never dropped after N retries
        assert re.fullmatch(r"\d+[MG]", out["storage.total_limit_size"][0])  # bounded on disk


def test_fluent_bit_writes_as_a_log_writer_not_the_superuser() -> None:
    docs = logging_docs()
    conf, daemonset = _config_and_daemonset()
    outputs = [keys for name, keys in sections(conf) if name == "OUTPUT"]
    assert len(outputs) == 2  # the logs, and the prediction log in its own indices
    for out in outputs:
        assert out["http_user"] == ["${ELASTIC_USERNAME}"]
    env = {
        e["name"]: e["valueFrom"]["secretKeyRef"]
        for e in daemonset["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["ELASTIC_USERNAME"]["name"] == env["ELASTIC_PASSWORD"]["name"]
    es = find(docs, "Elasticsearch")
    realms = {r["secretName"] for r in es["spec"]["auth"]["fileRealm"]}
    assert env["ELASTIC_USERNAME"]["name"] in realms
    assert not env["ELASTIC_USERNAME"]["name"].endswith("-es-elastic-user")
    roles_secret = find(docs, "Secret", es["spec"]["auth"]["roles"][0]["secretName"])
    assert "roles.yml" in roles_secret.get("data", {}) or "roles.yml" in roles_secret.get(
        "stringData", {}
    )


def test_indices_have_a_retention_policy() -> None:
    job = find(logging_docs(), "Job", "ml-api-logs-retention")
    script = job["spec"]["template"]["spec"]["containers"][0]["args"][0]
    assert "_ilm/policy/ml-api-logs" in script and '"delete"' in script
    assert '"index_patterns":["ml-api-*"]' in script
    assert '"index.lifecycle.name":"ml-api-logs"' in script


def test_successful_probe_and_scrape_records_are_dropped_but_failures_kept() -> None:
    conf, _ = _config_and_daemonset()
    greps = [keys for name, keys in sections(conf) if name == "FILTER" and keys["name"] == ["grep"]]
    (grep,) = greps
    assert [op.lower() for op in grep["logical_op"]] == ["and"]  # both rules must match to drop
    rules = dict(rule.split(None, 1) for rule in grep["exclude"])
    path = re.compile(rules["path"])
    assert all(path.search(p) for p in ("/health", "/ready", "/metrics"))
    assert not path.search("/predict") and not path.search("/v2/health/ready/x")
    level = re.compile(rules["level"])
    assert level.search("INFO") and not level.search("WARNING") and not level.search("ERROR")


def test_prediction_records_go_to_their_own_index_kept_longer() -> None:
    conf, _ = _config_and_daemonset()
    parsed = sections(conf)
    (rewrite,) = [k for name, k in parsed if name == "FILTER" and k["name"] == ["rewrite_tag"]]
    key, regex, tag, keep = rewrite["rule"][0].split()
    assert (key, keep) == ("$log_type", "false") and tag.startswith("predictions.")
    assert re.search(regex, "prediction") and not re.search(regex, "predictions_other")
    outputs = {k["match"][0]: k for name, k in parsed if name == "OUTPUT"}
    assert outputs["kube.*"]["logstash_prefix"] == ["ml-api"]
    assert outputs["predictions.*"]["logstash_prefix"] == ["ml-api-predictions"]
    assert rewrite["emitter_storage.type"] == ["filesystem"]
    script = find(logging_docs(), "Job", "ml-api-logs-retention")["spec"]["template"]["spec"][
        "containers"
    ][0]["args"][0]
    assert '"index_patterns":["ml-api-predictions-*"],"priority":100' in script
    assert '"min_age":"14d"' in script


def test_prometheus_scrapes_fluent_bit_where_it_serves_its_metrics() -> None:
    """deploy/logging/monitoring's PodMonitor reaches the HTTP server fluent-bit.conf turns on,
    on the DaemonSet's pods, with the `job` and the output names its alerts use."""
    conf, daemonset = _config_and_daemonset()
    watching = documents(render(Variant("fb", DEPLOY / "logging" / "monitoring")))
    (service,) = [keys for name, keys in sections(conf) if name == "SERVICE"]
    assert service["http_server"] == ["On"]
    template = daemonset["spec"]["template"]
    container = template["spec"]["containers"][0]
    monitor = find(watching, "PodMonitor")
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports[endpoint["port"]] == int(service["http_port"][0])
    assert endpoint["path"] == "/api/v2/metrics/prometheus"
    labels = template["metadata"]["labels"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= labels.items()
    namespace = daemonset["metadata"]["namespace"]
    assert monitor["metadata"]["namespace"] == namespace
    job = labels[monitor["spec"]["jobLabel"]]
    rules = find(watching, "PrometheusRule")
    alerts = {r["alert"]: r for g in rules["spec"]["groups"] for r in g["rules"]}
    absent = alerts["FluentBitTargetAbsent"]["expr"]
    assert f'job="{job}"' in absent and f'namespace="{namespace}"' in absent
    app_monitor = find(documents(render(Variant("m", DEPLOY / "monitoring"))), "ServiceMonitor")
    release = app_monitor["metadata"]["labels"]["release"]  # what the kit's Prometheus selects
    assert monitor["metadata"]["labels"]["release"] == rules["metadata"]["labels"]["release"]
    assert monitor["metadata"]["labels"]["release"] == release
    # Each output has its own Alias: the `name` label of its counters, as the alerts describe.
    aliases = [keys["alias"][0] for name, keys in sections(conf) if name == "OUTPUT"]
    assert sorted(aliases) == ["es_logs", "es_predictions"]
    for counter in (
        "fluentbit_output_dropped_records_total",
        "fluentbit_output_retries_failed_total",
        "fluentbit_output_errors_total",
    ):
        assert any(counter in r["expr"] for r in alerts.values()), counter
