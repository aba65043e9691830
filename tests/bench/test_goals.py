"""This round's targets computed from synthetic rows (bench/goals.py): met, missed, not measured.

The rows are made up; what is checked is the arithmetic and the bookkeeping (which rows a target
reads, and the reason when one is missing), not any speed.
"""

import pytest

from bench import goals, report, targets

ML_API, ML_API_DJANGO, ML_API_TODAY = targets.ML_API, targets.ML_API_DJANGO, targets.ML_API_TODAY
NODRIFT, LOG10 = targets.ML_API_NODRIFT, targets.ML_API_LOG10
BARE_FLASK = targets.BARE_FLASK

FRONTS = {
    ML_API: "gunicorn", ML_API_DJANGO: "gunicorn", ML_API_TODAY: "gunicorn",
    NODRIFT: "gunicorn", LOG10: "gunicorn",
}  # fmt: skip


def status(target, model, available=True, reason=None, front=None, runtime=None):
    s = {"target": target, "model": model, "available": available, "reason": reason}
    if front or target in FRONTS:
        s["front"] = front or FRONTS[target]
    if runtime or target.startswith("ml-api"):
        s["runtime"] = runtime or ("sklearn" if target == ML_API_TODAY else "onnx")
    return s


def row(target, model, c, rps, p50=1.0, p99=5.0):
    return {
        "target": target,
        "model": model,
        "concurrency": c,
        "rps": rps,
        "p50_ms": p50,
        "p99_ms": p99,
        "rounds": 2,
    }


def by_goal(result, prefix, model=None):
    found = [g for g in result if g["goal"].startswith(prefix) and model in (None, g["model"])]
    assert len(found) == 1, [g["goal"] for g in result]
    return found[0]


@pytest.fixture
def full_run():
    """Every row the targets read, with numbers that meet some targets and miss others."""
    statuses = [
        status(ML_API, "rf"), status("mlserver-batch", "rf"),
        status(ML_API, "lr"), status("mlserver-batch", "lr"),
        status(ML_API, "penguins"), status(ML_API_DJANGO, "penguins"),
        status(BARE_FLASK["gunicorn"], "penguins"),
        status(BARE_FLASK["granian"], "penguins", front="granian"),
        status(NODRIFT, "penguins"), status(LOG10, "penguins"),
    ]  # fmt: skip
    summary = [
        row(ML_API, "rf", 64, 1000, p99=80), row("mlserver-batch", "rf", 64, 300, p99=100),
        row(ML_API, "rf", 1, 900, p50=0.45),
        row(ML_API, "lr", 64, 1500, p99=90), row("mlserver-batch", "lr", 64, 700, p99=60),
        row(ML_API, "penguins", 64, 1200), row(ML_API_DJANGO, "penguins", 64, 1000),
        row(ML_API, "penguins", 1, 400, p50=0.7),
        row(BARE_FLASK["gunicorn"], "penguins", 64, 2000),
        row(BARE_FLASK["granian"], "penguins", 64, 3500),
        row(NODRIFT, "penguins", 64, 1250), row(LOG10, "penguins", 64, 1000),
    ]  # fmt: skip
    return summary, statuses


def test_ratios_met_and_missed(full_run):
    result = goals.compute(*full_run, soak=[], soak_ran=False)
    rf = by_goal(result, "random forest, 64 clients: req/s")
    assert rf["value"] == pytest.approx(1000 / 300, abs=1e-3) and rf["status"] == "met"
    assert rf["target"] == ">= 2.5x"
    assert "ml-api-flask (gunicorn, onnx) 1,000 req/s" in rf["measured"]
    p99 = by_goal(result, "random forest, 64 clients: p99")
    assert p99["met"] is True and p99["value"] == 80
    # lr: 1500 / 700 = 2.14x < 2.5x, and a higher p99
    lr = by_goal(result, "logistic regression, 64 clients: req/s")
    assert lr["value"] == pytest.approx(1500 / 700, abs=1e-3)
    assert lr["status"] == "missed" and "mlserver-batch 700" in lr["measured"]
    assert by_goal(result, "logistic regression, 64 clients: p99")["met"] is False
    rf1 = by_goal(result, "random forest, 1 client")
    assert rf1["status"] == "met" and rf1["target"] == "<= 0.5 ms"
    assert by_goal(result, "penguins, 1 client")["status"] == "missed"
    # drift: 1200 / 1250 = 0.96 >= 0.95; the log: 1000 / 1200 = 0.83 < 0.90
    drift = by_goal(result, "drift counting costs")
    assert drift["value"] == pytest.approx(0.96) and drift["met"] is True
    assert f"{NODRIFT} (gunicorn, onnx) 1,250 req/s" in drift["measured"]
    log = by_goal(result, "the prediction log at a 10 % sample")
    assert log["value"] == pytest.approx(1000 / 1200, abs=1e-3) and log["met"] is False
    assert not [g for g in result if "today" in g["goal"]]  # last round's baseline is gone


