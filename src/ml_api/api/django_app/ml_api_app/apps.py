"""The ``ml_api`` Django app's configuration: loads the model once per process."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, reset_queries

from ml_api.api import shared
from ml_api.api.django_app import runtime
from ml_api.core.model.integrity import ArtifactError


class MlApiConfig(AppConfig):
    """Loads the configured model when Django starts, before any request is answered."""

    name = "ml_api.api.django_app.ml_api_app"
    label = shared.APP_NAME
    verbose_name = "ml-api predictions"

    def ready(self) -> None:
        """Load the model unless the process already has it (the gunicorn master loaded it).

        Also drops Django's database housekeeping when there is no database
        (:func:`skip_database_housekeeping`).

        Raises:
            ImproperlyConfigured: The configured model cannot be loaded (the message names the
                absolute path and how to train one).
        """
        try:
            runtime.load_service()
        except ArtifactError as exc:
            raise ImproperlyConfigured(str(exc)) from exc
        skip_database_housekeeping()


DUMMY_ENGINE = "django.db.backends.dummy"
"""What Django puts in ``DATABASES["default"]`` when ``DATABASES`` is empty (no database)."""


def skip_database_housekeeping(databases: Mapping[str, Mapping[str, Any]] | None = None) -> bool:
    """Without a database, stop Django's per-request database housekeeping.

    ``django.db`` connects ``reset_queries`` and ``close_old_connections`` to every request's
    ``request_started`` (and the latter to ``request_finished``); each walks the open database
    connections, of which there are none when ``DATABASES`` is empty (ml-api's settings; Django
    then fills in its :data:`DUMMY_ENGINE`), yet dispatching them costs microseconds per
    request. A settings module with a database keeps them.

    Args:
        databases: Django's ``DATABASES``; ``settings.DATABASES`` when ``None``.

    Returns:
        Whether they were disconnected (``DATABASES`` names no engine but the dummy one).
    """
    configured = settings.DATABASES if databases is None else databases
    if any(db.get("ENGINE") != DUMMY_ENGINE for db in configured.values()):
        return False
    request_started.disconnect(reset_queries)
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    return True
