"""The release deployer may change the image, and reach no Secret (bootstrap/deployer-policy.yaml).

RBAC cannot narrow ``patch`` to fields, so the bootstrap's ValidatingAdmissionPolicy does. No API
server runs here; its CEL expressions are evaluated with cel-python (the Common Expression
Language the API server runs) on the rendered production Deployment as ``oldObject`` and a patched
copy as ``object``, the way the API server evaluates them: match conditions first, then the
variables, then every validation; one false validation denies the request.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from .kit import K8S, Variant, documents, find, render

celpy = pytest.importorskip(
    "celpy", reason="cel-python is in the test extras (pip install -e '.[test]')"
)

DEPLOYER = "system:serviceaccount:ml-api:ml-api-deployer"


def policy() -> dict[str, Any]:
    return find(
        documents(render(Variant("bootstrap", K8S / "bootstrap"))), "ValidatingAdmissionPolicy"
    )


def deployment() -> dict[str, Any]:
    docs = documents(render(Variant("production", K8S / "overlays" / "production")))
    return find(docs, "Deployment", "ml-api-deployment")


def admits(new: dict[str, Any], old: dict[str, Any], user: str = DEPLOYER) -> bool:
    spec = policy()["spec"]
    env = celpy.Environment()

    def evaluate(expression: str, activation: dict[str, Any]) -> Any:
        return env.program(env.compile(expression)).evaluate(activation)

    activation: dict[str, Any] = {
        "object": celpy.json_to_cel(new),
        "oldObject": celpy.json_to_cel(old),
        "request": celpy.json_to_cel({"userInfo": {"username": user}, "operation": "UPDATE"}),
    }
    if not all(bool(evaluate(c["expression"], activation)) for c in spec["matchConditions"]):
        return True  # not the deployer: the policy does not apply
    variables = {}
    for variable in spec["variables"]:
        variables[variable["name"]] = evaluate(
            variable["expression"], activation | {"variables": celpy.json_to_cel({})}
        )
    activation["variables"] = celpy.celtypes.MapType(
        {celpy.celtypes.StringType(k): v for k, v in variables.items()}
    )
    return all(bool(evaluate(v["expression"], activation)) for v in spec["validations"])


def changed(edit: Callable[[dict[str, Any]], None]) -> tuple[dict[str, Any], dict[str, Any]]:
    old = deployment()
    new = copy.deepcopy(old)
    edit(new)
    return new, old


def pod(d: dict[str, Any]) -> dict[str, Any]:
    return d["spec"]["template"]["spec"]


def container(d: dict[str, Any]) -> dict[str, Any]:
    return pod(d)["containers"][0]


def test_the_policy_binds_to_the_namespace_and_denies() -> None:
    docs = documents(render(Variant("bootstrap", K8S / "bootstrap")))
    binding = find(docs, "ValidatingAdmissionPolicyBinding")
    assert binding["spec"]["policyName"] == policy()["metadata"]["name"]
    assert binding["spec"]["validationActions"] == ["Deny"]
    assert policy()["spec"]["failurePolicy"] == "Fail"
    account = find(docs, "ServiceAccount", "ml-api-deployer")
    namespace = account["metadata"]["namespace"]
    assert f"system:serviceaccount:{namespace}:{account['metadata']['name']}" == DEPLOYER
    token = find(docs, "Secret", "ml-api-deployer-token")
    assert token["type"] == "kubernetes.io/service-account-token"
    assert (
        token["metadata"]["annotations"]["kubernetes.io/service-account.name"] == "ml-api-deployer"
    )


def _release(d: dict[str, Any]) -> None:
    container(d)["image"] = "docker.io/alice/ml_api@sha256:" + "a" * 64
    container(d)["imagePullPolicy"] = "IfNotPresent"
    d["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/version"] = "v1.2.4"
    d["metadata"].setdefault("annotations", {})["kubectl.kubernetes.io/last-applied"] = "x"


def test_a_release_passes() -> None:
    assert admits(*changed(_release))


SECRET_ENV = {"name": "K", "valueFrom": {"secretKeyRef": {"name": "ml-api-api-keys", "key": "k"}}}
SECRET_VOLUME = {"name": "s", "secret": {"secretName": "ml-api-django"}}
WAYS_TO_A_SECRET: dict[str, Callable[[dict[str, Any]], None]] = {
    "env from a Secret": lambda d: container(d).setdefault("env", []).append(SECRET_ENV),
    "envFrom a Secret": lambda d: container(d).__setitem__(
        "envFrom", [{"secretRef": {"name": "ml-api-django"}}]
    ),
    "a Secret volume": lambda d: pod(d).setdefault("volumes", []).append(SECRET_VOLUME),
    "a mount": lambda d: (
        container(d).setdefault("volumeMounts", []).append({"name": "s", "mountPath": "/s"})
    ),
    "another command": lambda d: container(d).__setitem__("command", ["sh", "-c", "env"]),
    "other args": lambda d: container(d).__setitem__("args", ["--x"]),
    "another ServiceAccount": lambda d: pod(d).__setitem__("serviceAccountName", "default"),
    "a token mounted": lambda d: pod(d).__setitem__("automountServiceAccountToken", True),
    "a pod security context": lambda d: pod(d).__setitem__("securityContext", {"runAsUser": 0}),
    "a container security context": lambda d: container(d).__setitem__("securityContext", {}),
    "an init container": lambda d: pod(d).__setitem__(
        "initContainers", [{"name": "x", "image": "busybox", "env": [SECRET_ENV]}]
    ),
    "a second container": lambda d: pod(d)["containers"].append(
        {"name": "x", "image": "busybox", "env": [SECRET_ENV]}
    ),
    "the host's network": lambda d: pod(d).__setitem__("hostNetwork", True),
}


@pytest.mark.parametrize("way", WAYS_TO_A_SECRET, ids=list(WAYS_TO_A_SECRET))
def test_every_way_to_a_secret_is_refused_to_the_deployer(way: str) -> None:
    new, old = changed(lambda d: (_release(d), WAYS_TO_A_SECRET[way](d)))
    assert not admits(new, old)
    assert admits(new, old, user="system:admin")  # an administrator's apply is not its business
