"""Every overlay renders, every object validates, and the pieces agree with each other and the app.

Built-in kinds are validated with kubernetes-validate (strict: unknown fields are errors) against
Kubernetes ``KUBERNETES_VERSION``. The prometheus-operator kinds (ServiceMonitor, PrometheusRule)
are validated against JSON Schemas derived from the models in ``cloudcoil-models-prometheus-
operator`` (generated from the prometheus-operator v0.80 CRDs; Apache-2.0; installed in the tools
virtualenv by ``make tools``, see ``crd_schemas.py``), made strict the same way. ECK's
``Elasticsearch`` has no schema we can install from a package registry: it is checked for the
fields Fluent Bit depends on instead.
"""

from __future__ import annotations

import copy
import functools
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest

from ml_api.serving.gunicorn_app import DEFAULT_PORTS, GRACEFUL_TIMEOUT_SECONDS
from ml_api.settings import Settings

from .kit import (
    APP_VARIANTS,
    KUBERNETES_VERSION,
    ROOT,
    TOOLS_PYTHON,
    VARIANTS,
    Variant,
    documents,
    find,
    render,
)

API = "monitoring.coreos.com/v1"
CRD_KINDS = {API: ("ServiceMonitor", "PrometheusRule")}
UNVALIDATED_KINDS = {("elasticsearch.k8s.elastic.co/v1", "Elasticsearch")}


@functools.cache
def rendered(name: str) -> list[dict[str, Any]]:
    variant = next(v for v in VARIANTS if v.name == name)
    return documents(render(variant))


def _ids(variants: tuple[Variant, ...]) -> list[str]:
    return [v.name for v in variants]


@pytest.mark.parametrize("variant", VARIANTS, ids=_ids(VARIANTS))
def test_kubernetes_schemas_strict(variant: Variant) -> None:
    checked = 0
    docs = rendered(variant.name)
    for doc in docs:
        api_version, kind = doc["apiVersion"], doc["kind"]
        if kind in CRD_KINDS.get(api_version, ()) or (api_version, kind) in UNVALIDATED_KINDS:
            continue
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(p) for p in exc.path)
            pytest.fail(f"{kind}/{doc['metadata']['name']}: {path}: {exc.message}")
        checked += 1
    assert checked >= 1
    crds = sum(d["kind"] in CRD_KINDS.get(d["apiVersion"], ()) for d in docs)
    assert checked + crds + sum(
        (d["apiVersion"], d["kind"]) in UNVALIDATED_KINDS for d in docs
    ) == len(docs)


def test_schema_validation_catches_a_typo() -> None:
    """The validator is strict: a misspelt field is an error, not silently dropped."""
    deployment = copy.deepcopy(find(rendered("production"), "Deployment"))
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGett"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def _strict(schema: Any) -> Any:
    """Forbid properties a schema does not declare (as the API server prunes/rejects them)."""
    if isinstance(schema, dict):
        out = {k: _strict(v) for k, v in schema.items()}
        if "properties" in out and "additionalProperties" not in out:
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [_strict(v) for v in schema]
    return schema


