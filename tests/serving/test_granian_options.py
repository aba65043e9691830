"""granian's configuration (ML_API_SERVER=granian); its behaviour is tested live (tests/live)."""

import io
import json
import logging
import logging.config

import pytest
from granian.constants import Interfaces

from ml_api.serving.granian_app import granian_options
from ml_api.serving.gunicorn_app import GRACEFUL_TIMEOUT_SECONDS
from ml_api.serving.keepalive import CloseUnreadBodies
from ml_api.settings import Settings


def test_options_per_framework():
    flask = granian_options(Settings(), "flask")
    django = granian_options(Settings(), "django", host="127.0.0.1")
    assert (flask["address"], flask["port"]) == ("0.0.0.0", 5000)
    assert (django["address"], django["port"]) == ("127.0.0.1", 8000)
    assert flask["interface"] == Interfaces.WSGI
    assert flask["blocking_threads"] == 64 and flask["backpressure"] == 128
    assert flask["log_access"] is False  # ml-api writes its own access records
    assert flask["workers_kill_timeout"] == GRACEFUL_TIMEOUT_SECONDS


def test_port_workers_and_threads_from_standard_variables(monkeypatch):
    monkeypatch.setenv("PORT", "9123")
    monkeypatch.setenv("WEB_CONCURRENCY", "3")
    monkeypatch.setenv("ML_API_THREADS", "8")
    opts = granian_options(Settings(), "django")
    assert opts["port"] == 9123 and opts["workers"] == 3 and opts["blocking_threads"] == 8


def test_server_setting_and_its_choices(monkeypatch):
    assert Settings().server == "gunicorn"
    monkeypatch.setenv("ML_API_SERVER", "granian")
    assert Settings().server == "granian"
    monkeypatch.setenv("ML_API_SERVER", "bjoern")
    with pytest.raises(ValueError, match="server"):
        Settings()


def test_granian_own_log_lines_are_json(capsys):
    config = granian_options(Settings(), "flask")["log_dictconfig"]
    logging.config.dictConfig(config)
    try:
        logging.getLogger("_granian").info("Starting granian (main PID: %d)", 42)
        line = capsys.readouterr().out.strip().splitlines()[-1]
    finally:
        logging.config.dictConfig({"version": 1, "disable_existing_loggers": False})
    record = json.loads(line)
    assert record["logger"] == "_granian" and record["message"] == "Starting granian (main PID: 42)"


def test_unread_body_closes_the_connection_without_gunicorn():
    """granian's start_response has no force_close: the answer carries ``Connection: close``."""

    def app(environ, start_response):
        start_response("413 Content Too Large", [("Content-Type", "application/json")])
        return [b"{}"]

    sent = {}

    def start_response(status, headers, exc_info=None):
        sent["headers"] = headers

    environ = {"CONTENT_LENGTH": str(1_000_000), "wsgi.input": io.BytesIO(b"x" * 1_000_000)}
    CloseUnreadBodies(app)(environ, start_response)
    assert ("Connection", "close") in sent["headers"]
    environ = {"CONTENT_LENGTH": "2", "wsgi.input": io.BytesIO(b"{}")}
    CloseUnreadBodies(app)(environ, start_response)
    assert all(k.lower() != "connection" for k, _ in sent["headers"])
