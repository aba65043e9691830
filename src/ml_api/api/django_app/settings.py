"""Django settings for the ml-api Django adapter, derived from :class:`ml_api.settings.Settings`.

Production-safe by default: ``DEBUG`` off, ``SECRET_KEY`` required (``ML_API_SECRET_KEY``),
``ALLOWED_HOSTS`` from ``ML_API_ALLOWED_HOSTS`` (the probes ``/health`` and ``/ready`` answer any
host, see :mod:`ml_api.api.django_app.middleware`). It is a stateless machine-to-machine JSON API:
no database, no sessions, no CSRF, no authentication classes, no templates. Every error, DRF's
included, is rendered as the core's JSON envelope (``EXCEPTION_HANDLER`` and ``handler4xx/500``).

Logging is ml-api's JSON logging for every entry point (``ml-api serve``, plain gunicorn,
``manage.py``). ``manage.py check --deploy`` passes with these settings; the checks silenced below
do not apply because TLS ends at the Kubernetes Ingress (see the README, "Django").
"""

from __future__ import annotations

import warnings

from django.core.checks.security.base import (
    SECRET_KEY_INSECURE_PREFIX,
    SECRET_KEY_MIN_LENGTH,
    SECRET_KEY_MIN_UNIQUE_CHARACTERS,
)
from django.core.exceptions import ImproperlyConfigured

from ml_api.api.django_app import runtime
from ml_api.settings import CORS_ALLOW_HEADERS as CORS_ALLOW_HEADERS_
from ml_api.settings import CORS_ALLOW_METHODS as CORS_ALLOW_METHODS_
from ml_api.settings import CORS_EXPOSE_HEADERS as CORS_EXPOSE_HEADERS_
from ml_api.settings import CORS_MAX_AGE_SECONDS

_ours = runtime.settings_for_django()


def _weak_secret_key_reason(key: str) -> str | None:
    """Why ``manage.py check --deploy`` would call ``key`` weak (security.W009), or ``None``."""
    if key.startswith(SECRET_KEY_INSECURE_PREFIX):
        return f"it starts with {SECRET_KEY_INSECURE_PREFIX!r}"
    if len(key) < SECRET_KEY_MIN_LENGTH:
        return f"{len(key)} characters, fewer than {SECRET_KEY_MIN_LENGTH}"
    if len(set(key)) < SECRET_KEY_MIN_UNIQUE_CHARACTERS:
        return f"{len(set(key))} distinct characters, fewer than {SECRET_KEY_MIN_UNIQUE_CHARACTERS}"
    return None


DEBUG = _ours.debug

if _ours.secret_key is not None:
    SECRET_KEY = _ours.secret_key.get_secret_value()
    weak = _weak_secret_key_reason(SECRET_KEY)
    if weak and not DEBUG:
        raise ImproperlyConfigured(
            f"ML_API_SECRET_KEY is too weak for production: {weak} (Django's deployment check, "
            "security.W009); make one with: python -c 'import secrets; "
            "print(secrets.token_urlsafe(50))'"
        )
elif DEBUG:
    # "django-insecure-" makes `check --deploy` flag it too.
    SECRET_KEY = "django-insecure-ml-api-development-only-never-use-this-key-in-production"
    warnings.warn(
        "ML_API_SECRET_KEY is not set: using a development SECRET_KEY (ML_API_DEBUG is on)",
        RuntimeWarning,
        stacklevel=1,
    )
else:
    raise ImproperlyConfigured(
        "ML_API_SECRET_KEY is not set: the Django API needs a secret key in production "
        "(50+ random characters, e.g. from: python -c 'import secrets; "
        "print(secrets.token_urlsafe(50))'), or set ML_API_DEBUG=true for development"
    )

ALLOWED_HOSTS = list(_ours.allowed_hosts)

INSTALLED_APPS = [
    "rest_framework",
    "ml_api.api.django_app.ml_api_app.apps.MlApiConfig",
]

MIDDLEWARE = [
    "ml_api.api.django_app.middleware.HeadMiddleware",
    "ml_api.api.django_app.middleware.TelemetryMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "ml_api.api.django_app.middleware.CommonMiddleware",
    "ml_api.api.django_app.middleware.ApiKeyMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

# ML_API_CORS_ORIGINS: django-cors-headers, configured like flask-cors in the Flask adapter. Its
# middleware answers a preflight itself, before the API-key check (a preflight has no key).
if _ours.cors_origins:
    INSTALLED_APPS.append("corsheaders")
    MIDDLEWARE.insert(2, "corsheaders.middleware.CorsMiddleware")
    if "*" in _ours.cors_origins:
        CORS_ALLOW_ALL_ORIGINS = True
    else:
        CORS_ALLOWED_ORIGINS = list(_ours.cors_origins)
    CORS_ALLOW_HEADERS = list(CORS_ALLOW_HEADERS_)
    CORS_ALLOW_METHODS = list(CORS_ALLOW_METHODS_)
    CORS_EXPOSE_HEADERS = list(CORS_EXPOSE_HEADERS_)
    CORS_PREFLIGHT_MAX_AGE = CORS_MAX_AGE_SECONDS

ROOT_URLCONF = "ml_api.api.django_app.urls"
WSGI_APPLICATION = "ml_api.api.django_app.wsgi.application"

DATABASES: dict[str, dict[str, str]] = {}
TEMPLATES: list[dict[str, object]] = []

# Both spellings, /predict and /predict/, are routed explicitly: never redirect (a redirected
# POST loses its body).
APPEND_SLASH = False

# The core refuses a declared Content-Length over the limit before reading; Django enforces the
# same number on what it reads (RequestDataTooBig, rendered as the same 413).
DATA_UPLOAD_MAX_MEMORY_SIZE = _ours.max_body_bytes

USE_I18N = False
USE_TZ = True
TIME_ZONE = "UTC"
LANGUAGE_CODE = "en-us"
DEFAULT_CHARSET = "utf-8"

SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

SILENCED_SYSTEM_CHECKS = [
    # CSRF protects cookie-authenticated browser forms; this API has neither cookies nor
    # sessions nor forms, and callers are machines.
    "security.W003",
    # HSTS and the HTTP->HTTPS redirect belong to the Ingress that terminates TLS; pods are
    # reached over plain HTTP by the Ingress, in-cluster callers and the kubelet's probes.
    "security.W004",
    "security.W008",
]

REST_FRAMEWORK = {
    "DEFAULT_RENDERER_CLASSES": ["ml_api.api.django_app.ml_api_app.rendering.CoreJSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "ml_api.api.django_app.ml_api_app.rendering.AlwaysJSON",
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "DEFAULT_THROTTLE_CLASSES": [],
    "UNAUTHENTICATED_USER": None,
    "UNAUTHENTICATED_TOKEN": None,
    "EXCEPTION_HANDLER": "ml_api.api.django_app.ml_api_app.rendering.exception_handler",
}

# One JSON object per line, as everywhere in ml-api (ml_api.serving.logging): Django applies its
# defaults, then calls configure_logging(LOGGING), which routes Django's loggers to the same
# JSON handler (and django.request only for 5xx: ml-api's access record covers every request).
LOGGING_CONFIG = "ml_api.serving.logging.configure_logging"
LOGGING = _ours.log_level
