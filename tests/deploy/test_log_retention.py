"""The retention Job's own script, run with /bin/sh and curl against an HTTP server on loopback
that keeps Elasticsearch's state for the calls the script makes (lifecycle policies, composable
index templates, the update-settings API's multi-target syntax with ``-`` exclusions).

The Job used to install the policies and templates only: a template applies to indices created
after it, and Fluent Bit writes the day's first index before the Job has run (it retries until
Elasticsearch is up), so those indices were never deleted. No Elasticsearch can be installed here
(no package registry carries it), so the server below answers the five endpoints the script uses
with Elasticsearch's documented semantics, and refuses any other call, which fails the script.
"""

from __future__ import annotations

import base64
import fnmatch
import json
import os
import re
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from .kit import find, require
from .test_logging import logging_docs

PASSWORD = "retention-test-password"
EXISTING = ("ml-api-2026.12.01", "ml-api-2026.12.06", "ml-api-predictions-2026.11.30", "other")


class Elasticsearch:
    """The state the script changes: indices (name -> flat settings), policies, templates."""

    def __init__(self, indices: tuple[str, ...]) -> None:
        self.indices: dict[str, dict[str, Any]] = {name: {} for name in indices}
        self.policies: dict[str, dict[str, Any]] = {}
        self.templates: dict[str, dict[str, Any]] = {}
        self.calls: list[str] = []

    def create_index(self, name: str) -> dict[str, Any]:
        """An index created now gets the settings of the matching template of highest priority."""
        matching = [
            t
            for t in self.templates.values()
            if any(fnmatch.fnmatchcase(name, p) for p in t["index_patterns"])
        ]
        chosen = max(matching, key=lambda t: t.get("priority", 0), default=None)
        settings = _flat(chosen["template"]["settings"]) if chosen else {}
        self.indices[name] = settings
        return settings

    def handle(self, method: str, target: str, body: dict[str, Any]) -> tuple[int, dict]:
        self.calls.append(f"{method} {target}")
        url = urlsplit(target)
        parts = url.path.strip("/").split("/")
        if method != "PUT":
            return 405, {"error": f"unexpected {method}"}
        if parts[:2] == ["_ilm", "policy"] and len(parts) == 3:
            phases = body["policy"]["phases"]
            assert set(phases) <= {"hot", "warm", "cold", "frozen", "delete"}
            self.policies[parts[2]] = body["policy"]
            return 200, {"acknowledged": True}
        if parts[0] == "_index_template" and len(parts) == 2:
            for name, other in self.templates.items():
                overlap = set(other["index_patterns"]) & set(body["index_patterns"]) or any(
                    fnmatch.fnmatchcase(a.rstrip("*"), b) or fnmatch.fnmatchcase(b.rstrip("*"), a)
                    for a in other["index_patterns"]
                    for b in body["index_patterns"]
                )
                if (
                    name != parts[1]
                    and overlap
                    and other.get("priority", 0) == body.get("priority", 0)
                ):
                    return 400, {"error": f"template {parts[1]} overlaps {name} at equal priority"}
            self.templates[parts[1]] = body
            return 200, {"acknowledged": True}
        if len(parts) == 2 and parts[1] == "_settings":
            query = parse_qs(url.query)
            names = self._resolve(parts[0], query.get("allow_no_indices", ["true"]) == ["true"])
            if names is None:
                return 404, {"error": {"type": "index_not_found_exception"}}
            settings = _flat(body)
            policy = settings.get("index.lifecycle.name")
            if policy is not None and policy not in self.policies:
                return 400, {"error": f"no policy {policy}"}
            for name in names:
                self.indices[name].update(settings)
            return 200, {"acknowledged": True}
        return 400, {"error": f"no such endpoint in this test: {target}"}

    def _resolve(self, expression: str, allow_no_indices: bool) -> list[str] | None:
        """Elasticsearch's multi-target syntax: comma-separated names and wildcards, a leading
        ``-`` excluding what a wildcard matched so far."""
        chosen: list[str] = []
        for item in expression.split(","):
            if item.startswith("-") and chosen:
                chosen = [n for n in chosen if not fnmatch.fnmatchcase(n, item[1:])]
            elif "*" in item:
                chosen += [n for n in self.indices if fnmatch.fnmatchcase(n, item)]
            elif item in self.indices:
                chosen.append(item)
            else:
                return None
        if not chosen and not allow_no_indices:
            return None
        return sorted(set(chosen))


