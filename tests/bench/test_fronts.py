"""The HTTP-front rows: ceiling servers really run the front they name, and a row whose front
``ml-api serve`` cannot run is reported unavailable with the reason instead of crashing the run.

Real processes throughout: ``ml_api.settings`` asked in a subprocess, the bare Flask app under
real gunicorn and granian on loopback. Nothing here looks at a time.
"""

import json
import sys

import pytest

from bench import models, procs, servers, targets
from tests.bench.run import run_bench
from tests.tools import require_tool


def test_setting_support_tells_ignored_accepted_and_rejected():
    python = sys.executable
    assert targets.setting_support(python, "ML_API_NO_SUCH_SETTING", "x") == ("ignored", "")
    assert targets.setting_support(python, "ML_API_RUNTIME", "sklearn") == ("accepted", "")
    status, reason = targets.setting_support(python, "ML_API_RUNTIME", "tensorflow")
    assert status == "rejected" and "runtime" in reason.lower()


def test_front_asked_for_but_not_supported_is_unavailable(monkeypatch, tmp_path):
    # a setting no ml-api version reads stands in for ML_API_SERVER before the front branch
    monkeypatch.setattr(targets, "SERVER_SETTING", "ML_API_NO_SUCH_SETTING")
    ctx = targets.Context(workdir=tmp_path)
    model = _model(tmp_path)
    with pytest.raises(targets.Unavailable, match="does not support ML_API_NO_SUCH_SETTING yet"):
        targets.MlApi("flask", server="granian").launch(ctx, model, 5000)
    # today's front needs no setting while there is no choice: the row runs, nothing is set
    launch = targets.MlApi("flask", server="gthread").launch(ctx, model, 5000)
    assert "ML_API_NO_SUCH_SETTING" not in launch.env


def test_front_value_refused_is_unavailable_with_the_message(monkeypatch, tmp_path):
    # a setting that exists and checks its values stands in for a front ml-api does not know
    monkeypatch.setattr(targets, "SERVER_SETTING", "ML_API_RUNTIME")
    with pytest.raises(targets.Unavailable, match="refuses ML_API_RUNTIME=granian"):
        targets.MlApi("flask", server="granian").launch(
            targets.Context(workdir=tmp_path), _model(tmp_path), 5000
        )


def test_front_mismatch():
    assert targets.front_mismatch(None, "gunicorn") is None
    assert targets.front_mismatch("granian", "granian") is None
    assert targets.front_mismatch("granian", "gunicorn") == (
        "asked for granian, but the server runs gunicorn"
    )


@pytest.mark.live
@pytest.mark.parametrize(("front", "found"), [("gthread", "gunicorn"), ("granian", "granian")])
def test_bare_flask_runs_on_the_front_it_names(tmp_path, front, found):
    ctx = targets.Context(workdir=tmp_path, server_cpus=1)
    port = procs.free_port()
    launch = targets.BareFlask(front).launch(ctx, _model(tmp_path), port)
    proc = servers.ServerProcess(f"bare-{front}", launch, port, tmp_path / "server.log", None)
    proc.start()
    try:
        assert proc.wait_ready(60) is None, proc.log_tail(5)
        body = json.dumps({"features": [1.0, 2.0, 3.0]}).encode()
        assert proc.probe("/predict", body, "seed") is None
        status, raw = proc.request("POST", "/predict", body)
        assert (status, json.loads(raw)) == (200, {"prediction": [3]})
        status, raw = proc.request("POST", "/predict", b'{"rows": 1}')
        assert status == 400 and "features" in json.loads(raw)["error"]
        assert targets.BareFlask(front).inspect(proc) == (None, {"front": found})
        # an ml-api row asking for the other front would be refused after start, with the reason
        other = "gthread" if front == "granian" else "granian"
        reason, info = targets.MlApi("flask", server=other).inspect(proc)
        assert info["front"] == found and reason == (
            f"asked for {'gunicorn' if other == 'gthread' else 'granian'}, "
            f"but the server runs {found}"
        )
    finally:
        assert proc.stop() == 0


@pytest.mark.live
def test_run_with_granian_rows_reports_them_whatever_ml_api_supports(tmp_path):
    """End to end: the ml-api granian row is measured on granian, or unavailable with why."""
    require_tool("wrk")
    proc = run_bench(
        *("--smoke", "--no-in-process", "--with-soak", "--soak-seconds", "2"),
        *("--targets", "ml-api-flask,ml-api-flask-granian,bare-flask-granian"),
        *("--models", "lr", "--concurrency", "1", "--duration", "1", "--rounds", "1"),
        *("--workdir", str(tmp_path / "work"), "--results-dir", str(tmp_path / "results")),
    )
    assert "estimated duration: ~" in proc.stderr
    (js,) = (tmp_path / "results").glob("*-smoke.json")
    results = json.loads(js.read_text())
    status = {t["target"]: t for t in results["targets"]}
    assert status["bare-flask-granian"]["available"] and status["bare-flask-granian"]["front"] == (
        "granian"
    )
    assert status["ml-api-flask"]["available"]
    assert status["ml-api-flask"]["front"] in ("gunicorn", "granian")
    assert status["ml-api-flask"]["runtime"] in ("onnx", "sklearn")
    granian = status["ml-api-flask-granian"]
    if granian["available"]:
        assert granian["front"] == "granian"
    else:
        assert "ML_API_SERVER" in granian["reason"] or "granian" in granian["reason"]
    lines = {g["goal"]: g for g in results["goals"]}
    line = lines["ml-api-flask-granian vs the bare Flask ceiling on the same front, 64 clients"]
    assert line["status"] == "not measured"  # c=64 is not in this run, or the row is missing
    # --with-soak: after the cells, the soak ran on ml-api-flask (the only soak row selected)
    (soak,) = results["soak"]
    assert (soak["target"], soak["model"], soak["concurrency"]) == ("ml-api-flask", "lr", 64)
    assert soak["requests"] > 0 and soak["error_count"] == 0
    *cells, soak_line = results["goals"]
    assert soak_line["goal"].startswith("soak 2 s, 64 clients: ml-api-flask")
    assert soak_line["status"] in ("met", "missed") and soak_line["measured"].startswith("0 errors")
    assert all(g["status"] == "not measured" for g in cells)  # only c=1 ran


def _model(tmp_path):
    return models.BenchModel(
        key="lr",
        name="m",
        model_root=tmp_path / "models",
        seed_dir=None,
        joblib_path=None,
        row=[1.0],
        columns=["a"],
        kinds=["numeric"],
    )
