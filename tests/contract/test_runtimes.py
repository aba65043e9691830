"""scikit-learn and ONNX Runtime serve the same requests alike, through Flask and Django.

Every prediction request of the parity table goes to four apps: Flask and Django, each with
``ML_API_RUNTIME=sklearn`` and ``ML_API_RUNTIME=onnx`` on the same model version. Statuses are the
same everywhere; errors are byte for byte the same; answers carry identical labels, and class
probabilities that agree within the acceptance gate's 1e-5 (ONNX Runtime computes in float32).
Within one runtime, Flask and Django answer byte for byte alike (the parity suite's rule).
"""

from __future__ import annotations

import json

import pytest
from django.test import Client

from ml_api.api.django_app import get_wsgi_application
from ml_api.api.flask_app import create_app
from ml_api.composition import build_scoring
from ml_api.core.protocols.v1 import model_metadata
from tests.clients import django_call, flask_call
from tests.contract.table import CALLS

RUNTIMES = {"sklearn": "scikit-learn", "onnx": "onnxruntime"}
TOLERANCE = 1e-5
PREDICTION_CALLS = sorted(
    name
    for name, call in CALLS.items()
    if call.method == "POST" and (call.path.startswith("/predict") or "/infer" in call.path)
)


@pytest.fixture(scope="module")
def services(settings):
    return {r: build_scoring(settings.model_copy(update={"runtime": r})) for r in RUNTIMES}


@pytest.fixture
def four(services, settings, django_settings, service):
    flask = {
        r: create_app(settings.model_copy(update={"runtime": r}), services[r]).test_client()
        for r in RUNTIMES
    }

    def call(c):
        out = {}
        headers = {**c.headers, "X-Request-ID": "runtime-check"}
        args = (c.method, c.path, c.body, c.content_type, headers)
        for r in RUNTIMES:
            out["flask", r] = flask_call(flask[r], *args)
            get_wsgi_application(django_settings.model_copy(update={"runtime": r}), services[r])
            out["django", r] = django_call(Client(), *args)
        return out

    yield call
    get_wsgi_application(django_settings, service)  # the session's Django app, as it was


def test_each_setting_runs_its_runtime(services):
    for setting, name in RUNTIMES.items():
        assert services[setting].predictor.runtime == name
        assert model_metadata(services[setting])["runtime"] == name


def _close(a, b):
    """Equal, except floats, which may differ by TOLERANCE; labels (strings, ints) exactly."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float):
        return abs(a - b) <= TOLERANCE
    return a == b and type(a) is type(b)


@pytest.mark.parametrize("name", PREDICTION_CALLS)
def test_both_runtimes_answer_alike_through_flask_and_django(four, name):
    replies = four(CALLS[name])
    statuses = {key: r.status for key, r in replies.items()}
    assert len(set(statuses.values())) == 1, statuses
    for r in RUNTIMES:
        assert replies["flask", r].body == replies["django", r].body, r
    sk, ox = replies["flask", "sklearn"], replies["flask", "onnx"]
    if sk.status != 200:
        assert sk.body == ox.body
        return
    a, b = json.loads(sk.body), json.loads(ox.body)
    if "prediction" in a:
        assert a["prediction"] == b["prediction"]  # labels: identical
        assert [list(p) for p in a["probabilities"]] == [list(p) for p in b["probabilities"]]
    else:  # V2: the label tensor identical, the probability tensor within the tolerance
        labels = [[o for o in body["outputs"] if o["name"] == "predict"] for body in (a, b)]
        assert labels[0] == labels[1]
    assert _close(a, b), (a, b)


def test_some_probabilities_do_differ_and_stay_within_the_gate(four):
    """Not a vacuous comparison: the runtimes' probabilities are not bit-identical here."""
    replies = four(CALLS[next(n for n in PREDICTION_CALLS if n.startswith("valid_batch"))])
    a = json.loads(replies["flask", "sklearn"].body)["probabilities"]
    b = json.loads(replies["flask", "onnx"].body)["probabilities"]
    diffs = [abs(p[c] - q[c]) for p, q in zip(a, b, strict=True) for c in p]
    assert max(diffs) > 0
    assert max(diffs) <= TOLERANCE


@pytest.mark.parametrize("framework", ["flask", "django"])
def test_metadata_says_why_requests_are_not_batched(
    settings, django_settings, service, django_app, framework
):
    """Batching turned off: V1 ``batching`` and V2 ``parameters.batching`` say so and why, both
    frameworks alike (a runtime that declares it cannot batch a model gives its own reason:
    tests/core/test_batch_invariance.py)."""
    from ml_api.api.django_app import runtime

    off = (settings if framework == "flask" else django_settings).model_copy(
        update={"batching": False}
    )
    unbatched = build_scoring(off)
    if framework == "flask":
        client = create_app(off, unbatched).test_client()
        v1 = client.get("/metadata").get_json()
        v2 = client.get("/v2/models/penguins").get_json()
    else:
        runtime.use(off, unbatched)
        try:
            v1 = Client().get("/metadata").json()
            v2 = Client().get("/v2/models/penguins").json()
        finally:
            runtime.use(django_settings, service)  # the session's app again
    why = "batching is turned off (ML_API_BATCHING=false)"
    assert v1["batching"] == {"across_requests": False, "why_not": why}
    assert v2["parameters"]["batching"] == f"per request: {why}"
    assert model_metadata(service)["batching"] == {"across_requests": True, "why_not": None}