def test_monitoring_costs_not_measured_without_their_rows(full_run):
    summary, statuses = full_run
    statuses = [s for s in statuses if s["target"] not in (NODRIFT, LOG10)]
    result = goals.compute(summary, statuses, soak=[], soak_ran=False)
    drift = by_goal(result, "drift counting costs")
    assert drift["status"] == "not measured" and drift["model"] == goals.DEFAULT_MODEL
    assert f"{NODRIFT}/penguins was not in this run" in drift["note"]
    log = by_goal(result, "the prediction log at a 10 % sample")
    assert f"{LOG10}/penguins was not in this run" in log["note"]


def test_ceiling_uses_the_bare_flask_row_on_the_same_front(full_run):
    summary, statuses = full_run
    result = goals.compute(summary, statuses, soak=[], soak_ran=False)
    ceiling = by_goal(result, "ml-api-flask vs the bare Flask ceiling", "penguins")
    assert ceiling["value"] == pytest.approx(0.6) and ceiling["met"] is True  # 1200 / 2000
    assert BARE_FLASK["gunicorn"] in ceiling["measured"]
    # the same ml-api row reported on granian is compared with the granian ceiling instead
    moved = [dict(s, front="granian") if s["target"] == ML_API else s for s in statuses]
    result = goals.compute(summary, moved, soak=[], soak_ran=False)
    ceiling = by_goal(result, "ml-api-flask vs the bare Flask ceiling", "penguins")
    assert ceiling["value"] == pytest.approx(1200 / 3500, abs=1e-3) and ceiling["met"] is False
    django = by_goal(result, "Django vs Flask", "penguins")
    assert django["value"] == pytest.approx(1000 / 1200, abs=1e-3) and django["met"] is False
    assert django["target"] == ">= 0.9x"


def test_missing_rows_are_not_measured_with_the_reason(full_run):
    summary, statuses = full_run
    statuses = [s for s in statuses if (s["target"], s["model"]) != ("mlserver-batch", "rf")]
    statuses = [
        status(ML_API_DJANGO, "penguins", available=False, reason="server exited with status 1")
        if s["target"] == ML_API_DJANGO
        else s
        for s in statuses
    ]
    summary = [r for r in summary if not (r["model"] == "rf" and r["concurrency"] == 1)]
    result = goals.compute(summary, statuses, soak=[], soak_ran=False)
    rf = by_goal(result, "random forest, 64 clients: req/s")
    assert rf["status"] == "not measured" and rf["met"] is None and rf["value"] is None
    assert "mlserver-batch/rf was not in this run" in rf["note"]
    assert "mlserver-batch/rf" in by_goal(result, "random forest, 64 clients: p99")["note"]
    django = by_goal(result, "Django vs Flask")
    assert django["note"] == "ml-api-django/penguins not available: server exited with status 1"
    p50 = by_goal(result, "random forest, 1 client")
    assert "c=1 was not measured" in p50["note"]
    # lr still has its MLServer row
    assert by_goal(result, "logistic regression, 64 clients: req/s")["status"] == "missed"


def test_failed_and_empty_cells_and_unknown_front_are_not_measured():
    statuses = [
        status(ML_API, "penguins", front="unknown"), status(ML_API_DJANGO, "penguins"),
        status(BARE_FLASK["gunicorn"], "penguins"),
    ]  # fmt: skip
    failed = dict(row(ML_API, "penguins", 64, None), rounds=0, failed_rounds=2)
    summary = [failed, row(ML_API_DJANGO, "penguins", 64, 100)]
    result = goals.compute(summary, statuses, soak=[], soak_ran=False)
    ceiling = by_goal(result, "ml-api-flask vs the bare Flask ceiling", "penguins")
    assert ceiling["status"] == "not measured" and "every round failed" in ceiling["note"]
    django = by_goal(result, "Django vs Flask", "penguins")
    assert "ml-api-flask/penguins c=64: every round failed" in django["note"]
    lr = by_goal(result, "logistic regression, 64 clients: req/s")
    assert lr["status"] == "not measured" and "mlserver-batch/lr was not in this run" in lr["note"]
    # rounds that ran but answered nothing (another process held the server's CPU)
    empty = dict(row(ML_API, "penguins", 64, 0.0), others_on_server_cpus_pct=96.7)
    result = goals.compute([empty, summary[1]], statuses, soak=[], soak_ran=False)
    django = by_goal(result, "Django vs Flask", "penguins")
    assert django["note"] == (
        "ml-api-flask/penguins c=64: no request answered in the cell "
        "(others on the server CPUs: 97 %)"
    )


