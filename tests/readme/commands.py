"""Every command the README and ``docs/*.md`` show, and how each is covered by a test.

A *unit* is one shell command of a fenced ``bash`` (or ``sh``/``shell``/``console``) block, or one
whole fenced ``python`` block. Shell commands are split as the shell reads them: a trailing
backslash or an open quote continues a command on the next line, and a ``for ...; do`` loop runs
to its ``done``; comment-only lines are not commands.

:data:`RULES` maps each unit to its coverage, first match wins. A rule either *runs* the unit in
``tests/readme/test_commands.py`` (``runner`` names how), or *exempts* it with the reason it cannot
run here and the test (or CI step) that covers it: ``covered_by`` must exist and contain
``evidence``, so an exemption cannot point at nothing. A unit no rule matches fails
``test_every_command_is_covered``: a command added to the README without a test fails the suite.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHELL_LANGS = {"bash", "sh", "shell", "console"}
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.DOTALL | re.MULTILINE)


def documents() -> list[Path]:
    """README.md, then every ``docs/*.md`` in name order."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


@dataclass(frozen=True)
class Unit:
    """One command (shell) or one block (python) of a document.

    Attributes:
        doc: The document's path relative to the repository root, e.g. ``README.md``.
        line: 1-based line of the unit's first line in the document.
        lang: ``shell`` or ``python``.
        text: The command as written (continuation lines included) or the python block.
        next_json: The ``json`` block right after the unit's block, if the unit is the block's
            last ``curl`` (the documented answer), else ``None``.
    """

    doc: str
    line: int
    lang: str
    text: str
    next_json: str | None = None

    @property
    def where(self) -> str:
        return f"{self.doc}:{self.line}"

    @property
    def bare(self) -> str:
        """:attr:`flat` without a trailing comment (``  # ...``), what the rules match."""
        return re.sub(r"\s+#[^'\"]*$", "", self.flat)

    @property
    def flat(self) -> str:
        """The text on one line: continuations joined, runs of blanks collapsed."""
        return " ".join(self.text.replace("\\\n", " ").split())


def _is_complete(text: str) -> bool:
    if text.rstrip().endswith("\\"):
        return False
    try:
        shlex.split(text, comments=True)
    except ValueError:  # an open quote: the command goes on
        return False
    return True


def split_shell(code: str) -> list[tuple[int, str]]:
    """Split a shell block into commands: ``(0-based line offset, command text)`` pairs."""
    commands: list[tuple[int, str]] = []
    lines = code.splitlines()
    i = 0
    while i < len(lines):
        start, text = i, lines[i]
        if re.match(r"\s*for\s", text):  # a loop runs to its `done`
            while not re.match(r"\s*done\b", lines[i]) and i + 1 < len(lines):
                i += 1
                text += "\n" + lines[i]
        while not _is_complete(text) and i + 1 < len(lines):
            i += 1
            text += "\n" + lines[i]
        i += 1
        if shlex.split(text, comments=True) if _is_complete(text) else True:
            commands.append((start, text))
    return commands


def units() -> list[Unit]:
    """Every shell command and python block of the documents, in document order."""
    found: list[Unit] = []
    for path in documents():
        content = path.read_text()
        doc = str(path.relative_to(ROOT))
        blocks = list(FENCE.finditer(content))
        for k, match in enumerate(blocks):
            lang, code = match.group(1), match.group(2)
            first_line = content.count("\n", 0, match.start()) + 2
            after = blocks[k + 1] if k + 1 < len(blocks) else None
            following = (
                after.group(2)
                if after is not None
                and after.group(1) == "json"
                and content[match.end() : after.start()].strip() == ""
                else None
            )
            if lang == "python":
                found.append(Unit(doc, first_line, "python", code))
            elif lang in SHELL_LANGS:
                commands = split_shell(code)
                curls = [c for c in commands if c[1].lstrip().startswith("curl")]
                for offset, text in commands:
                    documented = following if curls and (offset, text) == curls[-1] else None
                    found.append(Unit(doc, first_line + offset, "shell", text, documented))
    return found


@dataclass(frozen=True)
class Rule:
    """How the units whose flat text matches ``pattern`` are covered.

    Attributes:
        pattern: A regular expression searched in :attr:`Unit.bare` (anchor it with ``^``).
        runner: For a unit this module runs: ``sandbox`` (run literally by bash in a scratch
            directory, in document order), ``live`` (a ``curl``, run by curl against a live
            server), ``python-live`` (the python block, run against a live server), ``mlflow``
            (MLflow's examples, in document order after the README's ``fit_model.py``, in a
            scratch directory of their own; skipped without mlflow, except in CI). A python
            block run in the sandbox whose first line is ``# <name>.py`` is written to that file
            for a later command to run; any other is run as it is. Empty for an exemption.
        reason: For an exemption: why it is not run here.
        covered_by: For an exemption: the repository path of what covers it.
        evidence: Text ``covered_by`` must contain (the command or its equivalent).
    """

    pattern: str
    runner: str = ""
    reason: str = ""
    covered_by: str = ""
    evidence: str = ""

    def matches(self, unit: Unit) -> bool:
        return re.search(self.pattern, unit.bare) is not None


ML_API = r"^\.venv/bin/ml-api "
RULES: tuple[Rule, ...] = (
    # ---- exempt, before the sandbox rule: an engine (a JVM, a cluster) ---------------------
    Rule(
        ML_API + r"predict --engine (spark|dask)\b|^spark-submit .*import ml_api\.cli\.__main__",
        reason="starts Spark (a JVM) or Dask and reads a data lake's paths; tests/engines scores "
        "the same 100,000-row file with --engine spark and dask, output and --refused checked",
        covered_by="tests/engines/test_engines.py",
        evidence='"--engine", engine',
    ),
    # ---- run by tests/readme/test_commands.py --------------------------------------------------
    Rule(
        ML_API + r"(train|versions|promote|card|info|predict|drift|requirements)\b",
        runner="sandbox",
    ),
    Rule(
        ML_API + r"import (model\.joblib|reviews\.joblib|custom\.joblib)\b",
        runner="sandbox",
    ),
    Rule(r"^\.venv/bin/python fit_(model|reviews|custom)\.py$", runner="sandbox"),
    Rule(
        r"^curl (-X POST -H \"Content-Type: application/json\" )?(-d '[^']*' )?"
        r"http://127\.0\.0\.1:(5000|8000)/\S*$",
        runner="live",
    ),
    Rule(
        r"^curl -X POST -H \"Content-Type: application/json\" "
        r"http://127\.0\.0\.1:5000/v2/\S+ -d '",
        runner="live",
    ),
    Rule(r"^# fit_(model|reviews|custom)\.py import joblib\b", runner="sandbox"),
    Rule(r"^# mytransforms\.py import numpy\b", runner="sandbox"),
    # MLflow is an optional extra: its examples run in their own test (skipped without mlflow)
    Rule(r"^# model\.joblib: .* mlflow\.sklearn\.save_model\(", runner="mlflow"),
    Rule(r"^# log_mlflow\.py import joblib, mlflow\b", runner="mlflow"),
    Rule(
        r"^MLFLOW_TRACKING_URI=file:\./mlruns MLFLOW_ALLOW_FILE_STORE=true "
        r"\.venv/bin/python log_mlflow\.py$",
        runner="mlflow",
    ),
    Rule(ML_API + r"import (penguins-mlflow|penguins-logged)\b", runner="mlflow"),
    Rule(r"requests\.post\(URL, json=", runner="python-live"),
    # ---- exempt: long-running servers, the live suite runs the same command -------------------
    Rule(
        r"^make run(-django)?\b",
        reason="serves until stopped; the live suite starts the same "
        "`ml-api serve` on a free port, and test_first_run checks `train --if-missing`",
        covered_by="tests/cli/test_first_run.py",
        evidence="--if-missing",
    ),
    Rule(
        ML_API + r"serve\b|^(ML_API_\w+=\S+ )+\.venv/bin/ml-api serve\b",
        reason="serves until stopped; tests/live runs `ml-api serve` on a free loopback port",
        covered_by="tests/live/server.py",
        evidence='"serve",',
    ),
    Rule(
        r"^ML_API_DEBUG=true \.venv/bin/python src/ml_api/api/django_app/manage\.py runserver",
        reason="Django's development server runs until stopped; the Django app's settings "
        "and `manage.py check --deploy` are tested",
        covered_by="tests/django_app/test_settings.py",
        evidence="manage.py",
    ),
    Rule(
        r"^make test\b",
        reason="the test suite itself; .ci/run runs it",
        covered_by=".ci/run",
        evidence="make test",
    ),
    Rule(
        r"^make (lint|test-container)\b",
        reason="lint and the container tests; .ci/run runs them",
        covered_by=".ci/run",
        evidence="make lint",
    ),
    Rule(
        r"^\.venv/bin/python -m pip install -c constraints\.txt -e '\.\[mlflow\]'$",
        reason="installs into the virtualenv; the test extras already hold the same package",
        covered_by="pyproject.toml",
        evidence="mlflow-skinny",
    ),
    Rule(
        r"^\.venv/bin/python -m pip install requests$",
        reason="installs into the virtualenv; requests is in the test extras, and the python "
        "example it is for is run against a live server by test_commands (python-live)",
        covered_by="pyproject.toml",
        evidence='"requests>=',
    ),
    # ---- exempt: Docker (the container tests, opt-in: make test-container) ---------------------
    Rule(
        r"^make image\b|^docker (build|run)\b",
        reason="needs a Docker Engine; the container tests build and run the image this way",
        covered_by="tests/container/conftest.py",
        evidence='"image", f"IMAGE=',
    ),
    Rule(
        r"^docker login$|^make push\b",
        reason="pushes to a registry; the container tests push to a loopback registry",
        covered_by="tests/container/test_registry.py",
        evidence="push",
    ),
    Rule(
        r"^export ML_API_SECRET_KEY=|^docker compose up\b",
        reason="needs a bridge network and Docker Hub; the compose file is validated",
        covered_by="tests/container/test_static.py",
        evidence="compose",
    ),
    # ---- exempt: a Kubernetes cluster (none here); the kit is rendered and checked instead -----
    Rule(
        r"^kubectl (apply|delete) -k deploy/",
        reason="needs a cluster; every overlay and component is rendered with kubectl kustomize "
        "and validated",
        covered_by="tests/deploy/kit.py",
        evidence="kustomize",
    ),
    Rule(
        r"^TOKEN=\$\(kubectl |^KUBECONFIG=deployer\.kubeconfig kubectl |^base64 -w0 deployer",
        reason="builds the deployer's kubeconfig from a cluster's token Secret; the bootstrap's "
        "token Secret and the policy that limits it are rendered and evaluated",
        covered_by="tests/deploy/test_deployer_policy.py",
        evidence="ml-api-deployer-token",
    ),
    Rule(
        r"^deploy/k8s/release/pin-image\.sh ",
        reason="the release pin is run with a fake digest on a copy of deploy/ and the production "
        "overlay rendered",
        covered_by="tests/deploy/test_release.py",
        evidence="pin-image.sh",
    ),
    Rule(
        r"^(minikube|helm|kubectl|URL=\$\(minikube|PASSWORD=\$\(kubectl)\b|^for c in "
        r"|^curl .*\$URL/predict|^curl -sk -u \"elastic:",
        reason="needs a running cluster (minikube, a production cluster, Elasticsearch); the "
        "manifests these commands act on are rendered and checked",
        covered_by="tests/deploy/kit.py",
        evidence="kubectl kustomize",
    ),
    # ---- exempt: the benchmark (not a test; minutes of load) ---------------------------------
    Rule(
        r"^make bench-smoke$",
        reason="needs wrk; the benchmark smoke test runs the same plumbing",
        covered_by="tests/bench/test_bench_smoke.py",
        evidence="bench",
    ),
    Rule(
        r"^make bench(-soak)?\b|^\.venv/bin/python -m bench\b",
        reason="a benchmark, minutes of load, never a test; the in-process part is tested",
        covered_by="tests/bench/test_in_process.py",
        evidence="bench",
    ),
)


def rule_for(unit: Unit) -> Rule | None:
    """The first rule matching ``unit``, or ``None``."""
    return next((r for r in RULES if r.matches(unit)), None)
