"""Fuzz targets: both WSGI apps fed raw HTTP requests, and the batch scorer fed raw files.

Each target takes one input (bytes) and raises :class:`InvariantBroken` (or lets an unexpected
exception through) when ml-api misbehaves; the coverage-guided fuzzer (``tests/fuzz/atheris_main``,
atheris) and the seed replay (``test_coverage_fuzz.py``) call the same targets.

- ``flask`` / ``django``: the input is an HTTP/1.1 request as a client writes it (request line,
  header lines, blank line, body). It is turned into the WSGI environ gunicorn would build (a
  request gunicorn itself refuses, such as a malformed request line, a header name outside
  RFC 9110's token characters or a ``Content-Length`` that is not a number, is skipped: it never
  reaches the app) and the app is called. Invariant: never a 5xx, never an exception out of the
  app; every 4xx is ``application/json`` with the documented body (``error`` string,
  ``details`` list of ``{instance, field, problem}``, ``request_id`` string) in strict UTF-8 JSON;
  every header is a latin-1 string without CR or LF.
- ``csv`` / ``parquet``: the input is a file's bytes, scored by ``ml-api predict``'s
  :func:`ml_api.predict.score_file`. Invariant: it scores, or it raises one of the refusals the
  CLI turns into a one-line message (:data:`CLI_REFUSALS`; a ``ServingError`` must be a 4xx).

The model is the penguins classifier, trained once per process into a temporary folder, or the
one under ``ML_API_FUZZ_MODEL_ROOT`` (the test session's) when set; in pytest, :func:`use` hands
the harness the session's settings and service (Django is configured once per process).
"""

from __future__ import annotations

import io
import json
import os
import re
import sys
import tempfile
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import unquote_to_bytes

TARGETS = ("flask", "django", "csv", "parquet")
CORPUS = Path(__file__).resolve().parent / "corpus"
"""Committed seeds: ``corpus/wsgi`` (both apps), ``corpus/csv``, ``corpus/parquet``."""

