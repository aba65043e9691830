"""Coverage-guided fuzzing (atheris) of both WSGI apps and the batch readers: the bounded slice.

Two parts, each for every target of :mod:`tests.fuzz.harness` (``flask``, ``django``, ``csv``,
``parquet``):

- every committed seed (``tests/fuzz/corpus``) is replayed in-process, and the two apps must give
  the same status and the same bytes for it (the seeds carry an ``X-Request-ID``);
- atheris runs the target in a subprocess for a fixed number of inputs (``FUZZ_RUNS``, a few
  seconds each; libFuzzer's ``-seed=1``, so each run is the same run), starting from the seeds,
  with ml-api's code instrumented for coverage. A broken invariant fails the test with the input
  libFuzzer saved.

``make fuzz`` runs each target for ``FUZZ_SECONDS`` instead (tests/fuzz/atheris_main.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fuzz import harness

ROOT = Path(__file__).resolve().parents[2]
RUNS = {"flask": 600, "django": 600, "csv": 150, "parquet": 150}
"""Inputs per target in ``make test`` (a few seconds each); ``FUZZ_RUNS`` overrides them all."""

atheris = pytest.importorskip("atheris", reason="atheris is in the test extras (Linux wheels)")


@pytest.fixture(scope="module")
def fuzz_env(model_root, django_settings, service, django_app):
    """The harness serves the session's service; its subprocesses load the session's model."""
    harness.use(django_settings, service)
    os.environ["ML_API_FUZZ_MODEL_ROOT"] = str(model_root)
    yield
    del os.environ["ML_API_FUZZ_MODEL_ROOT"]


def _seeds(name: str) -> list[Path]:
    seeds = sorted(p for p in harness.corpus_of(name).iterdir() if p.is_file())
    assert len(seeds) >= 5, f"the {name} corpus lost its seeds"
    return seeds


@pytest.mark.parametrize("name", harness.TARGETS)
def test_every_seed_keeps_the_invariant(fuzz_env, name):
    run = harness.target(name)
    for seed in _seeds(name):
        run(seed.read_bytes())  # raises InvariantBroken (or anything) on a fault


def test_both_apps_answer_every_seed_alike(fuzz_env):
    flask, django = harness.target("flask"), harness.target("django")
    answered = 0
    for seed in _seeds("flask"):
        data = seed.read_bytes()
        f, d = flask(data), django(data)
        if f is None:
            continue
        answered += 1
        if seed.name in VOLATILE:  # counters move between the two calls
            assert f[0] == d[0], seed.name
            continue
        assert f == d, (seed.name, f[1][:300], d[1][:300])
    assert answered >= 30


VOLATILE = {"get-metrics"}


def test_a_non_utf8_path_gets_the_same_404_from_both(fuzz_env):
    """Werkzeug decoded %FF as U+FFFD, Django re-percent-encoded it: both now show ``%FF``."""
    data = (harness.corpus_of("flask") / "get-unknown").read_bytes()
    flask, django = harness.target("flask")(data), harness.target("django")(data)
    assert flask == django and flask[0] == 404
    assert b"no route GET /predict/../%FF" in flask[1], flask


def test_head_on_a_post_route_gets_the_same_answer_from_both(fuzz_env):
    """A 405 without content from both (Werkzeug drops a HEAD body; Django's now does too)."""
    data = (harness.corpus_of("flask") / "head-predict").read_bytes()
    flask, django = harness.target("flask")(data), harness.target("django")(data)
    assert flask == django == (405, b"")


@pytest.mark.parametrize("name", harness.TARGETS)
def test_a_bounded_coverage_guided_run_finds_nothing(fuzz_env, tmp_path, name):
    runs = int(os.environ.get("FUZZ_RUNS", RUNS[name]))
    scratch = tmp_path / "corpus"
    scratch.mkdir()
    args = [
        sys.executable, "-m", "tests.fuzz.atheris_main", name,
        f"-runs={runs}", "-seed=1", "-max_len=4096", f"-artifact_prefix={tmp_path}/",
        *([f"-dict={harness.CORPUS / 'http.dict'}"] if name in ("flask", "django") else []),
        str(scratch), str(harness.corpus_of(name)),
    ]  # fmt: skip
    r = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=600)
    crashes = sorted(tmp_path.glob("crash-*")) + sorted(tmp_path.glob("timeout-*"))
    found = crashes[0].read_bytes()[:500] if crashes else b""
    assert r.returncode == 0 and not crashes, (found, r.stderr[-3000:])
    assert f"Done {runs} runs" in r.stderr, r.stderr[-2000:]
