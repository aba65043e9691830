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
from datetime import UTC, datetime
from itertools import filterfalse
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
    """python-json-logger's formatter, with every string field shortened (lines stay bounded).

    Its output is python-json-logger's ``JsonFormatter(FORMAT, rename_fields=RENAMED,
    timestamp=True, json_ensure_ascii=False)`` line for line, byte for byte (the tests compare
    them), at about half the cost per record (an access record is written for every request):
    the extra fields are merged in one pass, the timestamp is formatted as text here (the same
    ISO 8601 text the library's encoder writes through its per-object fallback), and a line short
    enough that no field can need shortening is written on the first pass.
    """

    _scale = 1

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        timestamp = kwargs.pop("timestamp", False)
        super().__init__(*args, timestamp=False, **kwargs)
        self._timestamp_key = (
            (timestamp if isinstance(timestamp, str) else "timestamp") if timestamp else None
        )

    def format(self, record: logging.LogRecord) -> str:
        """Format as one JSON line of at most :data:`MAX_LINE_BYTES` bytes.

        A line of at most :data:`MAX_FIELD_CHARS` characters has no field to shorten (each field
        is part of the line) and is at most 4 bytes a character: it is final. A longer one is
        formatted again with its fields shortened, and if still over the bound (text that
        escapes to several bytes per character), with fields ten times shorter.
        """
        self._scale = 0
        line = super().format(record)
        if len(line) <= MAX_FIELD_CHARS:
            return line
        self._scale = 1
        line = super().format(record)
        if len(line.encode()) > MAX_LINE_BYTES:
            self._scale = 10
            line = super().format(record)
        return line

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        """python-json-logger's ``add_fields``: its fields, in its order, timestamp as text.

        Defaults, ``fmt`` fields, static fields and a message dict, the record's extra attributes
        (not reserved, not ``_private``, merged in one pass), then the timestamp.
        """
        rename = self.rename_fields
        for key, value in self.defaults.items():
            log_data[rename.get(key, key)] = value
        fields = record.__dict__
        for key in self._required_fields:
            log_data[rename.get(key, key)] = fields.get(key)
        for data in (self.static_fields, message_dict):
            for key, value in data.items():
                log_data[rename.get(key, key)] = value
        for key in filterfalse(self._skip_fields.__contains__, fields):
            if not (isinstance(key, str) and key.startswith("_")):
                log_data[rename.get(key, key)] = fields[key]
        if self._timestamp_key is not None:
            stamp = datetime.fromtimestamp(record.created, tz=UTC).isoformat()
            log_data[rename.get(self._timestamp_key, self._timestamp_key)] = stamp
        if self.rename_fields_keep_missing:
            for field in rename.values():
                log_data.setdefault(field, None)

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
        if self._scale:
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


def lighten_records() -> None:
    """Stop filling the :class:`logging.LogRecord` attributes no ml-api line shows.

    The calling file, line and function (a walk up the stack), the thread's name, the process id
    (a system call) and the multiprocessing process name are reserved attributes the JSON
    formatter never writes; the logging HOWTO's "Optimization" section names these switches.
    Records of this process then carry ``None`` (or ``"(unknown file)"``) there instead.
    """
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False


def configure_logging(level: str = "INFO") -> None:
    """Route this process's logs, warnings and uncaught exceptions to JSON lines on stdout.

    Records skip what no line shows (:func:`lighten_records`).
    """
    lighten_records()
    logging.config.dictConfig(logging_dict(level))
    logging.captureWarnings(True)

    def _log_uncaught(exc_type: type[BaseException], exc: BaseException, tb: Any) -> None:
        if issubclass(exc_type, KeyboardInterrupt):
            sys.__excepthook__(exc_type, exc, tb)
            return
        logging.getLogger("ml_api").critical("uncaught exception", exc_info=(exc_type, exc, tb))

    sys.excepthook = _log_uncaught
