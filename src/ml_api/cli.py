"""The ``ml-api`` command: train, import, serve, predict, info, versions, promote.

Run ``ml-api COMMAND --help`` for each command's options. Every command reads the same settings
(``ML_API_*`` variables, ``.env``) as the server; options given here override them.
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, cast

import click

if TYPE_CHECKING:
    from ml_api.composition import Application
    from ml_api.settings import Settings

# Imports of ml_api's own modules, pydantic, pandas and scikit-learn are made inside the commands
# that need them: `ml-api --help` loads click alone, and `train --if-missing` with a model
# present returns before pandas or scikit-learn are imported (docs/development.md).

FRAMEWORKS = ("flask", "django")
SERVERS = ("gunicorn", "granian")
DEFAULT_ALIAS = "production"
"""``ml_api.core.artifact.DEFAULT_ALIAS``, repeated so ``--help`` need not import the core."""
VERSION_HELP = (
    f"Version or alias (default: ML_API_MODEL_VERSION, else the '{DEFAULT_ALIAS}' alias if set, "
    "else the newest)."
)
"""Every ``--version`` option's help: what ``resolve_version_dir`` loads without one."""


def _settings(**overrides: Any) -> Settings:
    from ml_api.settings import Settings

    values = {k: v for k, v in overrides.items() if v is not None}
    return Settings(**values)


def _has_version(root: Path, name: str) -> bool:
    """``bool(ml_api.core.artifact.list_versions(root, name))`` without importing the core."""
    base = root / name
    return base.is_dir() and any(
        p.name.isdigit() and (p / "metadata.json").is_file() for p in base.iterdir()
    )


def model_name_for(data: Path) -> str:
    """The model name ``train --data FILE`` uses without ``--name``: the file's stem.

    Characters an artifact name cannot hold become ``-`` (``My Houses.csv`` -> ``My-Houses``), so
    a model trained on another file never lands under the default name by accident.
    """
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", Path(data).stem).strip("-.")
    return name or "model"


def _fail(message: str, code: int = 2) -> NoReturn:
    click.echo(f"ml-api: error: {message}", err=True)
    sys.exit(code)


def _load_service(settings: Settings) -> Any:
    """Load the configured model for ``info``/``predict``; one line and exit 1 if it cannot be.

    An artifact that loads but is malformed (a model that fails its warm-up prediction, a card
    that does not match the model) is reported like a missing one: one line naming the path, no
    traceback.
    """
    from ml_api.composition import build
    from ml_api.core.artifact import ArtifactError

    try:
        return build(settings).service
    except ArtifactError as exc:
        _fail(str(exc), code=1)
    except Exception as exc:  # any fault of a malformed artifact is one line
        _fail(_malformed(settings, exc), code=1)


