"""Every label of every metric takes its values from a closed set, whatever clients send.

Against Flask and Django behind real gunicorn and granian servers: after a warm-up that makes every
(method, route, status) a kind of request can reach, 1,000 distinct odd values of each
client-controlled part of a request (method, path, query, ``Content-Type``, ``Accept``, ``Host``,
``User-Agent``, ``X-Request-ID``, body field names, V2 model names, versions and tensor names) add
no series to ``/metrics``, counted with prometheus_client's own parser.
"""

from __future__ import annotations

import http.client
import json
import random
import string
from collections.abc import Callable, Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from ml_api.core.telemetry import METHODS, OTHER
from tests.conftest import DJANGO_SECRET_KEY
from tests.contract.table import VALID
from tests.live.conftest import SERVERS
from tests.live.server import LiveServer

pytestmark = pytest.mark.live

ODD_VALUES = 1000
"""Distinct values sent for each client-controlled part."""

WARM_UP = 5
"""Requests of each kind sent first, so that every series a kind can reach exists."""

Send = tuple[str, str, dict[str, str], bytes]
"""method, path (with query), headers, body."""


def _token(rng: random.Random, n: int = 12, alphabet: str = string.ascii_letters) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def _named(key: str) -> bytes:
    return json.dumps({"features": {key: 1.0}}).encode()


def _tensor(name: str) -> bytes:
    return json.dumps(
        {"inputs": [{"name": name, "datatype": "FP64", "shape": [1], "data": [1.0]}]}
    ).encode()


JSON = {"Content-Type": "application/json"}
VERSIONS = "/v2/models/penguins/versions"

KINDS: dict[str, Callable[[random.Random], Send]] = {
    "method": lambda r: (_token(r, 7, string.ascii_uppercase), "/predict", JSON, VALID),
    "path": lambda r: ("GET", "/" + _token(r, 20, string.ascii_letters + "-._~"), {}, b""),
    "query": lambda r: ("GET", f"/health?{_token(r)}={_token(r)}", {}, b""),
    "content-type": lambda r: ("POST", "/predict", {"Content-Type": f"x/{_token(r)}"}, VALID),
    "accept": lambda r: ("GET", "/metadata", {"Accept": f"x/{_token(r)}"}, b""),
    "host": lambda r: ("GET", "/metadata", {"Host": f"{_token(r).lower()}.example"}, b""),
    "user-agent": lambda r: ("GET", "/health", {"User-Agent": _token(r, 30)}, b""),
    "x-request-id": lambda r: ("GET", "/health", {"X-Request-ID": _token(r, 40)}, b""),
    "feature name": lambda r: ("POST", "/predict", JSON, _named(_token(r))),
    "v2 model": lambda r: ("POST", f"/v2/models/{_token(r)}/infer", JSON, VALID),
    "v2 version": lambda r: ("POST", f"{VERSIONS}/{_token(r)}/infer", JSON, VALID),
    "v2 tensor": lambda r: ("POST", "/v2/models/penguins/infer", JSON, _tensor(_token(r))),
    "predicted class": lambda r: ("POST", "/predict", JSON, VALID),
}  # fmt: skip


def _requests(seed: int, count: int) -> Iterator[tuple[str, Send]]:
    rng = random.Random(seed)
    for kind, make in KINDS.items():
        for _ in range(count):
            yield kind, make(rng)


def _series(port: int) -> set[tuple[str, tuple[tuple[str, str], ...]]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/metrics")
    response = conn.getresponse()
    text = response.read().decode()
    conn.close()
    assert response.status == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items())))
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _send_all(port: int, seed: int, count: int) -> set[str]:
    """Send ``count`` requests of every kind on one kept-alive connection; the statuses seen."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    seen = set()
    try:
        for kind, (method, path, headers, body) in _requests(seed, count):
            if conn.sock is None:
                conn.connect()
            conn.request(method, path, body or None, headers)
            try:
                response = conn.getresponse()
            except http.client.RemoteDisconnected as exc:
                raise AssertionError(f"{kind}: {method} {path} {headers} {body[:80]!r}") from exc
            response.read()
            assert response.status < 500, (kind, method, path, response.status)
            seen.add(f"{kind}:{response.status}")
            if response.will_close:
                conn.close()
    finally:
        conn.close()
    return seen


@pytest.fixture(scope="module", params=[(fw, sv) for sv in SERVERS for fw in ("flask", "django")],
                ids="-".join)  # fmt: skip
def server(request, model_root):
    framework, server_name = request.param
    env = {
        "ML_API_SERVER": server_name,
        "ML_API_SECRET_KEY": DJANGO_SECRET_KEY,
        "ML_API_DRAIN_SECONDS": "0",
    }
    with LiveServer(model_root, framework, workers=1, env=env) as srv:
        yield srv


def test_odd_requests_add_no_series(server):
    warm = _send_all(server.port, seed=1, count=WARM_UP)
    _series(server.port)  # the scrape is a request too: its own series exist from the second on
    before = _series(server.port)
    seen = _send_all(server.port, seed=2, count=ODD_VALUES)
    after = _series(server.port)
    assert seen == warm  # the same outcomes, so the warm-up made every series they reach
    assert after - before == set()
    methods = {dict(labels).get("method") for _, labels in after} - {None}
    assert methods <= METHODS | {OTHER}
    assert OTHER in methods  # the made-up methods were counted, under one value
    routes = {dict(labels).get("route") for _, labels in after} - {None}
    assert all(r == "<unmatched>" or (r.startswith("/") and len(r) < 60) for r in routes)
    classes = {dict(labels).get("predicted_class") for _, labels in after} - {None}
    assert classes and classes <= {"Adelie", "Chinstrap", "Gentoo"}  # the model's classes only
