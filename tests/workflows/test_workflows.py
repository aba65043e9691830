"""The GitHub Actions workflows: valid against GitHub's workflow schema (check-jsonschema's
vendored copy), no zizmor findings (offline audits), and the pipeline's promises: actions pinned
to commit SHAs, least-privilege permissions, push only on tags, deploy behind an environment."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
BIN = Path(sys.executable).parent
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")


def load(path: Path) -> dict:
    return YAML(typ="safe").load(path.read_text())


def run(*cmd: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(c) for c in cmd], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )


def steps(workflow: dict):
    for name, job in workflow["jobs"].items():
        for step in job.get("steps", []):
            yield name, step


def test_there_are_ci_and_release_workflows():
    assert [p.name for p in WORKFLOWS] == ["ci.yml", "release.yml"]


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_matches_githubs_schema(path):
    proc = run(BIN / "check-jsonschema", "--builtin-schema", "vendor.github-workflows", path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_schema_check_rejects_a_broken_workflow(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("on: push\njobs:\n  x:\n    steps:\n      - run: true\n")  # no runs-on
    proc = run(BIN / "check-jsonschema", "--builtin-schema", "vendor.github-workflows", bad)
    assert proc.returncode != 0


@pytest.mark.parametrize("persona", ["regular", "auditor"])
def test_zizmor_reports_nothing(persona):
    proc = run(
        BIN / "zizmor", "--offline", "--persona", persona, "--format", "json", ".github/workflows"
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert json.loads(proc.stdout) == []


def test_zizmor_does_flag_a_careless_workflow(tmp_path):
    bad = tmp_path / "careless.yml"
    bad.write_text(
        "on: pull_request_target\n"
        "jobs:\n  x:\n    runs-on: ubuntu-latest\n    steps:\n"
        "      - uses: actions/checkout@v4\n"
        "      - run: echo ${{ github.event.pull_request.title }}\n"
    )
    proc = run(BIN / "zizmor", "--offline", "--format", "json", bad)
    found = {finding["ident"] for finding in json.loads(proc.stdout)}
    assert {"unpinned-uses", "template-injection", "artipacked"} <= found, found


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_actions_are_pinned_to_commit_shas_with_the_tag_in_a_comment(path):
    lines = path.read_text().splitlines()
    uses = [line.strip() for line in lines if line.strip().startswith(("uses:", "- uses:"))]
    assert uses
    for line in uses:
        ref, _, comment = line.split("uses:", 1)[1].partition("#")
        ref = ref.strip()
        if ref.startswith("$/"):  # a workflow of this repository
            continue
        assert PINNED.match(ref), line
        assert re.fullmatch(r"v\d+\.\d+\.\d+", comment.strip()), line


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_permissions_are_least_privilege(path):
    workflow = load(path)
    assert workflow["permissions"] == {}  # nothing by default
    # Read-only everywhere, but for the release's pin job, which pushes one branch and opens its
    # pull request (and holds no secret and no cluster credential).
    writers = {("release.yml", "pin"): {"contents": "write", "pull-requests": "write"}}
    for name, job in workflow["jobs"].items():
        wanted = writers.get((path.name, name), {"contents": "read"})
        assert job["permissions"] == wanted, name
        if wanted != {"contents": "read"}:
            assert "secrets." not in str(job) and "environment" not in job, name


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_checkouts_do_not_keep_the_token(path):
    for job, step in steps(load(path)):
        if step.get("uses", "").startswith("actions/checkout@"):
            assert step["with"]["persist-credentials"] is False, job


def test_ci_lints_tests_builds_and_scans():
    ci = load(ROOT / ".github" / "workflows" / "ci.yml")
    assert set(ci["jobs"]) == {"lint", "test", "image", "manifests"}
    runs = {job: " ".join(s.get("run", "") for _, s in steps({"jobs": {job: j}})) for job, j in
            ci["jobs"].items()}  # fmt: skip
    assert "make lint" in runs["lint"] and "hadolint" in runs["lint"]
    assert "make test" in runs["test"] and "docker-registry" in runs["test"]
    assert "make image" in runs["image"]
    assert ci["jobs"]["manifests"]["env"]["OVERLAY"] == "deploy/k8s/overlays/production"
    for tool in ("kubectl kustomize", "kubernetes-validate", "checkov"):
        assert tool in runs["manifests"], tool


def test_release_pushes_on_tags_and_deploys_behind_an_approval():
    release = load(ROOT / ".github" / "workflows" / "release.yml")
    assert release["on"] == {"push": {"tags": ["v*"]}}
    jobs = release["jobs"]
    assert jobs["ci"]["uses"] == "$/.github/workflows/ci.yml"
    assert jobs["push"]["needs"] == "ci" and jobs["pin"]["needs"] == "push"
    assert jobs["deploy"]["needs"] == ["push", "pin"]
    assert jobs["deploy"]["environment"]["name"] == "production"
    push_runs = " ".join(s.get("run", "") for s in jobs["push"]["steps"])
    assert "make push" in push_runs
    login = next(s for s in jobs["push"]["steps"] if s.get("uses", "").startswith("docker/login"))
    assert login["with"]["password"] == "${{ secrets.REGISTRY_PASSWORD }}"
    # The pin goes into git first (a pull request of deploy/k8s/release): the pin job may write
    # contents and open a pull request, nothing else, and holds no cluster credential.
    pin_runs = " ".join(s.get("run", "") for s in jobs["pin"]["steps"])
    assert jobs["pin"]["permissions"] == {"contents": "write", "pull-requests": "write"}
    assert 'deploy/k8s/release/pin-image.sh "$image" "$VERSION" "$DIGEST"' in pin_runs
    assert "gh pr create --base main" in pin_runs and "KUBECONFIG" not in str(jobs["pin"])
    deploy_runs = " ".join(s.get("run", "") for s in jobs["deploy"]["steps"])
    # Only what the narrow deployer Role allows: patch the one Deployment, watch its rollout,
    # with the pin that main carries (checked out from main; tests/deploy runs the gate step).
    checkout = next(s for s in jobs["deploy"]["steps"] if s.get("uses", "").startswith("actions/"))
    assert checkout["with"]["ref"] == "main"
    assert "kubectl apply" not in deploy_runs and "kubectl delete" not in deploy_runs
    assert "kubectl -n ml-api patch deployment ml-api-deployment" in deploy_runs
    assert "--patch-file deploy/k8s/release/pin-image.yaml" in deploy_runs
    assert "rollout status deployment/ml-api-deployment" in deploy_runs


def test_make_targets_the_workflows_call_exist():
    targets = set(re.findall(r"^([a-z-]+):", (ROOT / "Makefile").read_text(), re.MULTILINE))
    called = set()
    for path in WORKFLOWS:
        called |= set(re.findall(r"\bmake ([a-z-]+)", path.read_text()))
    assert called and called <= targets, called - targets