def _malformed(settings: Settings, exc: BaseException) -> str:
    """One line for an artifact that loaded but cannot serve, naming its path."""
    path = settings.resolved_model_root() / settings.model_name
    if settings.model_version:
        path = path / settings.model_version
    first = (str(exc).strip().splitlines() or [""])[0][:300]
    return f"the model in {path} is malformed and cannot predict: {type(exc).__name__}: {first}"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Train a scikit-learn model and serve it as a prediction API."""


@main.command()
@click.option(
    "--data",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Training CSV (default: the bundled Palmer penguins data).",
)
@click.option("--target", default=None, help="Target column (default for penguins: species).")
@click.option(
    "--name",
    "model_name",
    default=None,
    help="Model name (default: the --data file's name without .csv, so my-houses.csv trains "
    "'my-houses'; without --data, ML_API_MODEL_NAME, i.e. penguins).",
)
@click.option(
    "--task",
    type=click.Choice(["classification", "regression"]),
    default=None,
    help="Override the task inferred from the target.",
)
@click.option(
    "--estimator",
    type=click.Choice(["linear", "random_forest", "hist_gradient_boosting"]),
    default="linear",
    show_default=True,
    help="linear = logistic regression (classification) or ridge (regression).",
)
@click.option("--drop", multiple=True, help="Column to leave out of the features (repeatable).")
@click.option(
    "--keep",
    multiple=True,
    help="Keep a column train would leave out as an identifier or a date (repeatable).",
)
@click.option("--categorical", multiple=True, help="Treat a column as categorical (repeatable).")
@click.option("--numeric", multiple=True, help="Treat a column as numeric; every value must parse.")
@click.option(
    "--nullable",
    multiple=True,
    help="Accept null for this feature at serving although the training data had no missing "
    "value there; the pipeline imputes it (repeatable).",
)
@click.option("--test-size", type=click.FloatRange(0.05, 0.5), default=0.2, show_default=True)
@click.option("--seed", type=int, default=42, show_default=True)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["joblib", "skops"]),
    default="joblib",
    show_default=True,
    help="skops files load without executing code.",
)
@click.option(
    "--model-root",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where artifacts go (default: ML_API_MODEL_ROOT or ./models of the checkout).",
)
@click.option("--if-missing", is_flag=True, help="Do nothing when the model already has a version.")
def train(
    data: Path | None,
    target: str | None,
    model_name: str | None,
    task: str | None,
    estimator: str,
    drop: tuple[str, ...],
    keep: tuple[str, ...],
    categorical: tuple[str, ...],
    numeric: tuple[str, ...],
    nullable: tuple[str, ...],
    test_size: float,
    seed: int,
    fmt: str,
    model_root: Path | None,
    if_missing: bool,
) -> None:
    """Train a model on a CSV file and save it as a new artifact version.

    Prints the features it used (kind, categories or range, missing share), the columns it left
    out and why (identifiers and date/time strings are left out unless --keep), and the rows
    dropped for a missing target.
    """
    if data is not None and model_name is None:
        model_name = model_name_for(data)
    settings = _settings(model_root=model_root, model_name=model_name)
    root = settings.resolved_model_root()
    if data is not None and target is None:
        _fail("--target is required with --data")
    if if_missing and _has_version(root, settings.model_name):
        click.echo(f"model {settings.model_name!r} already exists in {root}; not retraining")
        return
    from ml_api import preprocess
    from ml_api.settings import project_root
    from ml_api.train import Task
    from ml_api.train import train as run_training

    if data is None:
        data = preprocess.PENGUINS_CSV
        target = target or preprocess.PENGUINS_TARGET
        drop = drop or preprocess.PENGUINS_DROP
    assert target is not None  # given with --data, defaulted without it
    serving_before = _serving_card(root, settings.model_name, settings.model_version)
    try:
        result = run_training(
            data,
            target,
            model_root=root,
            name=settings.model_name,
            processed_dir=project_root() / "data" / "processed" / settings.model_name,
            task=cast("Task | None", task),
            estimator=estimator,
            drop=drop,
            keep=keep,
            categorical=categorical,
            numeric=numeric,
            nullable=nullable,
            test_size=test_size,
            seed=seed,
            fmt=fmt,  # type: ignore[arg-type]
        )
    except (KeyError, ValueError) as exc:
        _fail(str(exc).strip("'\""))
    meta = result.metadata
    _echo_columns(result)
    if meta["training"]["marked_nullable"]:
        marked = ", ".join(meta["training"]["marked_nullable"])
        click.echo(f"null accepted at serving (--nullable; the pipeline imputes it): {marked}")
    click.echo(f"trained {meta['estimator_class']} ({meta['task']}) on {data}")
    click.echo("held-out metrics: " + ", ".join(f"{k}={v:.4f}" for k, v in result.metrics.items()))
    click.echo(runtime_line(meta))
    click.echo(f"saved {result.path}")
    serves = _echo_comparison(
        result, serving_before, root, settings.model_name, settings.model_version
    )
    pin = None if serves else result.path.name
    click.echo(f"serve it with: {_serve_command(settings.model_name, model_root, pin)}")


def runtime_line(card: dict[str, Any]) -> str:
    """One line saying which runtime serves a version just saved (train and import print it).

    ONNX Runtime where the ONNX form passed the acceptance gate (``ml_api.onnx_export``), else
    scikit-learn, with the gate's (or the converter's) reason.
    """
    onnx = card["onnx"]
    if onnx["passed"]:
        gate = onnx["gate"]
        return (
            f"ONNX form passed the gate on all {gate['rows']} rows (largest difference "
            f"{gate['max_abs_diff']:.1e}): served by ONNX Runtime (ML_API_RUNTIME=auto)"
        )
    return f"scikit-learn serves ({onnx['reason']})"


def _serve_command(name: str, model_root: Path | None, version: str | None = None) -> str:
    """The ``ml-api serve`` line for a model just saved, with the options it was saved with."""
    line = f"ml-api serve --name {name}"
    if version is not None:
        line += f" --version {version}"
    if model_root is not None:
        line += f" --model-root {model_root}"
    return line


def _serving_card(root: Path, name: str, version: str | None) -> dict[str, Any] | None:
    """The card of the version ``serve`` would load now (alias or newest), if there is one."""
    from ml_api.core.artifact import ArtifactError, resolve_version_dir

    try:
        return json.loads((resolve_version_dir(root, name, version) / "metadata.json").read_text())
    except (ArtifactError, OSError, ValueError):
        return None


def _echo_comparison(
    result: Any, before: dict[str, Any] | None, root: Path, name: str, version: str | None
) -> bool:
    """Print how the new version compares with the one that was serving; return if it serves."""
    new = result.metadata
    new_version = result.path.name
    if before is None:
        click.echo(f"version {new_version} is the first of {name!r}: it serves")
        return True
    old = before.get("metrics") or {}
    deltas = [
        f"{k} {old[k]:.4f} -> {v:.4f} ({v - old[k]:+.4f})"
        for k, v in result.metrics.items()
        if isinstance(old.get(k), int | float)
    ]
    same_data = before.get("training", {}).get("data_sha256") == new["training"]["data_sha256"]
    note = "" if same_data else " (trained on other data: metrics are not comparable)"
    click.echo(
        f"compared with version {before.get('version')}, which was serving{note}: "
        + ("; ".join(deltas) or "no common metric")
    )
    now = _serving_card(root, name, version)
    if now is None or str(now.get("version")) == new_version:
        click.echo(f"version {new_version} serves now (newest; no production alias is set)")
        return True
    click.echo(
        f"version {now.get('version')} still serves (the production alias or "
        f"ML_API_MODEL_VERSION); to serve this one: ml-api promote {name} {new_version}"
    )
    return False


def _echo_columns(result: Any) -> None:
    """The feature table, the columns left out and why, and the rows without a target."""
    training = result.metadata["training"]
    missing = training["missing_share"]
    rows = []
    for f in result.metadata["features"]:
        if f["kind"] == "categorical":
            cats = f["categories"]
            shown = ", ".join(cats[:6]) + (f", ... ({len(cats)} in all)" if len(cats) > 6 else "")
        else:
            shown = f"{f['minimum']:g} to {f['maximum']:g}"
        rows.append((f["name"], f["kind"], shown, f"{100 * missing[f['name']]:.1f}%"))
    widths = [
        max(len(r[i]) for r in [("feature", "kind", "values", "missing"), *rows]) for i in (0, 1)
    ]
    click.echo(f"features ({len(rows)}):")
    click.echo(f"  {'name':<{widths[0]}}  {'kind':<{widths[1]}}  missing  values")
    for name, kind, shown, miss in rows:
        click.echo(f"  {name:<{widths[0]}}  {kind:<{widths[1]}}  {miss:>7}  {shown}")
    for name, distinct in result.code_hints.items():
        click.echo(
            f"  {name}: numeric, {distinct} distinct integers: if these are codes, not "
            f"quantities, train with --categorical {name}"
        )
    left = training["left_out"]
    if left:
        click.echo(f"left out ({len(left)}):")
        for c in left:
            click.echo(f"  {c['name']}: {c['reason']}")
    n = training["rows_without_target"]
    click.echo(
        f"rows dropped for a missing target {result.metadata['target']!r}: {n}"
        if n
        else "rows dropped for a missing target: none"
    )


@main.command("import")
@click.argument("model_path", type=click.Path(path_type=Path))
@click.option(
    "--data",
    type=click.Path(path_type=Path),
    default=None,
    help="Sample CSV with the model's feature columns (and the target); an MLflow model's input "
    "example when omitted.",
)
@click.option("--target", default=None, help="Target column in --data: metrics go into the card.")
@click.option("--name", "model_name", required=True, help="Model name to create a version of.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["joblib", "skops"]),
    default="joblib",
    show_default=True,
    help="Artifact format (skops: scikit-learn-only models, loads without executing code).",
)
@click.option(
    "--trust",
    multiple=True,
    metavar="TYPE",
    help="A type a skops file may hold besides scikit-learn/numpy/scipy ones (repeatable).",
)
@click.option(
    "--model-root",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where artifacts go (default: ML_API_MODEL_ROOT or ./models of the checkout).",
)
def import_(
    model_path: Path,
    data: Path | None,
    target: str | None,
    model_name: str,
    fmt: str,
    trust: tuple[str, ...],
    model_root: Path | None,
) -> None:
    """Import a fitted model (joblib/pickle, skops, MLflow directory) as a new version.

    MODEL_PATH holds a fitted scikit-learn estimator or Pipeline, or an XGBoost or LightGBM
    scikit-learn model. The model predicts on the data through the server's own path before
    anything is written; a model the server could not serve is refused.
    """
    from ml_api.importing import RUNS_CODE_WARNING, ImportRefused, import_model

    settings = _settings(model_root=model_root)
    if model_path.suffix != ".skops":  # joblib/pickle files and MLflow directories
        click.echo(f"note: {RUNS_CODE_WARNING}", err=True)
    try:
        result = import_model(
            model_path,
            data,
            name=model_name,
            target=target,
            model_root=settings.resolved_model_root(),
            fmt=fmt,  # type: ignore[arg-type]
            trust=trust,
        )
    except ImportRefused as exc:
        _fail(str(exc), code=1)
    meta = result.metadata
    click.echo(
        f"imported {meta['estimator_class']} ({meta['task']}) from {model_path}: "
        f"{len(meta['features'])} features "
        f"(names from {meta['provenance']['feature_names_and_order']})"
    )
    click.echo(
        f"checked: the server's predictions on {meta['import_data']['served_check_rows']} "
        f"data rows equal the model's own"
    )
    if result.metrics:
        click.echo(
            "metrics on the import data (may include rows seen in training): "
            + ", ".join(f"{k}={v:.4f}" for k, v in result.metrics.items())
        )
    for line in meta["provenance"].get("unseen_categories", {}).values():
        click.echo(line)
    click.echo(runtime_line(meta))
    click.echo(f"saved {result.path}")
    click.echo(f"serve it with: {_serve_command(model_name, model_root)}")


@main.command()
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

    settings = _settings(
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
    from ml_api.core.artifact import ArtifactError
    from ml_api.serving.gunicorn_app import remove_own_metrics_dir

    try:
        return build(settings)
    except (ArtifactError, OSError) as exc:
        logging.getLogger("ml_api.serve").critical("cannot serve: %s", exc)
        remove_own_metrics_dir()
        sys.exit(1)
    except Exception as exc:  # a malformed artifact: one line, no traceback
        logging.getLogger("ml_api.serve").critical("cannot serve: %s", _malformed(settings, exc))
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


@main.command()
@click.option(
    "--input",
    "input_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
)
@click.option(
    "--output",
    "output_path",
    required=True,
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
)
@click.option("--name", "model_name", default=None)
@click.option("--version", "model_version", default=None, help=VERSION_HELP)
@click.option("--model-root", type=click.Path(file_okay=False, path_type=Path), default=None)
@click.option("--chunk-rows", type=click.IntRange(1), default=5000, show_default=True)
@click.option(
    "--out-of-range",
    type=click.Choice(["accept", "warn", "reject"]),
    default=None,
    help="Values outside the training range: warn (one line on stderr), reject (refuse the "
    "file) or accept (default: ML_API_OUT_OF_RANGE, else warn).",
)
@click.option("--quiet", is_flag=True, help="No progress bar and no summary line; errors only.")
def predict(
    input_path: Path,
    output_path: Path,
    model_name: str | None,
    model_version: str | None,
    model_root: Path | None,
    chunk_rows: int,
    out_of_range: str | None,
    quiet: bool,
) -> None:
    """Score a CSV (also .csv.gz) or Parquet file; the output's name picks its format.

    Same validation as the API; errors name 1-based data rows. On a terminal a progress bar shows
    rows, rows/s and the time left; otherwise one summary line with rows/s is printed at the end.
    """
    import time

    import pandas as pd

    from ml_api.core.errors import ServingError
    from ml_api.core.ranges import OutOfRangeInput
    from ml_api.predict import UNREADABLE_INPUT, count_rows, score_file

    settings = _settings(
        model_root=model_root,
        model_name=model_name,
        model_version=model_version,
        out_of_range=out_of_range,
    )
    service = _load_service(settings)
    outside: Counter[str] = Counter()
    bar = None
    started = time.perf_counter()
    try:
        if not quiet and sys.stderr.isatty():
            from tqdm import tqdm

            bar = tqdm(
                total=count_rows(input_path),
                desc="scoring",
                unit=" rows",
                unit_scale=True,
                file=sys.stderr,
                dynamic_ncols=True,
            )
        scored = score_file(
            service,
            input_path,
            output_path,
            chunk_rows=chunk_rows,
            on_chunk=bar.update if bar is not None else None,
            on_out_of_range=lambda found: outside.update(found.counts),
        )
    except OutOfRangeInput as exc:
        rows = sorted({int(i) for i in exc.report.instances})
        shown = ", ".join(map(str, rows[:10]))
        if len(rows) > 10:
            shown += f" and {len(rows) - 10} more"
        first = exc.details[0]
        _fail(
            f"refused (out-of-range policy reject): values outside the training range in "
            f"rows {shown}; first: row {first.instance}, column {first.field}: {first.problem}",
            code=1,
        )
    except ServingError as exc:
        n = len(exc.details)
        capped = " (the first 50)" if n >= 50 else ""
        by_row = any(p.instance is not None for p in exc.details)
        headline = (
            f"{n} problem{'s' if n != 1 else ''}{capped} in {input_path}:"
            if by_row
            else exc.message
        )
        lines = [headline] + [
            f"  row {p.instance}, column {p.field}: {p.problem}"
            if p.instance is not None
            else f"  column {p.field}: {p.problem}"
            for p in exc.details
        ]
        _fail("\n".join(lines), code=1)
    except pd.errors.EmptyDataError:
        _fail(f"cannot read {input_path}: the file is empty (a CSV needs a header row)", code=1)
    except UNREADABLE_INPUT as exc:
        _fail(f"cannot read {input_path}: {exc}", code=1)
    except OSError as exc:  # e.g. the output's folder does not exist
        _fail(f"cannot write {output_path}: {exc.strerror or exc}", code=1)
    finally:
        if bar is not None:
            bar.close()
    if outside:
        per_feature = ", ".join(f"{name} {count}" for name, count in outside.items())
        click.echo(
            f"warning: values outside the training range (the model extrapolates): "
            f"{per_feature} ({sum(outside.values())} in all); "
            f"set ML_API_OUT_OF_RANGE=reject to refuse them, accept to stay silent",
            err=True,
        )
    seconds = time.perf_counter() - started
    if not quiet:
        rate = scored / seconds if seconds > 0 else 0.0
        click.echo(
            f"scored {scored} rows with {service.artifact.name} version "
            f"{service.artifact.version} in {seconds:.1f} s ({rate:,.0f} rows/s); "
            f"wrote {output_path}"
        )


@main.command()
@click.option("--name", "model_name", default=None)
@click.option("--version", "model_version", default=None, help=VERSION_HELP)
@click.option("--model-root", type=click.Path(file_okay=False, path_type=Path), default=None)
def info(model_name: str | None, model_version: str | None, model_root: Path | None) -> None:
    """Verify a model version and print its card as JSON."""
    settings = _settings(model_root=model_root, model_name=model_name, model_version=model_version)
    service = _load_service(settings)
    click.echo(json.dumps(service.metadata(), indent=2))


@main.command()
@click.option("--name", "model_name", default=None)
@click.option("--version", "model_version", default=None, help=VERSION_HELP)
@click.option("--model-root", type=click.Path(file_okay=False, path_type=Path), default=None)
@click.option(
    "--output",
    "output_path",
    required=True,
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="The card file (card.html, or README.md with --format markdown).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["html", "markdown"]),
    default="html",
    show_default=True,
    help="markdown writes the charts as SVG files into <output stem>_charts/ beside it.",
)
def card(
    model_name: str | None,
    model_version: str | None,
    model_root: Path | None,
    output_path: Path,
    fmt: str,
) -> None:
    """Write a model version's card for people: the GET /model page, or Markdown."""
    from ml_api.core.artifact import ArtifactError, load_artifact
    from ml_api.core.card_page import CardContent, read_charts, render_html, render_markdown

    settings = _settings(model_root=model_root, model_name=model_name, model_version=model_version)
    try:
        artifact = load_artifact(
            settings.resolved_model_root(),
            settings.model_name,
            settings.model_version,
            allow_version_mismatch=True,  # the card is read, the model is not run
        )
    except ArtifactError as exc:
        _fail(str(exc), code=1)
    charts = read_charts(artifact.card, artifact.path)
    content = CardContent.from_card(artifact.card, charts)
    if fmt == "html":
        output_path.write_text(render_html(content), encoding="utf-8")
        written = [output_path]
    else:
        folder = output_path.with_name(f"{output_path.stem}_charts")
        paths = {}
        written = []
        for chart in charts:
            target = folder / Path(chart.file).name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(chart.svg)
            paths[chart.file] = f"{folder.name}/{target.name}"
            written.append(target)
        output_path.write_text(render_markdown(content, paths), encoding="utf-8")
        written.insert(0, output_path)
    click.echo(
        f"wrote the card of {artifact.name} version {artifact.version}: "
        + ", ".join(map(str, written))
    )