def test_ceiling_and_django_lines_only_on_models_that_have_their_rows():
    statuses = [status(ML_API, m) for m in ("lr", "rf", "penguins")]
    statuses.append(status(BARE_FLASK["gunicorn"], "lr"))
    result = goals.compute([], statuses, soak=[], soak_ran=False)
    ceilings = [g for g in result if "bare Flask ceiling" in g["goal"]]
    assert [g["model"] for g in ceilings] == ["lr"]  # the only model with a ceiling row
    # no Django row anywhere: the target still shows, not measured, on the default model
    (django,) = [g for g in result if g["goal"].startswith("Django vs Flask")]
    assert django["model"] == goals.DEFAULT_MODEL and django["status"] == "not measured"
    assert django["note"].startswith("ml-api-django/penguins was not in this run")
    assert not [g for g in result if "granian" in g["goal"]]  # extra pairs: only when selected


def test_unavailable_granian_row_is_reported_not_raised(full_run):
    summary, statuses = full_run
    reason = "ml-api serve does not support ML_API_SERVER yet (no setting reads it)"
    statuses = [
        *statuses,
        status("ml-api-flask-granian", "penguins", available=False, reason=reason),
        status("ml-api-django-granian", "penguins", available=False, reason=reason),
    ]
    result = goals.compute(summary, statuses, soak=[], soak_ran=False)
    ceiling = by_goal(result, "ml-api-flask-granian vs the bare Flask ceiling", "penguins")
    assert ceiling["status"] == "not measured" and reason in ceiling["note"]
    django = by_goal(result, "Django vs Flask, 64 clients (ml-api-django-granian", "penguins")
    assert django["status"] == "not measured" and reason in django["note"]
    text = "\n".join(report.goals_markdown(result, ML_API))
    assert f"not measured: ml-api-flask-granian/penguins not available: {reason}" in text
    assert "`ml-api-flask`" in text


def test_soak_targets():
    assert goals.soak_goals([], soak_ran=False)[0]["note"] == goals.SOAK_HINT
    soak = [
        {"target": ML_API, "model": "lr", "seconds": 60.0, "concurrency": 64, "error_count": 0,
         "rss_growth_pct": 1.2, "rss_mib_before": 100.0, "rss_mib_after": 101.2},
        {"target": ML_API_DJANGO, "model": "lr", "seconds": 60.0, "concurrency": 64,
         "error_count": 3, "rss_growth_pct": 0.5, "rss_mib_before": 100.0,
         "rss_mib_after": 100.5},
        {"target": ML_API, "model": "rf", "seconds": 60.0, "concurrency": 64, "error_count": 0,
         "rss_growth_pct": 7.0, "rss_mib_before": 100.0, "rss_mib_after": 107.0},
        {"target": ML_API, "model": "penguins", "failed": "wrk exited with 1"},
    ]  # fmt: skip
    result = goals.soak_goals(soak, soak_ran=True)
    assert [g["status"] for g in result] == ["met", "missed", "missed", "not measured"]
    assert result[1]["measured"].startswith("3 errors")
    assert result[3]["note"] == "wrk exited with 1"
    # through compute: the soak lines come last
    assert goals.compute([], [], soak, soak_ran=True)[-4:] == result


def test_markdown_counts_and_marks_each_line(full_run):
    result = goals.compute(*full_run, soak=[], soak_ran=False)
    text = "\n".join(report.goals_markdown(result, ML_API))
    met = sum(g["status"] == "met" for g in result)
    missed = sum(g["status"] == "missed" for g in result)
    assert f"{met} met, {missed} missed, {len(result) - met - missed} not measured." in text
    assert "| MISSED |" in text and "| met |" in text
    assert f"not measured: {goals.SOAK_HINT}" in text
