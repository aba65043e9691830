"""An overloaded worker sheds what it cannot start in time: 503 with ``Retry-After``, never lost.

Before, a complete request waited in gunicorn's unbounded queue for as long as the requests ahead
took, and its time limit started only when a thread took it. Now a request that finds
``ML_API_MAX_QUEUED_REQUESTS`` already queued, or that waited longer than
``ML_API_MAX_QUEUE_WAIT_SECONDS`` for a thread, is answered 503 (JSON, ``Retry-After``) without
running, the same bytes from Flask and Django, and counted in ``ml_api_requests_shed_total``.

The threads are held deterministically: the served model's own code (``--code-path gate.py``)
blocks in ``transform`` while a file the test owns exists, after writing one line per blocked call
to ``<file>.entered``. Real gunicorn (one worker, 2 request threads), real HTTP over loopback;
every wait is a bounded poll, and the assertions are on statuses and bodies, never durations.
"""

from __future__ import annotations

import importlib
import re
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import joblib
import pandas as pd
import pytest
import requests
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from ml_api import preprocess
from tests.conftest import DJANGO_SECRET_KEY
from tests.importing.test_refusals import run_import
from tests.live.server import both_frameworks

pytestmark = pytest.mark.live

GATE = '''
import os
import time
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin


class Gate(BaseEstimator, TransformerMixin):
    """Passes its input through; blocks while the file named by GATE_HOLD exists (tests only)."""

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        hold = os.environ.get("GATE_HOLD")
        if hold and Path(hold).exists():
            with open(hold + ".entered", "a") as entered:
                entered.write("in\\n")
            end = time.monotonic() + 120
            while Path(hold).exists() and time.monotonic() < end:
                time.sleep(0.01)
        return np.asarray(X, dtype=float)
'''

BOUND_SECONDS = 60.0
"""Longest wait for anything (a liveness bound, never asserted as a duration)."""
MAX_WAIT_SECONDS = 1.0
"""``ML_API_MAX_QUEUE_WAIT_SECONDS`` of the servers."""
ROW = {"bill_length_mm": 40.0, "body_mass_g": 4000.0}


@pytest.fixture(scope="module")
def gated_root(tmp_path_factory) -> Path:
    """A model root with ``gated`` version 1: a pipeline whose first step is :data:`GATE`."""
    folder = tmp_path_factory.mktemp("gated")
    (folder / "gate.py").write_text(GATE)
    sys.path.insert(0, str(folder))
    try:
        gate = importlib.import_module("gate").Gate
        data = pd.read_csv(preprocess.PENGUINS_CSV).dropna()
        data = data[["bill_length_mm", "body_mass_g", "species"]]
        X, y = data[["bill_length_mm", "body_mass_g"]], data["species"]
        model = Pipeline([("gate", gate()), ("clf", LogisticRegression(max_iter=500))]).fit(X, y)
        joblib.dump(model, folder / "gated.joblib")
        data.to_csv(folder / "data.csv", index=False)
    finally:
        sys.path.remove(str(folder))
        sys.modules.pop("gate", None)
    root = folder / "models"
    code, out, err = run_import(
        folder / "gated.joblib", "--code-path", folder / "gate.py", "--data", folder / "data.csv",
        "--target", "species", "--name", "gated", "--model-root", root,
    )  # fmt: skip
    assert code == 0, out + err
    return root


def _wait_for(what: str, condition: Callable[[], bool]) -> None:
    end = time.monotonic() + BOUND_SECONDS
    while not condition():
        assert time.monotonic() < end, f"not within {BOUND_SECONDS} s: {what}"
        time.sleep(0.05)


def _metric(url: str, name: str) -> float | None:
    text = requests.get(url + "/metrics", timeout=BOUND_SECONDS).text
    found = re.search(rf"^{re.escape(name)} ([0-9.e+-]+)$", text, re.M)
    return float(found.group(1)) if found else None


def _post(url: str) -> requests.Response:
    return requests.post(url + "/predict", json={"instances": [ROW]}, timeout=BOUND_SECONDS)


def _in_background(url: str) -> tuple[threading.Thread, list[requests.Response]]:
    answers: list[requests.Response] = []
    thread = threading.Thread(target=lambda: answers.append(_post(url)), daemon=True)
    thread.start()
    return thread, answers


def _overload(url: str, hold: Path) -> dict[str, requests.Response]:
    """Hold both threads, queue one request, overflow the queue, then let the wait run out."""
    entered = Path(f"{hold}.entered")
    entered.unlink(missing_ok=True)
    hold.touch()
    try:
        held = [_in_background(url) for _ in range(2)]
        _wait_for(
            "both threads in the model",
            lambda: entered.exists() and entered.read_text().count("in") == 2,
        )
        queued = _in_background(url)
        _wait_for("one request queued", lambda: _metric(url, "ml_api_http_requests_queued") == 1)
        full = _post(url)  # answered at once: the queue (1) is full and the threads are held
        # The queued request arrived before the gauge showed it: it has now waited longer than
        # the limit whatever the machine's speed.
        time.sleep(MAX_WAIT_SECONDS * 1.5)
    finally:
        hold.unlink()
    for thread, _ in [*held, queued]:
        thread.join(BOUND_SECONDS)
    return {
        "held": [answers[0] for _, answers in held],
        "queued": queued[1][0],
        "full": full,
        "after": _post(url),
    }


def test_overload_is_shed_with_503_the_same_on_flask_and_django(gated_root, tmp_path):
    env = {
        "ML_API_THREADS": "2",
        "ML_API_MAX_QUEUED_REQUESTS": "1",
        "ML_API_MAX_QUEUE_WAIT_SECONDS": str(MAX_WAIT_SECONDS),
        "ML_API_REQUEST_TIMEOUT_SECONDS": str(BOUND_SECONDS),
        "ML_API_MODEL_NAME": "gated",
        "ML_API_SECRET_KEY": DJANGO_SECRET_KEY,
        "ML_API_DRAIN_SECONDS": "0",
        "GATE_HOLD": str(tmp_path / "hold"),
    }
    bodies = {}
    with both_frameworks(gated_root, env) as servers:
        for framework, srv in servers.items():
            seen = _overload(srv.url, tmp_path / "hold")
            assert [r.status_code for r in seen["held"]] == [200, 200], srv.output()[-3000:]
            assert seen["after"].status_code == 200  # the worker serves again
            for reason, answer, limit in (
                ("queue_full", seen["full"], "ML_API_MAX_QUEUED_REQUESTS"),
                ("queue_wait", seen["queued"], "ML_API_MAX_QUEUE_WAIT_SECONDS"),
            ):
                assert answer.status_code == 503, (framework, reason, answer.text)
                assert answer.headers["Retry-After"] == "1"
                assert answer.headers["Content-Type"] == "application/json"
                assert answer.headers["Connection"] == "close"
                body = answer.json()
                assert body["request_id"] == answer.headers["X-Request-ID"]
                assert body["details"] == []
                assert body["error"].startswith("the server is overloaded: ")
                assert limit in body["error"]
                assert "nothing was done, retry later" in body["error"]
                shed = _metric(srv.url, f'ml_api_requests_shed_total{{reason="{reason}"}}')
                assert shed == 1.0, (framework, reason)
                # The waited seconds differ run to run; the rest of the body does not.
                waited = re.sub(r"waited [0-9.]+ s", "waited N s", body["error"])
                bodies[framework, reason] = {**body, "error": waited, "request_id": "-"}
    for reason in ("queue_full", "queue_wait"):
        assert bodies["flask", reason] == bodies["django", reason]
