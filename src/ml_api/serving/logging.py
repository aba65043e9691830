"""JSON logs on stdout: one object per line, for Fluentd / Fluent Bit and Elasticsearch.

Everything a serving process writes goes through here: ml-api's loggers, gunicorn's error log,
Flask's and Django's loggers, Python warnings and uncaught exceptions. Each record is one line with
``timestamp`` (ISO 8601, UTC), ``level``, ``logger``, ``message``, the ``request_id`` of the request
being handled (when there is one), any ``extra`` fields (access records add ``method``, ``path``,
``route``, ``status``, ``duration_ms``, ``instances``, ``model_version``), and for an exception one
``exc_info`` field holding the whole stack: never a multi-line traceback.

Formatting is python-json-logger's; this module only wires it up, and bounds each line: every
string field is shortened past :data:`MAX_FIELD_CHARS` characters (the first characters and the
original length, as error bodies quote client input), so a request with a huge path or body
cannot make a huge log line (:data:`MAX_LINE_BYTES` at most, as for error bodies).
"""

from __future__ import annotations

import logging
import logging.config
import sys
from typing import Any

from pythonjsonlogger.json import JsonFormatter

from ml_api.core.context import current_request_id
from ml_api.core.errors import MAX_ERROR_BODY_BYTES, shorten

MAX_LINE_BYTES = MAX_ERROR_BODY_BYTES
"""Longest log line, in bytes (the same bound as an error body)."""

MAX_FIELD_CHARS = 2_000
"""Longest string field of a log record (message, path, ...), in characters; ``exc_info``, the
stack of an unexpected error, may take :data:`MAX_EXC_CHARS`."""

MAX_EXC_CHARS = 8_000

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


class BoundedJsonFormatter(JsonFormatter):
    """python-json-logger's formatter, with every string field shortened (lines stay bounded)."""

    _scale = 1

    def format(self, record: logging.LogRecord) -> str:
        """Format as one JSON line of at most :data:`MAX_LINE_BYTES` bytes.

        A line still over the bound once fields are shortened (text that escapes to several
        bytes per character) is formatted again with fields ten times shorter.
        """
        self._scale = 1
        line = super().format(record)
        if len(line.encode()) > MAX_LINE_BYTES:
            self._scale = 10
            line = super().format(record)
        return line

    def jsonify_log_record(self, log_data: dict[str, Any]) -> str:
        """python-json-logger's JSON text, from one encoder made once (not one per record).

        ``json.dumps(..., cls=...)`` builds a new encoder on every call; the encoder holds no
        state between calls, so one instance writes the same text for every record.
        """
        encoder = self.__dict__.get("_encoder")
        if encoder is None:
            encoder = self._encoder = self.json_encoder(  # type: ignore[misc]
                default=self.json_default,
                indent=self.json_indent,
                ensure_ascii=self.json_ensure_ascii,
            )
        return str(encoder.encode(log_data))

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        """Shorten string fields past :data:`MAX_FIELD_CHARS` (``exc_info``: ``MAX_EXC_CHARS``)."""
        for key, value in log_data.items():
            if isinstance(value, str):
                limit = (MAX_EXC_CHARS if key == "exc_info" else MAX_FIELD_CHARS) // self._scale
                if len(value) > limit:
                    log_data[key] = (
                        value[: limit // 2] + " ... " + value[-limit // 2 :]
                        if key == "exc_info"  # keep the top and the innermost frames
                        else shorten(value, limit - 30)
                    )
        return super().process_log_record(log_data)


def formatter() -> JsonFormatter:
    """The JSON formatter every handler uses (UTC ISO 8601 ``timestamp``, renamed fields)."""
    return BoundedJsonFormatter(
        FORMAT, rename_fields=RENAMED, timestamp=True, json_ensure_ascii=False
    )


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
            "django.server": {"level": "INFO", "propagate": True},  # runserver: JSON too
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
