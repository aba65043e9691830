"""``ml-api serve``: load the model and serve it over HTTP (gunicorn, granian or a dev server)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ml_api.cli.common import VERSION_HELP, malformed, settings_from

if TYPE_CHECKING:
    from ml_api.composition import Application
    from ml_api.settings import Settings

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
@click.option("--name", "model_name", default=None, help="Model to serve.")
@click.option(
    "--version",
    "model_version",
    default=None,
    help=VERSION_HELP,
)
@click.option("--model-root", type=click.Path(file_okay=False, path_type=Path), default=None)
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
    from ml_api.serving.gunicorn_app import prepare_metrics_dir

    settings = settings_from(
        model_root=model_root,
        model_name=model_name,
        model_version=model_version,
        port=port,
        web_concurrency=workers,
        framework=framework,
        server=server,
    )
    if not dev:
        prepare_metrics_dir()  # before anything imports prometheus_client
    from ml_api.serving.logging import configure_logging

    configure_logging(settings.log_level)
    _exit_if_port_in_use(host, settings.bind_port())
    application = _compose_or_exit(settings)
    factory = _app_factory(settings.framework, application)
    bound_port = settings.bind_port()
    _log_start(application, host, bound_port)
    if dev:
        _serve_dev(settings.framework, factory, host, bound_port)
        return
    if settings.server == "granian":
        _serve_granian(application, factory, host)
        return
    _serve_gunicorn(application, factory, host)


def _compose_or_exit(settings: Settings) -> Application:
    """Build the application in this (the future gunicorn master) process, or exit 1."""
    import logging

    from ml_api.composition import build
    from ml_api.core.model.artifact import ArtifactError
    from ml_api.serving.gunicorn_app import remove_own_metrics_dir

    try:
        return build(settings)
    except (ArtifactError, OSError) as exc:
        logging.getLogger("ml_api.serve").critical("cannot serve: %s", exc)
        remove_own_metrics_dir()
        sys.exit(1)
    except Exception as exc:  # a malformed artifact: one line, no traceback
        logging.getLogger("ml_api.serve").critical("cannot serve: %s", malformed(settings, exc))
        remove_own_metrics_dir()
        sys.exit(1)


def _log_start(application: Application, host: str, port: int) -> None:
    import logging

    service = application.service
    logging.getLogger("ml_api.serve").info(
        "serving model %s version %s (%s) with %s on http://%s:%d%s",
        service.artifact.name,
        service.artifact.version,
        service.artifact.path,
        application.settings.framework,
        host,
        port,
        "; API keys required" if service.auth.enabled else "",
    )


def _serve_gunicorn(application: Application, factory: Callable[[], Any], host: str) -> None:
    from ml_api.serving.gunicorn_app import GunicornApplication, gunicorn_options

    settings = application.settings
    GunicornApplication(
        factory,
        gunicorn_options(settings, settings.framework, host),
        on_drain=application.service.start_draining,
        drain_seconds=settings.drain_seconds,
    ).run()


def _serve_granian(application: Application, factory: Callable[[], Any], host: str) -> None:
    import logging

    from ml_api.serving.gunicorn_app import remove_own_metrics_dir

    try:
        from ml_api.serving.granian_app import GranianServer, granian_options
    except ImportError as exc:  # granian is an extra: ml-api[granian]
        logging.getLogger("ml_api.serve").critical(
            "cannot serve: ML_API_SERVER=granian needs granian (pip install 'ml-api[granian]'): %s",
            exc,
        )
        remove_own_metrics_dir()
        sys.exit(1)

    settings = application.settings
    GranianServer(
        factory,
        on_drain=application.service.start_draining,
        drain_seconds=settings.drain_seconds,
        **granian_options(settings, settings.framework, host),
    ).run()


def _exit_if_port_in_use(host: str, port: int) -> None:
    """Exit 1 with one log line when ``port`` is taken, before the model is loaded."""
    import logging

    from ml_api.serving.gunicorn_app import remove_own_metrics_dir

    busy = _port_in_use(host, port)
    if busy:
        logging.getLogger("ml_api.serve").critical("cannot serve: %s", busy)
        remove_own_metrics_dir()
        sys.exit(1)


def _port_in_use(host: str, port: int) -> str | None:
    """One line saying ``port`` is taken (and how to pick another), or ``None`` if it is free.

    Probes with the options gunicorn binds with (``SO_REUSEADDR``), so a port held only by
    connections in TIME_WAIT counts as free, as it does for gunicorn. Without this, gunicorn logs
    a retry every second for five seconds and exits with no hint.
    """
    import errno
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror:
        return None  # let the server report an unknown host itself
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                return None
            return (
                f"port {port} on {host} is already in use (macOS: AirPlay Receiver takes 5000); "
                f"stop what uses it or choose another port: PORT=8080 make run, or --port 8080"
            )
    return None


def _app_factory(framework: str, application: Application) -> Callable[[], Any]:
    settings = application.settings
    if framework == "flask":
        from ml_api.api.flask_app import create_app

        return lambda: create_app(settings, application=application)
    import logging

    from django.core.exceptions import ImproperlyConfigured

    from ml_api.api.django_app import get_wsgi_application

    try:  # built now, in the future gunicorn master, so a bad setting stops before binding
        app = get_wsgi_application(settings, application=application)
    except ImproperlyConfigured as exc:
        logging.getLogger("ml_api.serve").critical("cannot serve: %s", exc)
        sys.exit(1)
    return lambda: app


def _serve_dev(framework: str, factory: Callable[[], Any], host: str, port: int) -> None:
    import logging

    logging.getLogger("ml_api.serve").warning(
        "development server: use 'ml-api serve' without --dev in production"
    )
    if framework == "flask":
        factory().run(host=host, port=port, debug=False, use_reloader=False)
        return
    from wsgiref.simple_server import make_server

    make_server(host, port, factory()).serve_forever()
