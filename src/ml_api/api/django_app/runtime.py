"""The two ml-api objects a Django process serves with: one ``Settings``, one ``Application``.

Django reads its settings module once per process, so the ``Settings`` it is built from are fixed
here before that happens: either handed over by :func:`ml_api.api.django_app.get_wsgi_application`
(``ml-api serve``, where the gunicorn master already loaded the model) or read from the
environment on first use (``manage.py``, ``gunicorn ml_api.api.django_app.wsgi:application``).
The application (:func:`ml_api.composition.build`: service, V2 endpoints, OpenAPI document) is
built at most once per process, by ``AppConfig.ready()``, never per request.
"""

from __future__ import annotations

import threading

from ml_api.composition import Application, build
from ml_api.core.service import PredictionService
from ml_api.settings import Settings

_lock = threading.Lock()
_settings: Settings | None = None
_application: Application | None = None
_django_configured_from: Settings | None = None


def _django_view(settings: Settings) -> tuple[object, ...]:
    """The fields the Django settings module is derived from."""
    secret = settings.secret_key.get_secret_value() if settings.secret_key else None
    return (settings.debug, secret, tuple(settings.allowed_hosts), settings.max_body_bytes)


def use(
    settings: Settings | None = None,
    service: PredictionService | None = None,
    *,
    application: Application | None = None,
) -> None:
    """Install the settings (and optionally an already built application) for this process.

    Args:
        settings: Configuration; ``Settings()`` from the environment when ``None``.
        service: A loaded service (tests); wrapped by :func:`ml_api.composition.build`.
        application: A composed application, e.g. from the gunicorn master; when it and
            ``service`` are ``None`` it is built by ``AppConfig.ready()`` (or kept, if one with
            these settings is loaded).

    Raises:
        RuntimeError: Django was already configured in this process from settings that differ
            in ``debug``, ``secret_key``, ``allowed_hosts`` or ``max_body_bytes`` (Django reads
            its settings once per process).
    """
    global _settings, _application
    with _lock:
        new = settings or _settings or Settings()
        if _django_configured_from is not None and _django_view(new) != _django_view(
            _django_configured_from
        ):
            raise RuntimeError(
                "Django is already configured in this process with other debug, secret_key, "
                "allowed_hosts or max_body_bytes settings; start a new process"
            )
        if service is not None and application is None:
            application = build(new, service=service)
        if application is not None or new is not _settings:
            _application = application
        _settings = new


def settings_for_django() -> Settings:
    """Return the settings the Django settings module is built from, and remember them.

    Returns:
        The installed settings, or ``Settings()`` read from the environment if none were.
    """
    global _settings, _django_configured_from
    with _lock:
        if _settings is None:
            _settings = Settings()
        _django_configured_from = _settings
        return _settings


def load_service() -> PredictionService:
    """Return the process's service, building the application the first time.

    Raises:
        ArtifactError: The configured model cannot be loaded.
    """
    global _settings, _application
    with _lock:
        if _application is None:
            _settings = _settings or Settings()
            _application = build(_settings)
        return _application.service


def application() -> Application:
    """Return the built application (the views' only way to reach the model).

    Raises:
        ModelNotReady: (503) nothing was built (``AppConfig.ready()`` did not run).
    """
    if _application is None:
        from ml_api.core.errors import ModelNotReady

        raise ModelNotReady("the model is not loaded")
    return _application


def service() -> PredictionService:
    """Return the built application's service.

    Raises:
        ModelNotReady: (503) nothing was built (``AppConfig.ready()`` did not run).
    """
    return application().service