def _size(n_bytes: int) -> str:
    size = float(n_bytes)
    for unit in ("B", "kB", "MB"):
        if size < 1000:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} GB"


def _runtime(card: dict[str, Any]) -> str:
    if card.get("runtime"):
        return str(card["runtime"])
    fmt = card.get("model_file", {}).get("format", "joblib")
    return f"scikit-learn {card.get('versions', {}).get('scikit-learn', '?')} ({fmt})"


def _metrics(card: dict[str, Any]) -> str:
    return " ".join(f"{k}={v:.4f}" for k, v in (card.get("metrics") or {}).items())


@main.command()
@click.argument("name", required=False)
@click.option("--model-root", type=click.Path(file_okay=False, path_type=Path), default=None)
def versions(name: str | None, model_root: Path | None) -> None:
    """List a model's versions side by side, and which one serves by default.

    NAME defaults to ML_API_MODEL_NAME. Columns: version, created (UTC), estimator, held-out
    metrics, runtime, model file size, aliases ("serves" marks what 'serve' loads without
    --version: the 'production' alias if set, else the newest).
    """
    from ml_api.core.artifact import ArtifactError, list_versions, read_aliases, resolve_version_dir

    settings = _settings(model_root=model_root, model_name=name)
    root, name = settings.resolved_model_root(), settings.model_name
    try:
        found = list_versions(root, name)
        aliases = read_aliases(root, name)
        serving = resolve_version_dir(root, name).name if found else None
    except ArtifactError as exc:
        _fail(str(exc), code=1)
    if not found:
        _fail(f"no model {name!r} in {root / name}: train one with 'ml-api train'", code=1)
    header = ("version", "created", "estimator", "metrics", "runtime", "size", "aliases")
    rows = []
    for v in found:
        card = json.loads((root / name / str(v) / "metadata.json").read_text())
        marks = sorted(a for a, t in aliases.items() if t == v)
        if str(v) == serving:
            marks.append("serves")
        rows.append(
            (
                str(v),
                str(card.get("created_at", "")).replace("+00:00", "Z"),
                str(card.get("estimator_class", card.get("estimator", ""))),
                _metrics(card),
                _runtime(card),
                _size(int(card.get("model_file", {}).get("bytes", 0))),
                ", ".join(marks),
            )
        )
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
    for row in (header, *rows):
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


