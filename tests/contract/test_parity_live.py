"""Flask and Django as real gunicorn servers answer every request in the table alike."""

import json

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.clients import live_call
from tests.conftest import DJANGO_SECRET_KEY
from tests.contract.table import CALLS, COMPARED_HEADERS, VALID, allow_set
from tests.live.server import LiveServer

pytestmark = pytest.mark.live
NAMES = sorted(CALLS)


@pytest.fixture(scope="module")
def servers(model_root):
    flask = LiveServer(model_root, "flask", workers=1)
    django = LiveServer(
        model_root, "django", workers=1, env={"ML_API_SECRET_KEY": DJANGO_SECRET_KEY}
    )
    try:
        flask.wait_ready()
        django.wait_ready()
        yield flask, django
    finally:
        codes = (flask.terminate(), django.terminate())
    assert codes == (0, 0), flask.output() + django.output()


def both(servers, method, path, body=b"", content_type=None, headers=None):
    return tuple(live_call(s.url, method, path, body, content_type, headers) for s in servers)


@pytest.mark.parametrize("name", NAMES)
def test_same_status_bytes_and_headers_over_http(servers, name):
    call = CALLS[name]
    headers = {**call.headers, "X-Request-ID": "live-parity-1"}
    f, d = both(servers, call.method, call.path, call.body, call.content_type, headers)
    assert f.status == d.status
    assert call.volatile or f.body == d.body
    for header in COMPARED_HEADERS:
        if not (call.volatile and header == "Content-Length"):
            assert f.headers.get(header) == d.headers.get(header), header
    assert allow_set(f.headers.get("Allow")) == allow_set(d.headers.get("Allow"))
    assert f.headers["X-Request-ID"] == "live-parity-1"
    assert f.headers["Server"] == d.headers["Server"]  # both gunicorn


@pytest.mark.parametrize(("padding", "status"), [(0, 200), (70_000, 413)])
def test_chunked_bodies_alike(servers, padding, status):
    body = VALID + b" " * padding  # valid JSON at any cut: a truncating reader would say 200

    def chunks():
        for i in range(0, len(body), 4096):
            yield body[i : i + 4096]

    replies = [
        live_call(s.url, "POST", "/predict", chunks(), "application/json", {"X-Request-ID": "c-1"})
        for s in servers
    ]
    assert {r.status for r in replies} == {status}
    assert replies[0].body == replies[1].body
    if status == 413:
        assert json.loads(replies[0].body)["error"] == (
            "request body is larger than the limit of 65536 bytes"
        )


def _samples(url: str) -> dict[tuple[str, tuple], float]:
    """ml_api_* counter and histogram-count samples of a live scrape (durations left out)."""
    text = requests.get(url + "/metrics", timeout=10).text
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.startswith("ml_api_") and (
                sample.name.endswith("_total") or sample.name == "ml_api_request_instances_count"
            ):
                out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def test_the_same_requests_make_the_same_metric_series(servers):
    before = [_samples(s.url) for s in servers]
    for name in NAMES:
        call = CALLS[name]
        both(servers, call.method, call.path, call.body, call.content_type, call.headers)
    after = [_samples(s.url) for s in servers]
    delta = [
        {k: v - b.get(k, 0.0) for k, v in a.items() if v != b.get(k, 0.0)}
        for a, b in zip(after, before, strict=True)
    ]
    assert delta[0] == delta[1]
    routes = {dict(labels).get("route") for (name, labels) in delta[0]}
    assert {"/predict", "/v2/models/<name>/infer", "<unmatched>", "/metrics"} <= routes