@functools.cache
def _crd_schemas() -> dict[str, Any]:
    if not TOOLS_PYTHON.is_file():
        pytest.skip(f"{TOOLS_PYTHON} is missing: run `make tools` (CRD schemas come from there)")
    proc = subprocess.run(
        [str(TOOLS_PYTHON), str(Path(__file__).with_name("crd_schemas.py")), *CRD_KINDS[API]],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if proc.returncode != 0:
        pytest.skip(f"no CRD schemas from {TOOLS_PYTHON} (run `make tools`):\n{proc.stderr}")
    return json.loads(proc.stdout)


def crd_schema(kind: str) -> dict[str, Any]:
    return _strict(_crd_schemas()[kind])


def _crd_objects() -> list[dict[str, Any]]:
    return [d for d in rendered("production") if d["kind"] in CRD_KINDS.get(d["apiVersion"], ())]


def test_custom_resources_validate_against_their_crd_schemas() -> None:
    objects = _crd_objects()
    assert {d["kind"] for d in objects} == {"ServiceMonitor", "PrometheusRule"}
    for doc in objects:
        errors = sorted(
            jsonschema.Draft202012Validator(crd_schema(doc["kind"])).iter_errors(doc),
            key=lambda e: list(e.path),
        )
        assert not errors, "\n".join(
            f"{doc['kind']}: {'.'.join(map(str, e.path))}: {e.message}" for e in errors
        )


def test_crd_validation_catches_a_typo() -> None:
    monitor = copy.deepcopy(find(rendered("production"), "ServiceMonitor"))
    monitor["spec"]["endpoints"][0]["intervall"] = "30s"
    validator = jsonschema.Draft202012Validator(crd_schema("ServiceMonitor"))
    assert any("intervall" in e.message for e in validator.iter_errors(monitor))


def _deployment(docs: list[dict[str, Any]]) -> dict[str, Any]:
    return find(docs, "Deployment", "ml-api-deployment")


def _container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    containers = _deployment(docs)["spec"]["template"]["spec"]["containers"]
    return next(c for c in containers if c["name"] == "ml-api")


def _config(docs: list[dict[str, Any]]) -> dict[str, str]:
    (ref,) = _container(docs)["envFrom"]
    return find(docs, "ConfigMap", ref["configMapRef"]["name"])["data"]


def _named_port(container: dict[str, Any], port: int | str) -> int:
    if isinstance(port, int):
        return port
    return next(p["containerPort"] for p in container["ports"] if p["name"] == port)


@pytest.mark.parametrize("variant", APP_VARIANTS, ids=_ids(APP_VARIANTS))
def test_service_port_chain_matches_the_server(variant: Variant) -> None:
    """Service 80 -> targetPort -> containerPort == PORT the server binds == framework default."""
    docs = rendered(variant.name)
    container, config = _container(docs), _config(docs)
    service = find(docs, "Service", "ml-api-service")
    (port,) = service["spec"]["ports"]
    assert port["port"] == 80
    target = _named_port(container, port["targetPort"])
    framework = config["ML_API_FRAMEWORK"]
    assert target == int(config["PORT"]) == DEFAULT_PORTS[framework]
    assert framework == ("django" if "django" in variant.name else "flask")
    dockerfile = ROOT / "Dockerfile"
    if dockerfile.is_file():  # the image declares the port it listens on
        exposed = re.findall(r"^EXPOSE\s+(.+)$", dockerfile.read_text(), flags=re.M)
        assert str(target) in " ".join(exposed).split()
    template = _deployment(docs)["spec"]["template"]
    assert template["metadata"]["annotations"]["prometheus.io/port"] == str(target)
    assert service["spec"]["selector"] == template["metadata"]["labels"] == {"app": "ml-api"}
    for policy in (d for d in docs if d["kind"] == "NetworkPolicy"):
        for rule in policy["spec"]["ingress"]:
            assert {_named_port(container, p["port"]) for p in rule["ports"]} == {target}


@pytest.mark.parametrize("variant", APP_VARIANTS, ids=_ids(APP_VARIANTS))
def test_probes_and_shutdown_timing(variant: Variant) -> None:
    docs = rendered(variant.name)
    pod = _deployment(docs)["spec"]["template"]["spec"]
    container = _container(docs)
    probes = {
        k: container[k]["httpGet"] for k in ("startupProbe", "readinessProbe", "livenessProbe")
    }
    assert {k: p["path"] for k, p in probes.items()} == {
        "startupProbe": "/ready",
        "readinessProbe": "/ready",
        "livenessProbe": "/health",
    }
    for probe in probes.values():
        assert _named_port(container, probe["port"]) == int(_config(docs)["PORT"])
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 120  # slow model load
    (_, seconds) = container["lifecycle"]["preStop"]["exec"]["command"]
    drain = Settings(_env_file=None, **{"drain_seconds": _config(docs)["ML_API_DRAIN_SECONDS"]})
    budget = int(seconds) + drain.drain_seconds + GRACEFUL_TIMEOUT_SECONDS
    assert pod["terminationGracePeriodSeconds"] > budget
    rolling = _deployment(docs)["spec"]["strategy"]["rollingUpdate"]
    assert rolling["maxUnavailable"] == 0


@pytest.mark.parametrize("variant", APP_VARIANTS, ids=_ids(APP_VARIANTS))
def test_pod_hardening(variant: Variant) -> None:
    docs = rendered(variant.name)
    pod = _deployment(docs)["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    account = find(docs, "ServiceAccount", pod["serviceAccountName"])
    assert account["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001  # the image's user
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    for container in pod["containers"]:
        ctx = container["securityContext"]
        assert ctx["readOnlyRootFilesystem"] is True
        assert ctx["allowPrivilegeEscalation"] is False
        assert ctx["capabilities"]["drop"] == ["ALL"]
        assert container["resources"]["requests"].keys() == {"cpu", "memory"}
        assert container["resources"]["limits"].keys() == {"cpu", "memory"}
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert "emptyDir" in volumes[mounts["/tmp"]]  # the one writable path
        keys_dir = _config(docs)["ML_API_API_KEYS_FILE"].rsplit("/", 1)[0]
        assert volumes[mounts[keys_dir]]["secret"]["secretName"].startswith("ml-api-api-keys")
    spread = {c["topologyKey"] for c in pod["topologySpreadConstraints"]}
    assert "kubernetes.io/hostname" in spread


def test_minikube_overlay_runs_the_local_image_once() -> None:
    docs = rendered("minikube")
    hpa = find(docs, "HorizontalPodAutoscaler", "ml-api-hpa")
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (1, 3)
    container = _container(docs)
    assert container["imagePullPolicy"] == "Never"
    assert container["image"] == "ml_api:0.1.0"
    assert find(docs, "Service", "ml-api-service")["spec"]["type"] == "LoadBalancer"
    assert not [d for d in docs if d["kind"] == "Ingress"]


@pytest.mark.parametrize("variant", APP_VARIANTS, ids=_ids(APP_VARIANTS))
def test_the_hpa_owns_the_replica_count(variant: Variant) -> None:
    """A Deployment under an HPA has no replicas field, or every apply would reset the count."""
    docs = rendered(variant.name)
    deployment = _deployment(docs)
    target = find(docs, "HorizontalPodAutoscaler", "ml-api-hpa")["spec"]["scaleTargetRef"]
    assert (target["apiVersion"], target["kind"], target["name"]) == (
        deployment["apiVersion"],
        deployment["kind"],
        deployment["metadata"]["name"],
    )
    assert "replicas" not in deployment["spec"]


def test_production_overlay() -> None:
    docs = rendered("production")
    deployment = _deployment(docs)
    hpa = find(docs, "HorizontalPodAutoscaler", "ml-api-hpa")
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["apiVersion"], target["kind"], target["name"]) == (
        deployment["apiVersion"],
        deployment["kind"],
        deployment["metadata"]["name"],
    )
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 10)
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"
    assert metric["resource"]["target"]["averageUtilization"] == 50
    image = _container(docs)["image"]
    assert ":" in image.rsplit("/", 1)[-1] and not image.endswith(":latest")
    ingress = find(docs, "Ingress", "ml-api-ingress")
    assert ingress["spec"]["ingressClassName"] == "nginx"
    assert "cert-manager.io/cluster-issuer" in ingress["metadata"]["annotations"]
    (tls,) = ingress["spec"]["tls"]
    assert tls["hosts"] == ["ml-api.example.com"]
    (rule,) = ingress["spec"]["rules"]
    backend = rule["http"]["paths"][0]["backend"]["service"]
    service = find(docs, "Service", backend["name"])
    assert backend["port"]["number"] == service["spec"]["ports"][0]["port"]
    assert service["spec"]["type"] == "ClusterIP"
    monitor = find(docs, "ServiceMonitor")
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    assert monitor["spec"]["endpoints"][0]["port"] == service["spec"]["ports"][0]["name"]
    assert monitor["spec"]["endpoints"][0]["path"] == "/metrics"
    dashboard = find(docs, "ConfigMap", "ml-api-grafana-dashboard")
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert {d["metadata"]["namespace"] for d in docs if "namespace" in d["metadata"]} == {"ml-api"}


def test_spot_component_tolerates_without_requiring_spot_nodes() -> None:
    pod = _deployment(rendered("production+django+spot"))["spec"]["template"]["spec"]
    assert {t["key"] for t in pod["tolerations"]} >= {"cloud.google.com/gke-spot"}
    affinity = pod["affinity"]["nodeAffinity"]
    assert "requiredDuringSchedulingIgnoredDuringExecution" not in affinity
    assert affinity["preferredDuringSchedulingIgnoredDuringExecution"]


def test_deployer_role_is_scoped_to_this_app() -> None:
    docs = rendered("production")
    role = find(docs, "Role", "ml-api-deployer")
    binding = find(docs, "RoleBinding", "ml-api-deployer")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    writes = {"create", "update", "patch", "delete", "deletecollection", "escalate", "bind"}
    for rule in role["rules"]:
        assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"]
        assert "secrets" not in rule["resources"]
        if writes & set(rule["verbs"]):
            assert rule["resources"] == ["deployments"]
            assert rule["resourceNames"] == ["ml-api-deployment"]
            assert not {"create", "delete"} & set(rule["verbs"])


def test_logging_ships_to_the_elasticsearch_it_deploys() -> None:
    """Fluent Bit's output names the Service and Secrets that ECK derives from the ES name."""
    docs = rendered("logging")
    es = find(docs, "Elasticsearch")
    name, namespace = es["metadata"]["name"], es["metadata"]["namespace"]
    assert es["spec"]["version"] and es["spec"]["nodeSets"][0]["count"] >= 1
    config = find(docs, "ConfigMap")["data"]["fluent-bit.conf"]
    settings = {
        line.split(None, 1)[0]: line.split(None, 1)[1].strip()
        for line in config.splitlines()
        if line.startswith("    ") and not line.strip().startswith("#") and line.strip()
    }
    assert settings["Host"] == f"{name}-es-http.{namespace}.svc"
    assert settings["Merge_Log"] == "On"  # ml-api's JSON fields become record fields
    assert "_ml-api_ml-api-" in settings["Path"]  # namespace ml-api, container ml-api
    daemonset = find(docs, "DaemonSet", "fluent-bit")
    pod = daemonset["spec"]["template"]["spec"]
    secrets = {v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v}
    env = {e["valueFrom"]["secretKeyRef"]["name"] for e in pod["containers"][0]["env"]}
    assert secrets == {f"{name}-es-http-certs-public"}
    assert env == {f"{name}-es-elastic-user"}
    config_volume = next(v for v in pod["volumes"] if "configMap" in v)
    assert config_volume["configMap"]["name"] == find(docs, "ConfigMap")["metadata"]["name"]


@pytest.mark.parametrize("variant", APP_VARIANTS, ids=_ids(APP_VARIANTS))
def test_configured_variables_are_settings_the_app_reads(variant: Variant) -> None:
    """Settings ignores unknown ML_API_* names, so a misspelt one would be silently dropped."""
    docs = rendered(variant.name)
    names = set(_config(docs)) | {e["name"] for e in _container(docs).get("env", [])}
    fields = {f"ML_API_{name.upper()}" for name in Settings.model_fields}
    standard = {"PORT", "WEB_CONCURRENCY", "PROMETHEUS_MULTIPROC_DIR"}
    unknown = names - fields - standard
    django_only = {"ML_API_SECRET_KEY", "ML_API_ALLOWED_HOSTS"}
    if unknown and unknown <= django_only and "ML_API_SECRET_KEY" not in fields:
        pytest.skip(
            "this checkout's Settings has no Django fields yet (the Django adapter adds them)"
        )
    assert not unknown
    values = {k.removeprefix("ML_API_").lower(): v for k, v in _config(docs).items()}
    Settings(_env_file=None, **{k: v for k, v in values.items() if k not in ("port",)})
