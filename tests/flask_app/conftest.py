"""Fixtures of the Flask adapter's own tests."""

import pytest

from ml_api.api.flask_app import create_app


@pytest.fixture(scope="module")
def client(settings, service):
    """Flask's test client on the app around the session's ``service``."""
    return create_app(settings, service).test_client()
