"""Every command in README.md and docs/*.md is run here, or exempted with the test that covers it.

``tests/readme/commands.py`` extracts the commands and holds the table (:data:`RULES`). Here:

- the table itself: every command is covered, every rule matches something, every exemption
  points at a file that exists and shows the command's equivalent;
- the ``sandbox`` commands run literally, with bash, in document order, in a scratch directory
  that looks like a clone after ``make install`` (``.venv`` is this virtualenv, ``data/raw`` the
  repository's, ``ML_API_MODEL_ROOT`` a scratch model root, and small CSV files stand in for the
  reader's own ``houses.csv`` and friends);
- the ``curl`` commands run with curl against real servers (``ml-api serve``, Flask for port
  5000 and Django for 8000) on free loopback ports; a ``json`` block right after a ``curl`` is its
  documented answer and must match;
- the Python client block runs against the Flask server, and what it prints must be what its
  comments say;
- MLflow's examples (an optional extra) run in their own scratch directory after the README's
  ``fit_model.py``: skipped with the install line without mlflow, failed instead when ``CI`` is set.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import math
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import requests

from tests.cli.test_readme_train import own_csv
from tests.live.conftest import framework_env
from tests.live.server import LiveServer
from tests.readme.commands import ROOT, RULES, Unit, rule_for, units
from tests.tools import in_ci

UNITS = units()


def _with(runner: str) -> list[Unit]:
    return [u for u in UNITS if (r := rule_for(u)) is not None and r.runner == runner]


def _ids(selected: list[Unit]) -> list[str]:
    return [u.where for u in selected]


# ---- the table -------------------------------------------------------------------------------


def test_every_command_is_covered():
    uncovered = [f"{u.where}: {u.flat[:100]}" for u in UNITS if rule_for(u) is None]
    assert not uncovered, (
        "commands in the README or docs/ that no test runs: run them in tests/readme/"
        "test_commands.py or add an exemption with its covering test to tests/readme/commands.py "
        "RULES:\n" + "\n".join(uncovered)
    )


def test_an_unknown_command_is_not_covered():
    unit = Unit("README.md", 1, "shell", ".venv/bin/ml-api frobnicate --all")
    assert rule_for(unit) is None


def test_every_rule_is_used():
    unused = [r.pattern for r in RULES if not any(r.matches(u) for u in UNITS)]
    assert not unused, f"rules that match no command any more (remove them): {unused}"


@pytest.mark.parametrize("rule", [r for r in RULES if not r.runner], ids=lambda r: r.pattern[:40])
def test_each_exemption_names_a_covering_file_that_shows_it(rule):
    assert rule.reason and rule.covered_by and rule.evidence
    path = ROOT / rule.covered_by
    assert path.is_file(), f"{rule.covered_by} does not exist"
    assert rule.evidence in path.read_text(), f"{rule.covered_by} lacks {rule.evidence!r}"


def test_the_documents_have_commands_of_every_kind():
    assert len(UNITS) >= 60
    for runner in ("sandbox", "live", "python-live", "mlflow"):
        assert _with(runner), f"no command runs as {runner}"
    assert any(u.doc.startswith("docs/") for u in UNITS)


def test_the_readme_is_short_and_in_the_order_a_user_works():
    text = (ROOT / "README.md").read_text()
    assert text.count("\n") < 600
    headings = re.findall(r"^## (.+)$", text, flags=re.M)
    order = [
        "Quick start",
        "Ask for a prediction",
        "Your own data",
        "Your own model",
        "Calling the API from Python",
        "Batch scoring",
        "Production serving",
        "Container",
        "Kubernetes",
        "Monitoring",
        "Benchmark",
    ]
    positions = [next(i for i, h in enumerate(headings) if h.startswith(o)) for o in order]
    assert positions == sorted(positions), headings
    for doc in (ROOT / "README.md", *(ROOT / "docs").glob("*.md")):
        body = doc.read_text()
        # what a reader of the repository cannot open: the project's tracker, the course guide
        unreadable = re.findall(r"\bissue \d+|\bseed guide|\bthe seed's", body, flags=re.I)
        assert not unreadable, f"{doc.name} refers to {unreadable}: say what is meant instead"
        for link in re.findall(r"\]\((docs/[^)#]+|\.\./[^)#]+|[a-z]+\.md)[)#]", body):
            assert (doc.parent / link).resolve().exists(), f"{doc.name} links to {link}"


# ---- sandbox: the offline commands, literally, in document order --------------------------------


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory) -> Path:
    """A scratch directory that looks like a clone after ``make install``, plus the user's CSVs."""
    home = _clone(tmp_path_factory.mktemp("clone"))
    for unit in _with("sandbox"):
        argv = shlex.split(unit.flat, comments=True)
        if "--data" in argv and "--target" in argv:
            data = home / argv[argv.index("--data") + 1]
            if not data.exists():
                own_csv(data, argv[argv.index("--target") + 1])
    return home