def _flat(settings: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"index": {"lifecycle": {"name": x}}}`` and ``{"index.lifecycle.name": x}`` alike."""
    out: dict[str, Any] = {}
    for key, value in settings.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flat(value, name + "."))
        else:
            out[name if name.startswith("index.") else f"index.{name}"] = value
    return out


@pytest.fixture
def elasticsearch() -> Iterator[tuple[Elasticsearch, str]]:
    state = Elasticsearch(EXISTING)
    expected = "Basic " + base64.b64encode(f"elastic:{PASSWORD}".encode()).decode()

    class Handler(BaseHTTPRequestHandler):
        def do_PUT(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            body = json.loads(self.rfile.read(length) or b"{}")
            if self.headers.get("Authorization") != expected:
                status, answer = 401, {"error": "unauthenticated"}
            else:
                status, answer = state.handle("PUT", self.path, body)
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _job() -> tuple[str, dict[str, str]]:
    """The rendered Job's script and its literal environment values."""
    container = find(logging_docs(), "Job", "ml-api-logs-retention")["spec"]["template"]["spec"][
        "containers"
    ][0]
    assert container["command"] == ["/bin/sh", "-ec"]
    return container["args"][0], {e["name"]: e.get("value", "") for e in container["env"]}


def _run(script: str, url: str) -> subprocess.CompletedProcess:
    require("curl", hint="the Job's image runs curl; Debian package curl")
    env = {**os.environ, "ES_URL": url, "ELASTIC_PASSWORD": PASSWORD}
    return subprocess.run(
        ["/bin/sh", "-ec", script], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def _policy_days(state: Elasticsearch, index: str) -> int | None:
    name = state.indices[index].get("index.lifecycle.name")
    if name is None:
        return None
    return int(re.fullmatch(r"(\d+)d", state.policies[name]["phases"]["delete"]["min_age"])[1])


def test_the_job_talks_to_the_elasticsearch_it_deploys() -> None:
    _, env = _job()
    assert env["ES_URL"] == "https://ml-api-logs-es-http.logging.svc:9200"
    es = find(logging_docs(), "Elasticsearch")
    assert env["ES_URL"].startswith(f"https://{es['metadata']['name']}-es-http.")


def test_retention_reaches_indices_that_existed_before_the_job(elasticsearch) -> None:
    state, url = elasticsearch
    script, _ = _job()
    for _ in range(2):  # run again, as when the policy changes: idempotent
        done = _run(script, url)
        assert done.returncode == 0, done.stdout + done.stderr
    assert {i: _policy_days(state, i) for i in EXISTING} == {
        "ml-api-2026.12.01": 3,
        "ml-api-2026.12.06": 3,
        "ml-api-predictions-2026.11.30": 14,
        "other": None,  # not ours
    }
    # And the indices Fluent Bit creates from now on, through the templates.
    for index, days in (("ml-api-2026.12.08", 3), ("ml-api-predictions-2026.12.08", 14)):
        state.create_index(index)
        assert _policy_days(state, index) == days


def test_templates_alone_would_leave_the_existing_indices_for_ever(elasticsearch) -> None:
    """The Job as it was: the check above fails on it."""
    state, url = elasticsearch
    script, _ = _job()
    head = script[: script.index("# The indices that exist already")]
    done = _run(head, url)
    assert done.returncode == 0, done.stdout + done.stderr
    assert all(_policy_days(state, i) is None for i in EXISTING)


def test_the_job_fails_when_elasticsearch_refuses(elasticsearch) -> None:
    """``--fail-with-body`` makes a refused call fail the Job (it is retried), not pass silently."""
    state, url = elasticsearch
    script, _ = _job()
    env_url = url + "/refused-prefix"
    done = _run(script, env_url)
    assert done.returncode != 0
    assert len(state.calls) == 1
