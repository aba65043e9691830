"""Flask and Django under gunicorn, started as ``ml-api serve``, over real HTTP on loopback.

Each test runs against both servers (the ``server`` fixture); what only one framework does is in
``test_flask_live.py`` and ``test_django_live.py``.
"""

import json
import re

import pytest
import requests

from tests.cases import body_bytes, check_response, headers, load_cases
from tests.conftest import VALID_ROW
from tests.live.conftest import FRAMEWORKS, SERVERS, framework_env
from tests.live.server import LiveServer

pytestmark = pytest.mark.live
CASES = load_cases()


@pytest.mark.parametrize(("name", "case"), CASES, ids=[n for n, _ in CASES])
@pytest.mark.parametrize("path", ["/predict", "/predict/"])
def test_request_table_over_http(server, name, case, path):
    r = requests.post(server.url + path, data=body_bytes(case), headers=headers(case), timeout=10)
    assert r.headers["Content-Type"] == "application/json"
    assert r.headers["X-Request-ID"]
    assert not r.history  # no redirect, for either spelling
    check_response(case, r.status_code, r.json())


@pytest.mark.parametrize("path", ["/predict", "/predict/"])
def test_seed_curl_form_and_readme_answer(server, path):
    r = requests.post(server.url + path, json={"features": VALID_ROW}, timeout=10)
    assert r.status_code == 200
    assert r.json()["prediction"] == ["Gentoo"]


def test_served_by_the_chosen_server_not_a_dev_server(server):
    r = requests.get(server.url + "/health", timeout=5)
    expected = {"gunicorn": "gunicorn", "granian": "granian"}[server.server_name]
    assert r.headers.get("Server", "").lower().startswith(expected)
    assert "development server" not in server.output().lower()


def test_large_body_refused_413(server):
    big = b'{"features": [' + b"1," * 600_000 + b"1]}"
    r = requests.post(
        server.url + "/predict", data=big, headers={"Content-Type": "application/json"}, timeout=10
    )
    assert r.status_code == 413


@pytest.mark.parametrize(("padding", "status"), [(0, 200), (70_000, 413)])
def test_chunked_bodies_are_read_and_capped(server, padding, status):
    body = json.dumps({"features": VALID_ROW}).encode() + b" " * padding

    def chunks():
        for i in range(0, len(body), 4096):
            yield body[i : i + 4096]

    r = requests.post(
        server.url + "/predict",
        data=chunks(),
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert r.request.headers.get("Transfer-Encoding") == "chunked"
    assert r.status_code == status, r.text


def test_no_traceback_in_any_response(server):
    for body in (b"{", b"[]", b'{"features": {"a": 1}}', b'{"features": [[[[1]]]]}'):
        r = requests.post(
            server.url + "/predict",
            data=body,
            headers={"Content-Type": "application/json"},
            timeout=10,
        )
        assert 400 <= r.status_code < 500
        assert "Traceback" not in r.text and json.loads(r.text)["error"]


@pytest.mark.parametrize("server_name", SERVERS)
@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_sigterm_exits_zero_and_removes_its_metrics_dir(
    framework, server_name, model_root, tmp_path
):
    env = framework_env(framework, TMPDIR=str(tmp_path), ML_API_SERVER=server_name)
    srv = LiveServer(model_root, framework, workers=1, env=env)
    srv.wait_ready()
    assert requests.get(srv.url + "/health", timeout=5).status_code == 200
    assert len(list(tmp_path.glob("ml-api-metrics-*"))) == 1
    assert srv.terminate() == 0
    assert list(tmp_path.glob("ml-api-metrics-*")) == []


def test_metadata_and_card_say_whether_requests_are_batched(server):
    """The runtime's batch capability, in V1 and V2 metadata and on the card page."""
    v1 = requests.get(server.url + "/metadata", timeout=10).json()
    assert v1["batching"] == {"across_requests": True, "why_not": None}
    v2 = requests.get(server.url + "/v2/models/penguins", timeout=10).json()
    assert v2["parameters"]["batching"] == "across requests"
    page = requests.get(server.url + "/model", timeout=10).text
    assert "<tr><td>batching</td><td>concurrent requests may share a model call" in page


@pytest.mark.parametrize(
    ("coding", "status"), [("", 200), ("identity, ", 200), ("gzip;q=1", 415), ("br", 415)]
)
def test_content_encoding_list_as_documented(server, coding, status):
    """An empty ``Content-Encoding`` (which schemathesis' negative mode sent, answered 200) means
    no coding (RFC 9110 ignores empty list elements): the document's pattern now says so; others
    are refused 415, as documented."""
    body = json.dumps({"features": VALID_ROW}).encode()
    hdrs = {"Content-Type": "application/json", "Content-Encoding": coding}
    r = requests.post(server.url + "/predict", data=body, headers=hdrs, timeout=10)
    assert r.status_code == status, r.text
    pattern = requests.get(server.url + "/openapi.json", timeout=10).json()["paths"]["/predict"][
        "post"
    ]["parameters"]
    (param,) = [p for p in pattern if p["name"] == "Content-Encoding"]
    assert bool(re.fullmatch(param["schema"]["pattern"], coding)) == (status == 200)