def _clone(home: Path) -> Path:
    """``home`` made to look like a clone after ``make install`` (``.venv``, ``data/raw``)."""
    (home / ".venv").symlink_to(sys.prefix, target_is_directory=True)
    (home / "data").mkdir()
    (home / "data" / "raw").symlink_to(ROOT / "data" / "raw", target_is_directory=True)
    return home


def _sandbox_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ML_API_")}
    # MLflow would otherwise report each call to its telemetry server
    env.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    return {**env, "ML_API_MODEL_ROOT": str(home / "models"), "PYTHONUNBUFFERED": "1"}


def _run_in(home: Path, unit: Unit) -> str | None:
    """Run one unit literally in ``home``; its stdout (``None`` for a named python file)."""
    if unit.lang == "python":
        first = unit.text.splitlines()[0]
        named = re.fullmatch(r"# (\w+\.py)", first)
        script = home / (named.group(1) if named else f"block-{unit.line}.py")
        script.write_text(unit.text)
        if named:  # a later command runs it by name
            return None
        command = f".venv/bin/python {script.name}"
    else:
        command = unit.text
    result = subprocess.run(
        ["bash", "-e", "-c", command],
        cwd=home,
        env=_sandbox_env(home),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, f"{unit.where} failed:\n{command}\n{result.stderr[-3000:]}"
    for output in re.findall(r"--output (\S+)", unit.flat):
        assert (home / output).stat().st_size > 0, f"{unit.where} wrote no {output}"
    return result.stdout


def test_the_offline_commands_run_as_written_in_document_order(sandbox):
    ran = []
    for unit in _with("sandbox"):
        out = _run_in(sandbox, unit)
        if out is not None:
            ran.append((unit, out))
    assert ran
    outputs = {u.flat.split(" #")[0]: out for u, out in ran}
    # what the README says these commands do
    scored = pd.read_csv(sandbox / "scored.csv")
    assert {"prediction", "probability_Adelie"} <= set(scored.columns)
    models = sandbox / "models"
    assert {"penguins", "houses", "churn", "my-penguins", "reviews", "custom"} <= {
        p.name for p in models.iterdir()
    }
    # the text model: a text feature, fed as a column, each review answered once
    card = json.loads((models / "reviews" / "1" / "metadata.json").read_text())
    assert [f["kind"] for f in card["features"]] == ["text"] and card["input"] == "column"
    reviews = pd.read_csv(sandbox / "reviews-scored.csv")
    assert reviews["prediction"].tolist() == [1] * 4 + [0] * 4
    # the model with its own code: the file is inside the version
    assert (models / "custom" / "1" / "code" / "mytransforms.py").is_file()
    assert (sandbox / "my-models" / "houses").is_dir()
    versions = next(v for k, v in outputs.items() if k.startswith(".venv/bin/ml-api versions"))
    assert re.search(r"^1\s+\S+\s+\w+.*\bserves$", versions, flags=re.M), versions
    promoted = next(v for k, v in outputs.items() if k.startswith(".venv/bin/ml-api promote"))
    assert "production -> version 1" in promoted, promoted
    aliases = models / "houses" / "aliases.json"  # promote --unset ran last: newest serves
    assert not aliases.exists() or "production" not in json.loads(aliases.read_text())


# ---- MLflow (an optional extra): its examples, after the README's fit_model.py -----------------


def test_the_mlflow_examples_run_as_written(tmp_path):
    """docs/models.md's MLflow blocks, verbatim: save_model, log_model to a file store, import."""
    if importlib.util.find_spec("mlflow") is None:
        message = (
            "mlflow is not installed: .venv/bin/python -m pip install -c constraints.txt -e "
            "'.[mlflow]' (the MLflow examples of docs/models.md)"
        )
        if in_ci():
            pytest.fail(f"CI is set, so this must run: {message}")
        pytest.skip(message)
    home = _clone(tmp_path)
    fit = [u for u in _with("sandbox") if re.search(r"^# fit_model\.py |fit_model\.py$", u.flat)]
    assert [u.lang for u in fit] == ["python", "shell"], fit
    examples = _with("mlflow")
    assert any("log_model" in u.text for u in examples), "the log_model example is not run"
    for unit in [*fit, *examples]:
        _run_in(home, unit)
    models = home / "models"
    for name, versions in (("mlflow-penguins", {"1", "2"}), ("mlflow-logged", {"1"})):
        found = {p.name for p in (models / name).iterdir() if p.name.isdigit()}
        assert found == versions, (name, found)
        card = json.loads((models / name / max(found) / "metadata.json").read_text())
        assert card["source"]["format"] == "mlflow" and card["import_data"]["rows"] == 344
    assert (home / "mlruns").is_dir()  # logged to the file store the example names


# ---- curl against live servers --------------------------------------------------------------


@pytest.fixture(scope="module")
def live(model_root) -> Iterator[dict[str, LiveServer]]:
    """``ml-api serve`` for the README's two ports: Flask stands for 5000, Django for 8000."""
    servers = {
        "5000": LiveServer(model_root, "flask", workers=1),
        "8000": LiveServer(model_root, "django", workers=1, env=framework_env("django")),
    }
    try:
        for server in servers.values():
            server.wait_ready()
        yield servers
    finally:
        codes = {port: s.terminate() for port, s in servers.items()}
    assert codes == {"5000": 0, "8000": 0}


def _on(live: dict[str, LiveServer], text: str) -> str:
    for port, server in live.items():
        text = text.replace(f"http://127.0.0.1:{port}", server.url)
    return text


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl: apt-get install curl")
@pytest.mark.parametrize("unit", _with("live"), ids=_ids(_with("live")))
def test_each_curl_answers_as_documented(unit, live, tmp_path):
    argv = shlex.split(_on(live, unit.text.replace("\\\n", " ")), comments=True)
    body = tmp_path / "body.json"
    result = subprocess.run(
        [*argv, "--silent", "--show-error", "--output", str(body), "--write-out", "%{http_code}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    status, answer = int(result.stdout), json.loads(body.read_text())
    documented = json.loads(unit.next_json) if unit.next_json else None
    if documented is not None and "error" in documented:
        assert status == 422, answer
        fields = [(d["instance"], d["field"]) for d in answer["details"]]
        assert fields == [(d["instance"], d["field"]) for d in documented["details"]]
        assert answer["error"] == documented["error"]
        return
    assert status == 200, answer
    if documented is not None and "prediction" in documented:
        assert answer["prediction"] == documented["prediction"]
        assert answer["model"] == documented["model"]
    elif documented is not None and "outputs" in documented:
        assert answer["outputs"][0]["data"] == documented["outputs"][0]["data"]
        assert answer["id"] == documented["id"]
    elif "/v2/" not in unit.flat:
        assert isinstance(answer["prediction"], list) and answer["prediction"]


# ---- the Python client -----------------------------------------------------------------------


def _printed(block: str) -> list[object]:
    """What the block says its ``print`` calls print: ``print(...)  # <literal>`` comments."""
    said = []
    for comment in re.findall(r"^print\(.*\)\s+#\s*(.+)$", block, flags=re.M):
        try:
            said.append(ast.literal_eval(comment))
        except (ValueError, SyntaxError):
            break  # a prose comment ends the checkable part
    return said


@pytest.mark.parametrize("unit", _with("python-live"), ids=_ids(_with("python-live")))
def test_the_python_client_prints_what_it_says(unit, live, tmp_path):
    script = tmp_path / "client.py"
    script.write_text(_on(live, unit.text))
    result = subprocess.run(
        [sys.executable, str(script)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    printed = [ast.literal_eval(line) for line in result.stdout.splitlines()]
    expected = _printed(unit.text)
    assert expected, "the block documents none of its output"
    assert printed[: len(expected)] == expected


def test_why_the_client_converts_nan(live):
    """The README's reasons: requests refuses NaN, and a body with the NaN token gets 400."""
    url = live["5000"].url + "/predict"
    df = pd.read_csv(ROOT / "data/raw/penguins.csv").drop(columns=["species", "year"]).head(5)
    records = df.to_dict(orient="records")
    assert any(isinstance(v, float) and math.isnan(v) for r in records for v in r.values())
    with pytest.raises(requests.exceptions.InvalidJSONError):
        requests.post(url, json={"instances": records}, timeout=10)
    raw = json.dumps({"instances": records})
    assert "NaN" in raw
    reply = requests.post(url, data=raw, headers={"Content-Type": "application/json"}, timeout=10)
    assert reply.status_code == 400, reply.text
    converted = df.replace({np.nan: None}).to_dict(orient="records")
    assert [v for r in converted for v in r.values() if v is None]  # null, not NaN
    # docs/api.md: to_json rounds floats (10 significant digits), the records keep them exact
    exact = pd.DataFrame({"bmi": [0.061696206518688]})
    assert exact.to_dict(orient="records") == [{"bmi": 0.061696206518688}]
    assert json.loads(exact.to_json(orient="records")) != [{"bmi": 0.061696206518688}]
