"""The Django + Django REST Framework adapter: HTTP in, ``PredictionService`` calls, JSON out.

Layout: the project (``settings.py``, ``urls.py``, ``wsgi.py``, ``manage.py``, ``middleware.py``)
and the Django app labelled ``ml_api`` in ``ml_api_app/`` (``apps.py``, ``urls.py``, ``views.py``,
``rendering.py``), the Flask adapter's :mod:`ml_api.api.flask_app` file for file. The wire
contract is the Flask adapter's, byte for byte (``tests/contract/``).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ml_api.composition import Application
    from ml_api.core.service import PredictionService
    from ml_api.settings import Settings

SETTINGS_MODULE = "ml_api.api.django_app.settings"


def get_wsgi_application(
    settings: Settings | None = None,
    service: PredictionService | None = None,
    *,
    application: Application | None = None,
) -> Any:
    """Configure Django from ml-api's settings (once per process) and return the WSGI app.

    Args:
        settings: Configuration; ``Settings()`` from the environment when ``None``. Django's
            ``DEBUG``, ``SECRET_KEY``, ``ALLOWED_HOSTS`` and ``DATA_UPLOAD_MAX_MEMORY_SIZE``
            derive from it.
        service: An already loaded service (tests); wrapped by :func:`ml_api.composition.build`.
        application: The composed application (``ml-api serve`` builds it in the gunicorn
            master before forking); when it and ``service`` are ``None``, ``AppConfig.ready()``
            builds it from ``settings``.

    Returns:
        Django's ``WSGIHandler``.

    Raises:
        ImproperlyConfigured: ``ML_API_SECRET_KEY`` is missing outside debug mode, or the model
            cannot be loaded.
        RuntimeError: Django was configured earlier in this process from different settings.
    """
    from ml_api.api.django_app import runtime

    runtime.use(settings, service, application=application)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", SETTINGS_MODULE)
    from django.core.wsgi import get_wsgi_application as django_wsgi_application

    handler = django_wsgi_application()  # django.setup(): AppConfig.ready() loads the model
    runtime.load_service()  # Django set up earlier in this process: ready() will not run again
    return handler
