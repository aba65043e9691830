"""The benchmark's plumbing, end to end on ml-api only: real wrk, real gunicorn, real files.

A benchmark is not a test: nothing here looks at a time. It checks that a short run answers every
request, reports what it measured in the documented structure, and stops what it started. It
needs ``wrk`` (installed by ``.ci/run``) and never MLServer.
"""

import json

import psutil
import pytest

from tests.bench.run import run_bench
from tests.tools import require_tool

pytestmark = pytest.mark.live


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    require_tool("wrk")
    tmp = tmp_path_factory.mktemp("bench")
    proc = run_bench(
        "--smoke",
        *("--targets", "ml-api-flask,ml-api-flask-v2", "--models", "lr"),
        *("--concurrency", "1", "--duration", "2", "--warmup", "1", "--rounds", "2"),
        *("--with-slow-clients", "--slow-clients", "10", "--slow-seconds", "2"),
        *("--workdir", str(tmp / "work"), "--results-dir", str(tmp / "results")),
    )
    (js,) = (tmp / "results").glob("*-smoke.json")
    (md,) = (tmp / "results").glob("*-smoke.md")
    return proc, json.loads(js.read_text()), md.read_text()


def test_result_document_has_every_section(smoke):
    _, results, _ = smoke
    assert set(results) == {
        "meta", "targets", "in_process", "cells", "summary", "servers", "soak", "slow_clients",
        "goals", "notes",
    }  # fmt: skip
    meta = results["meta"]
    assert meta["mode"] == "smoke"
    assert meta["config"]["targets"] == ["ml-api-flask", "ml-api-flask-v2"]
    assert meta["config"]["concurrency"] == [1] and meta["config"]["rounds"] == 2
    assert meta["wrk"].startswith("wrk")
    assert "noisy" in meta["noise_note"]


def test_the_slow_client_run_answers_every_normal_request(smoke):
    _, results, markdown = smoke
    (record,) = results["slow_clients"]  # ml-api-flask: the only selected row of SOAK_TARGETS
    assert record["target"] == "ml-api-flask"
    for key in ("alone", "with_slow"):
        run = record[key]
        assert run["requests"] > 0 and run["error_count"] == 0, run
        assert run["probes"]["probes"] > 0 and run["probes"]["failed"] == 0, run["probes"]
    assert record["with_slow"]["slow"]["opened"] == 10
    assert "## Slow clients" in markdown
    (goal,) = [g for g in results["goals"] if g["goal"].startswith("10 slow connections")]
    assert goal["status"] in ("met", "missed")


def test_every_request_answered_without_errors(smoke):
    _, results, _ = smoke
    cells = [c for c in results["cells"] if c["target"] == "ml-api-flask"]
    assert [c["round"] for c in cells] == [1, 2]
    for cell in cells:
        assert "failed" not in cell
        assert cell["requests"] > 0 and cell["rps"] > 0
        assert cell["error_count"] == 0, cell["errors"]
        assert set(cell["errors"]) >= {"connect", "read", "write", "timeout", "non2xx"}
        lat = cell["latency_ms"]
        assert 0 < lat["p50"] <= lat["p99"] <= lat["max"]
        assert cell["cpu_ms_per_request"] > 0
    (row,) = [r for r in results["summary"] if r["target"] == "ml-api-flask"]
    assert (row["model"], row["concurrency"], row["rounds"]) == ("lr", 1, 2)
    assert row["errors"] == 0
    assert row["requests"] == sum(c["requests"] for c in cells)


def test_target_status_and_v2_not_available_until_it_exists(smoke):
    _, results, _ = smoke
    status = {t["target"]: t for t in results["targets"]}
    assert status["ml-api-flask"]["available"] is True
    v2 = status["ml-api-flask-v2"]
    # ml-api has no /v2 yet: the row must say so; once it exists, it must answer 200.
    assert v2["available"] or "404" in v2["reason"]


def test_in_process_limit_and_memory_reported(smoke):
    _, results, _ = smoke
    timed = {(r["callable"], r["rows"]) for r in results["in_process"]}
    assert {
        ("numpy pipeline", 1),
        ("ml-api pipeline", 64),
        ("onnxruntime session", 64),
        ("ml-api service, scikit-learn", 1),
        ("ml-api service, onnxruntime", 1),
        ("64 threads, batching on, onnxruntime", 1),
        ("64 threads, batching off, scikit-learn", 1),
    } <= timed
    assert all(r["ms_per_call"] > 0 for r in results["in_process"])
    (server,) = results["servers"]
    assert server["targets"] == ["ml-api-flask", "ml-api-flask-v2"]
    assert server["processes"] >= 2  # gunicorn master + its workers
    assert 0 < server["rss_mib"]["start"] <= server["rss_mib"]["end"] * 2
    assert server["exit_status"] == 0  # stopped with SIGTERM, exited cleanly
    assert not psutil.pid_exists(server["pid"])


def test_markdown_printed_and_written(smoke):
    proc, _, md = smoke
    assert "| lr | ml-api-flask | 1 |" in md
    assert "## In-process limit" in md and "## Memory" in md
    assert "## Targets, from this run" in md and "`ml-api-flask`" in md
    assert md.strip() in proc.stdout
    assert "estimated duration: ~" in proc.stderr


def test_ml_api_rows_say_front_and_runtime(smoke):
    _, results, _ = smoke
    assert results["meta"]["ml_api_row"] == "ml-api-flask"
    status = {t["target"]: t for t in results["targets"]}
    for name in ("ml-api-flask", "ml-api-flask-v2"):
        assert status[name]["front"] in ("gunicorn", "granian")
        assert status[name]["runtime"] in ("onnx", "sklearn")


def test_targets_not_measured_say_why(smoke):
    _, results, _ = smoke
    # c=1 only, lr only, no MLServer, no soak: every target line is there, none can be judged
    # (but the slow-client lines, which this run measured: see the test above)
    judged = [g for g in results["goals"] if "slow connections" not in g["goal"]]
    assert len(judged) >= 9
    for goal in judged:
        assert goal["status"] == "not measured" and goal["met"] is None, goal
        assert goal["note"], goal
    soak = judged[-1]
    assert "--with-soak" in soak["note"]
