"""The ``ml_api`` Django app's configuration: loads the model once per process."""

from __future__ import annotations

from django.apps import AppConfig
from django.core.exceptions import ImproperlyConfigured

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

        Raises:
            ImproperlyConfigured: The configured model cannot be loaded (the message names the
                absolute path and how to train one).
        """
        try:
            runtime.load_service()
        except ArtifactError as exc:
            raise ImproperlyConfigured(str(exc)) from exc
