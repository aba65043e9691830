"""``ml-api serve``: options to settings, the framework bound, and :mod:`ml_api.serving.launch`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ml_api.cli.common import VERSION_HELP, model_root_option, settings_from

if TYPE_CHECKING:
    from ml_api.composition import Application

FRAMEWORKS = ("flask", "django")
SERVERS = ("gunicorn", "granian")


@click.command()
@click.option(
    "--framework",
    type=click.Choice(FRAMEWORKS),
    default=None,
    help="Web framework (default: ML_API_FRAMEWORK, else flask).",
)
@click.option("--host", default="0.0.0.0", show_default=True, help="Interface to bind.")
@click.option(
    "--port",
    type=int,
    default=None,
    help="Port (default: PORT, else 5000 for Flask and 8000 for Django).",
)
@click.option(
    "--workers",
    type=int,
    default=None,
    help="gunicorn workers (default: WEB_CONCURRENCY, else the usable CPU count).",
)
@click.option(
    "--name",
    "model_name",
    default=None,
    help="The default model: the one POST /predict and the unprefixed paths serve (every model "
    "of the model root is served; default: ML_API_MODEL_NAME, else penguins).",
)
@click.option(
    "--version",
    "model_version",
    default=None,
    help=VERSION_HELP,
)
@model_root_option()
@click.option(
    "--server",
    type=click.Choice(SERVERS),
    default=None,
    help="HTTP server (default: ML_API_SERVER, else gunicorn).",
)
@click.option(
    "--dev",
    is_flag=True,
    help="Use the framework's development server (not for "
    "production: one process, auto-reload off, no graceful shutdown).",
)
def serve(
    framework: str | None,
    host: str,
    port: int | None,
    workers: int | None,
    model_name: str | None,
    model_version: str | None,
    model_root: Path | None,
    server: str | None,
    dev: bool,
) -> None:
    """Serve the model over HTTP with gunicorn or granian (or a development server with --dev).

    Every line the server writes is JSON (see ml_api.serving.logging). A model that cannot be
    loaded ends the command with status 1 and one log line naming the path; no port is bound.
    """
    from ml_api.serving.launch import launch

    settings = settings_from(
        model_root=model_root,
        model_name=model_name,
        model_version=model_version,
        port=port,
        web_concurrency=workers,
        framework=framework,
        server=server,
    )
    launch(settings, host, dev=dev, bind=bind_framework)


def bind_framework(application: Application) -> Callable[[], Any]:
    """The configured framework's WSGI app factory for ``application`` (``launch``'s ``bind``).

    Django's application is built now, in the future gunicorn master, so a bad setting stops
    before binding.

    Raises:
        ml_api.serving.launch.CannotServe: Django refuses the settings (``ImproperlyConfigured``).
    """
    settings = application.settings
    if settings.framework == "flask":
        from ml_api.api.flask_app import create_app

        return lambda: create_app(settings, application=application)
    from django.core.exceptions import ImproperlyConfigured

    from ml_api.api.django_app import get_wsgi_application
    from ml_api.serving.launch import CannotServe

    try:
        app = get_wsgi_application(settings, application=application)
    except ImproperlyConfigured as exc:
        raise CannotServe(str(exc)) from None
    return lambda: app
