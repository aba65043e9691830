"""Fixtures of the contract suite: each app through its own test client, one calling convention.

``app`` is parametrized over the two adapters, so a test written once runs against Flask and
against Django (``test_adapters.py``, ``test_open_inference.py``); ``test_parity.py`` sends the
same request to both and compares.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client as DjangoClient

from ml_api.api.django_app import get_wsgi_application
from ml_api.api.flask_app import create_app
from ml_api.core.service import PredictionService
from ml_api.settings import Settings
from tests.clients import Reply, django_call, flask_call

FRAMEWORKS = ("flask", "django")
JSON = "application/json"


@dataclass
class App:
    """One adapter's app: its WSGI callable, its test client and the settings it was built from."""

    framework: str
    wsgi: Any
    client: Any
    settings: Settings

    def call(self, method, path, body=b"", content_type=None, headers=None) -> Reply:
        """Send one request through the framework's test client (see ``tests.clients``)."""
        send = flask_call if self.framework == "flask" else django_call
        return send(self.client, method, path, body, content_type, headers)

    def get(self, path: str, **headers: str) -> Reply:
        return self.call("GET", path, headers=headers)

    def post(self, path: str, body: bytes, content_type: str | None = JSON, **headers) -> Reply:
        return self.call("POST", path, body, content_type, headers)


def build_app(framework: str, settings: Settings, service: PredictionService) -> App:
    """Build ``framework``'s app around ``service``.

    Django reads its settings once per process, so its app is (re)installed process-wide: the
    ``settings`` must be the ``django_settings`` fixture's in debug, key, hosts and body limit.
    """
    if framework == "flask":
        flask = create_app(settings, service)
        return App(framework, flask, flask.test_client(), settings)
    return App(framework, get_wsgi_application(settings, service), DjangoClient(), settings)


@pytest.fixture(scope="module", params=FRAMEWORKS)
def app(request, settings, django_settings, service) -> App:
    """The Flask app, then the Django app, around the session's ``service``."""
    if request.param == "django":
        request.getfixturevalue("django_app")  # configured once per process
        return build_app("django", django_settings, service)
    return build_app("flask", settings, service)


@pytest.fixture
def app_around(app, django_settings, service) -> Iterator[Callable[..., App]]:
    """Build ``app``'s framework around another service (Django gets ``service`` back after).

    Returns:
        ``around(other_service, settings=None) -> App``; ``settings`` default to ``app.settings``.
    """

    def around(other: PredictionService, settings: Settings | None = None) -> App:
        return build_app(app.framework, settings or app.settings, other)

    yield around
    if app.framework == "django":
        get_wsgi_application(django_settings, service)
    assert app.get("/ready").status == 200  # the app under test has its own service again
