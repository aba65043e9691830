"""Starting a server: from settings to a bound port, or one log line and exit status 1.

``ml-api serve`` parses its options into :class:`~ml_api.settings.Settings` and calls
:func:`launch`, which, in this order: prepares the multiprocess metrics folder (before anything
imports ``prometheus_client``), configures JSON logging, refuses a port already in use, builds the
application (:func:`ml_api.composition.build`: the model is loaded and verified here, in the future
gunicorn master, so workers share its pages), binds the framework's WSGI app, logs one start line
and runs gunicorn, granian or the framework's development server.

The framework's app is bound by the caller (``bind``): this package and the Flask and Django
adapters do not import each other (the ``adapters-independent`` import contract); the command line
is the layer that knows both. Every refusal is one ``critical`` log line, ``cannot serve: ...``,
and exit status 1, with no port bound and no traceback.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from ml_api.composition import Application
    from ml_api.settings import Settings

AppFactory = Callable[[], Any]
"""Builds the WSGI application a server runs (called in the master, or in each worker)."""

Bind = Callable[["Application"], AppFactory]
"""Binds the configured framework (``application.settings.framework``) to a built application."""

log = logging.getLogger("ml_api.serve")


class CannotServe(RuntimeError):
    """The server cannot start; the message is the one line logged after ``cannot serve:``.

    ``bind`` functions raise it for a framework that refuses the settings (Django's
    ``ImproperlyConfigured``, for instance).
    """


def launch(settings: Settings, host: str, *, dev: bool, bind: Bind) -> None:
    """Load the model and serve it until the server stops; exit 1 with one line if it cannot.

    Args:
        settings: The server's settings (framework, server, port, workers, model...).
        host: Interface to bind (``0.0.0.0``: every one).
        dev: Run the framework's development server (one process) instead of
            ``settings.server``.
        bind: Returns the framework's app factory for a built application; may raise
            :class:`CannotServe`.

    Raises:
        SystemExit: With status 1 when the port is taken, the model cannot be loaded or is
            malformed, the framework refuses the settings, or the chosen server is not installed.
    """
    from ml_api.serving.gunicorn_app import prepare_metrics_dir

    if not dev:
        prepare_metrics_dir()  # before anything imports prometheus_client
    from ml_api.serving.logging import configure_logging

    configure_logging(settings.log_level)
    port = settings.bind_port()
    busy = port_in_use(host, port)
    if busy:
        _refuse(busy)
    application = _compose(settings)
    try:
        factory = bind(application)
    except CannotServe as exc:
        _refuse(str(exc))
    _log_start(application, host, port)
    if dev:
        _serve_dev(settings.framework, factory, host, port)
    elif settings.server == "granian":
        _serve_granian(application, factory, host)
    else:
        _serve_gunicorn(application, factory, host)


def malformed(settings: Settings, exc: BaseException) -> str:
    """One line for an artifact that loaded but cannot serve, naming its path.

    Args:
        settings: Where the model was looked for (root, name, version).
        exc: What went wrong; the first line of its message is kept, at most 300 characters.
    """
    path = settings.resolved_model_root() / settings.model_name
    if settings.model_version:
        path = path / settings.model_version
    first = (str(exc).strip().splitlines() or [""])[0][:300]
    return f"the model in {path} is malformed and cannot predict: {type(exc).__name__}: {first}"


def port_in_use(host: str, port: int) -> str | None:
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


def _refuse(message: str) -> NoReturn:
    """Log ``cannot serve: MESSAGE``, remove this process's metrics folder, exit 1."""
    from ml_api.serving.gunicorn_app import remove_own_metrics_dir

    log.critical("cannot serve: %s", message)
    remove_own_metrics_dir()
    sys.exit(1)


def _compose(settings: Settings) -> Application:
    """Build the application in this (the future gunicorn master) process, or exit 1."""
    from ml_api.composition import build
    from ml_api.core.model.integrity import ArtifactError

    try:
        return build(settings)
    except (ArtifactError, OSError) as exc:
        _refuse(str(exc))
    except Exception as exc:  # a malformed artifact: one line, no traceback
        _refuse(malformed(settings, exc))


def _log_start(application: Application, host: str, port: int) -> None:
    service = application.service
    log.info(
        "serving model %s version %s (%s) with %s on http://%s:%d%s",
        service.artifact.name,
        service.artifact.version,
        service.artifact.path,
        application.settings.framework,
        host,
        port,
        "; API keys required" if application.auth.enabled else "",
    )
    for name, entry in application.repository.entries.items():
        if name != service.artifact.name:
            artifact = entry.service.artifact
            log.info(
                "also serving model %s version %s (%s) at /models/%s/predict",
                name,
                artifact.version,
                artifact.path,
                name,
            )


def _serve_gunicorn(application: Application, factory: AppFactory, host: str) -> None:
    from ml_api.serving.gunicorn_app import GunicornApplication, gunicorn_options

    settings = application.settings
    GunicornApplication(
        factory,
        gunicorn_options(settings, settings.framework, host),
        on_drain=application.start_draining,
        drain_seconds=settings.drain_seconds,
        body_timeout=settings.request_timeout_seconds,
        on_reload=application.repository.signal_reload,
        max_queue_wait=settings.max_queue_wait_seconds,
        max_queued=settings.max_queued_requests,
    ).run()


def _serve_granian(application: Application, factory: AppFactory, host: str) -> None:
    try:
        from ml_api.serving.granian_app import GranianServer, granian_options
    except ImportError as exc:  # granian is an extra: ml-api[granian]
        _refuse(
            f"ML_API_SERVER=granian needs granian (pip install 'ml-api[granian]'): {exc}",
        )
    settings = application.settings
    GranianServer(
        factory,
        on_drain=application.start_draining,
        drain_seconds=settings.drain_seconds,
        **granian_options(settings, settings.framework, host),
    ).run()


def _serve_dev(framework: str, factory: AppFactory, host: str, port: int) -> None:
    """The framework's own server: Flask's ``run`` or the standard library's ``wsgiref``."""
    log.warning("development server: use 'ml-api serve' without --dev in production")
    if framework == "flask":
        factory().run(host=host, port=port, debug=False, use_reloader=False)
        return
    from wsgiref.simple_server import make_server

    make_server(host, port, factory()).serve_forever()
