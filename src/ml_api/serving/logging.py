"""JSON logs on stdout: one object per line, for Fluentd / Fluent Bit and Elasticsearch.

Everything a serving process writes goes through here: ml-api's loggers, gunicorn's error log,
Flask's and Django's loggers, Python warnings and uncaught exceptions. Each record is one line with
``timestamp`` (ISO 8601, UTC), ``level``, ``logger``, ``message``, the ``request_id`` of the request
being handled (when there is one), any ``extra`` fields (access records add ``method``, ``path``,
``route``, ``status``, ``duration_ms``, ``instances``, ``model_version``), and for an exception one
``exc_info`` field holding the whole stack: never a multi-line traceback.

Formatting is python-json-logger's; this module only wires it up.
"""

from __future__ import annotations

import logging
import logging.config
import sys
from typing import Any

from pythonjsonlogger.json import JsonFormatter

from ml_api.core.context import current_request_id

FORMAT = "%(levelname)s %(name)s %(message)s"
RENAMED = {"levelname": "level", "name": "logger"}


class RequestIdFilter(logging.Filter):
    """Adds the current request's id to records that do not carry one."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Set ``record.request_id`` from the request context; always keep the record."""
        if getattr(record, "request_id", None) is None:
            rid = current_request_id()
            if rid is not None:
                record.request_id = rid
        return True


def formatter() -> JsonFormatter:
    """The JSON formatter every handler uses (UTC ISO 8601 ``timestamp``, renamed fields)."""
    return JsonFormatter(FORMAT, rename_fields=RENAMED, timestamp=True, json_ensure_ascii=False)


def logging_dict(level: str = "INFO") -> dict[str, Any]:
    """A :func:`logging.config.dictConfig` that sends every logger to one JSON stdout handler.

    gunicorn takes the same dictionary as its ``logconfig_dict``, so its own records (start-up,
    worker boot and exit, errors) come out identically.

    Args:
        level: Level for ml-api's loggers and the root logger.
    """
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": RequestIdFilter}},
        "formatters": {"json": {"()": formatter}},
        "handlers": {
            "stdout": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stdout",
                "formatter": "json",
                "filters": ["request_id"],
            }
        },
        "root": {"level": level, "handlers": ["stdout"]},
        "loggers": {
            "gunicorn.error": {"level": "INFO", "handlers": ["stdout"], "propagate": False},
            # Access records come from ml-api itself (richer fields); gunicorn's stays off.
            "gunicorn.access": {"level": "WARNING", "handlers": ["stdout"], "propagate": False},
            "ml_api": {"level": level, "propagate": True},
            "django": {"level": "INFO", "propagate": True},
            "django.request": {"level": "ERROR", "propagate": True},
            "werkzeug": {"level": "INFO", "propagate": True},
            "py.warnings": {"level": "WARNING", "propagate": True},
        },
    }


def configure_logging(level: str = "INFO") -> None:
    """Route this process's logs, warnings and uncaught exceptions to JSON lines on stdout."""
    logging.config.dictConfig(logging_dict(level))
    logging.captureWarnings(True)

    def _log_uncaught(exc_type: type[BaseException], exc: BaseException, tb: Any) -> None:
        if issubclass(exc_type, KeyboardInterrupt):
            sys.__excepthook__(exc_type, exc, tb)
            return
        logging.getLogger("ml_api").critical("uncaught exception", exc_info=(exc_type, exc, tb))

    sys.excepthook = _log_uncaught
