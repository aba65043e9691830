"""Fixtures of the Django adapter's own tests."""

import pytest
from django.test import Client


@pytest.fixture(scope="module")
def client(django_app):
    """Django's test client; the app is the session's (``django_app``, around ``service``)."""
    return Client()


@pytest.fixture(scope="module")
def rendering(django_app):
    """The adapter's rendering module, imported once Django is configured."""
    # DRF modules read Django's settings when imported: only after the app is configured.
    from ml_api.api.django_app.ml_api_app import rendering

    return rendering