@main.command()
@click.argument("name")
@click.argument("version", required=False)
@click.option(
    "--alias",
    default=DEFAULT_ALIAS,
    show_default=True,
    help="Alias to set (serve honours production).",
)
@click.option("--unset", is_flag=True, help="Remove the alias (then the newest version serves).")
@click.option("--model-root", type=click.Path(file_okay=False, path_type=Path), default=None)
def promote(
    name: str, version: str | None, alias: str, unset: bool, model_root: Path | None
) -> None:
    """Make VERSION of model NAME the one that serves (sets the 'production' alias).

    'serve', the image and the Kubernetes kit load the version the 'production' alias names
    ('models/NAME/aliases.json', replaced atomically); 'ML_API_MODEL_VERSION' may name any
    alias. A running server keeps its model: restart it (or roll the Deployment) to switch.
    """
    from ml_api.core.artifact import ArtifactError, read_aliases, set_alias

    if (version is None) != unset:
        _fail("give a VERSION, or --unset to remove the alias")
    if version is not None and not version.isdigit():
        _fail(f"VERSION must be a version number (see 'ml-api versions {name}'), got {version!r}")
    root = _settings(model_root=model_root).resolved_model_root()
    try:
        before = read_aliases(root, name).get(alias)
        set_alias(root, name, alias, None if version is None else int(version))
    except (ArtifactError, ValueError) as exc:
        _fail(str(exc), code=1)
    was = f"was version {before}" if before is not None else "was unset"
    if unset:
        click.echo(f"{name}: removed alias {alias} ({was}); the newest version serves")
    else:
        click.echo(f"{name}: {alias} -> version {version} ({was})")


if __name__ == "__main__":  # pragma: no cover
    main()
