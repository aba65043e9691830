"""Running a WSGI app under gunicorn, with the model loaded once in the master.

``ml-api serve`` loads and verifies the model in the process that becomes gunicorn's master, builds
the Flask or Django application around it, and hands that object to gunicorn. Workers are forked
from the master and share the model's memory pages (copy-on-write), which is what gunicorn's
``preload_app`` does; a model that fails to load stops the command before any port is bound.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gunicorn.app.base import BaseApplication
from gunicorn.config import Config

from ml_api.settings import Settings

DEFAULT_PORTS = {"flask": 5000, "django": 8000}
"""The seed guide's ports: Flask's default 5000, Django's 8000."""


def available_cpus() -> int:
    """Return how many CPUs this process may use: affinity mask and cgroup v2 quota included.

    A container limited to ``cpu: 1`` on a 16-core node gets 1, not 16 (``os.cpu_count()`` would
    say 16 and over-subscribe the quota).
    """
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        if quota != "max":
            cpus = min(cpus, max(1, int(-(-int(quota) // int(period)))))
    except (OSError, ValueError):
        pass
    return max(1, cpus)


def gunicorn_options(settings: Settings, framework: str, host: str = "0.0.0.0") -> dict[str, Any]:
    """The gunicorn configuration shared by both frameworks.

    Args:
        settings: Supplies ``port`` (``PORT``) and ``web_concurrency`` (``WEB_CONCURRENCY``).
        framework: ``"flask"`` or ``"django"`` (picks the default port).
        host: Interface to bind (all interfaces by default, as a container needs).

    Returns:
        Options for :class:`GunicornApplication`.
    """
    port = settings.port or DEFAULT_PORTS[framework]
    options: dict[str, Any] = {
        "bind": f"{host}:{port}",
        "workers": settings.web_concurrency or available_cpus(),
        "worker_class": "sync",
        "preload_app": True,
        "timeout": 30,
        "graceful_timeout": 20,
        "keepalive": 75,
        "proc_name": f"ml-api-{framework}",
    }
    if "control_socket_disable" in Config().settings:  # gunicorn >= 24: no ~/.gunicorn socket,
        options["control_socket_disable"] = True  # which a read-only root filesystem refuses
    if Path("/dev/shm").is_dir():
        options["worker_tmp_dir"] = "/dev/shm"  # heartbeat files off a read-only root fs
    return options


class GunicornApplication(BaseApplication):
    """Gunicorn around an application object that already exists in this process.

    Args:
        app_factory: Returns the WSGI application (called once, in the master).
        options: gunicorn settings by name (see :func:`gunicorn_options`).
    """

    def __init__(self, app_factory: Callable[[], Any], options: dict[str, Any]) -> None:
        self._factory = app_factory
        self._options = options
        super().__init__()

    def load_config(self) -> None:
        """Apply ``options`` to gunicorn's config (unknown keys are errors)."""
        for key, value in self._options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        """Return the WSGI application."""
        return self._factory()