_TOKEN = re.compile(rb"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_METHOD = re.compile(rb"^[A-Z0-9$\-_.]{3,20}$")  # gunicorn's default method check
_VERSION = re.compile(rb"^HTTP/1\.[01]$")


class InvariantBroken(AssertionError):
    """ml-api answered something its contract rules out (a 5xx, an undocumented error body...)."""


class Skipped(Exception):
    """The input is not a request the real server would pass to the app (gunicorn refuses it)."""


# ---- the apps and the service, built once per process -----------------------------------------


_GIVEN: dict[str, Any] = {}


def use(settings: Any, service: Any) -> None:
    """Serve these settings and this service instead of building them (the pytest session's)."""
    _settings.cache_clear()
    globals()["service"].cache_clear()
    wsgi_app.cache_clear()
    _GIVEN.update(settings=settings, service=service)


@cache
def _settings() -> Any:
    if "settings" in _GIVEN:
        return _GIVEN["settings"]
    from pydantic import SecretStr

    from ml_api.settings import Settings

    root = os.environ.get("ML_API_FUZZ_MODEL_ROOT")
    if not root:
        from ml_api import preprocess
        from ml_api.train import TrainingOptions, train

        root = tempfile.mkdtemp(prefix="ml-api-fuzz-")
        train(
            TrainingOptions(preprocess.PENGUINS_CSV, "species", drop=preprocess.PENGUINS_DROP),
            model_root=Path(root),
            name="penguins",
        )
    return Settings(
        model_root=Path(root),
        model_name="penguins",
        max_body_bytes=65_536,
        max_instances=50,
        secret_key=SecretStr("fuzz-only-" + "x1Y2z3" * 10),
        allowed_hosts=["testserver", "localhost", "127.0.0.1"],
    )


@cache
def service() -> Any:
    """The penguins :class:`~ml_api.core.service.PredictionService` (one per process)."""
    from ml_api.composition import build_scoring

    if "service" in _GIVEN:
        return _GIVEN["service"]
    return build_scoring(_settings())


@cache
def wsgi_app(framework: str) -> Callable[..., Any]:
    """The Flask or the Django WSGI app around :func:`service`."""
    if framework == "flask":
        from ml_api.api.flask_app import create_app

        return create_app(_settings(), service())
    from ml_api.api.django_app import get_wsgi_application

    return get_wsgi_application(_settings(), service())  # type: ignore[no-any-return]


# ---- raw request -> WSGI environ (as gunicorn builds it) ----------------------------------------


def environ_from(data: bytes) -> dict[str, Any]:
    """The WSGI environ gunicorn builds for the raw HTTP request ``data``.

    Raises:
        Skipped: gunicorn refuses the request before any app sees it.
    """
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        head, sep, body = data.partition(b"\n\n")
    lines = head.replace(b"\r\n", b"\n").split(b"\n")
    parts = lines[0].split(b" ")
    if len(parts) != 3 or not _METHOD.match(parts[0]) or not _VERSION.match(parts[2]):
        raise Skipped("request line")
    method, target, version = parts
    if not target.startswith(b"/") or len(target) > 4094:
        raise Skipped("request target")
    path, _, query = target.partition(b"?")
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method.decode("latin-1"),
        "SCRIPT_NAME": "",
        "PATH_INFO": unquote_to_bytes(path).decode("latin-1"),
        "RAW_URI": target.decode("latin-1"),
        "QUERY_STRING": query.decode("latin-1"),
        "SERVER_PROTOCOL": version.decode("latin-1"),
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    chunked = False
    for line in lines[1:101]:
        name, colon, value = line.partition(b":")
        value = value.strip(b" \t")
        if (
            not colon
            or not _TOKEN.match(name)
            or b"_" in name
            or re.search(rb"[\x00-\x08\x0a-\x1f\x7f]", value)
        ):
            raise Skipped("header line")
        key = name.decode("latin-1").upper().replace("-", "_")
        text = value.decode("latin-1")
        if key == "TRANSFER_ENCODING":
            if text.lower() != "chunked":
                raise Skipped("transfer coding")
            chunked = True
            continue
        if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            if key in environ:
                raise Skipped("repeated header")
            environ[key] = text
        else:
            key = "HTTP_" + key
            environ[key] = f"{environ[key]},{text}" if key in environ else text
    if "CONTENT_LENGTH" in environ:
        if chunked or not environ["CONTENT_LENGTH"].isdigit():
            raise Skipped("content length")
        body = body[: int(environ["CONTENT_LENGTH"])]
        environ["CONTENT_LENGTH"] = str(len(body))  # the client sent all it declared
    elif chunked:
        environ["wsgi.input_terminated"] = True  # gunicorn has taken the chunks apart
    else:
        body = b""
    environ["wsgi.input"] = io.BytesIO(body)
    return environ


def call_wsgi(
    app: Callable[..., Any], environ: dict[str, Any]
) -> tuple[int, list[tuple[str, str]], bytes]:
    """Call a WSGI app; return its status code, headers and whole body."""
    started: list[Any] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        started[:] = [status, headers]
        return lambda _data: None

    result = app(environ, start_response)
    try:
        body = b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return int(started[0].split(" ", 1)[0]), started[1], body


def check_response(method: str, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
    """The invariant on one response (see the module docstring).

    Raises:
        InvariantBroken: naming what is wrong.
    """
    if status >= 500:
        raise InvariantBroken(f"{status}: {body[:300]!r}")
    for name, value in headers:
        if not isinstance(value, str) or "\r" in value or "\n" in value:
            raise InvariantBroken(f"header {name!r} is {value!r}")
        value.encode("latin-1")
    if status < 400 or method == "HEAD" or not body:
        return
    media = dict((k.lower(), v) for k, v in headers).get("content-type", "")
    if media != "application/json":
        raise InvariantBroken(f"{status} as {media!r}: {body[:200]!r}")
    try:
        payload = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvariantBroken(f"{status} body is not strict UTF-8 JSON: {exc}") from None
    if (
        not isinstance(payload, dict)
        or set(payload) - {"error", "details", "request_id"}
        or not isinstance(payload.get("error"), str)
        or not isinstance(payload.get("details"), list)
        or not isinstance(payload.get("request_id", ""), str)
        or not all(
            isinstance(p, dict)
            and set(p) == {"instance", "field", "problem"}
            and isinstance(p["problem"], str)
            for p in payload["details"]
        )
    ):
        raise InvariantBroken(f"{status} body is not the documented error shape: {payload!r}")


def http_target(framework: str) -> Callable[[bytes], tuple[int, bytes] | None]:
    """One framework's target: raw request in, checked response out (``None``: skipped)."""
    app = wsgi_app(framework)

    def target(data: bytes) -> tuple[int, bytes] | None:
        try:
            environ = environ_from(data)
        except Skipped:
            return None
        status, headers, body = call_wsgi(app, environ)
        check_response(environ["REQUEST_METHOD"], status, headers, body)
        return status, body

    return target


# ---- the batch scorer ---------------------------------------------------------------------------


def cli_refusals() -> tuple[type[BaseException], ...]:
    """What ``ml-api predict`` reports as a one-line refusal (see ``ml_api.cli.predict``)."""
    import pandas as pd

    from ml_api.core.errors import ServingError
    from ml_api.predict import UNREADABLE_INPUT

    return (ServingError, pd.errors.EmptyDataError, *UNREADABLE_INPUT)


def file_target(suffix: str) -> Callable[[bytes], int | None]:
    """One batch input format's target: file bytes in, rows scored out (``None``: refused)."""
    from ml_api.core.errors import ServingError
    from ml_api.predict import score_file

    refusals = cli_refusals()
    folder = Path(tempfile.mkdtemp(prefix="ml-api-fuzz-files-"))
    source, scored = folder / f"in{suffix}", folder / "out.csv"

    def target(data: bytes) -> int | None:
        source.write_bytes(data)
        try:
            return score_file(service(), source, scored, chunk_rows=7)
        except refusals as exc:
            if isinstance(exc, ServingError) and not 400 <= exc.status.value < 500:
                raise InvariantBroken(f"{exc.status.value}: {exc.message}") from exc
            return None

    return target


def target(name: str) -> Callable[[bytes], Any]:
    """The fuzz target called ``name`` (one of :data:`TARGETS`)."""
    if name in ("flask", "django"):
        return http_target(name)
    return file_target({"csv": ".csv", "parquet": ".parquet"}[name])


def corpus_of(name: str) -> Path:
    """The committed seed folder of target ``name``."""
    return CORPUS / ("wsgi" if name in ("flask", "django") else name)
