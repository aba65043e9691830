"""The ``ml-api`` command: ``train``, ``serve``, ``predict``, ``info``.

Run ``ml-api COMMAND --help`` for each command's options. Every command reads the same settings
(``ML_API_*`` variables, ``.env``) as the server; options given here override them.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, cast

import click

from ml_api.core.artifact import ArtifactError, list_versions
from ml_api.core.errors import ServingError
from ml_api.settings import Settings, project_root

if TYPE_CHECKING:
    from ml_api.composition import Application

FRAMEWORKS = ("flask", "django")


def _settings(**overrides: Any) -> Settings:
    values = {k: v for k, v in overrides.items() if v is not None}
    return Settings(**values)


def _fail(message: str, code: int = 2) -> NoReturn:
    click.echo(f"ml-api: error: {message}", err=True)
    sys.exit(code)


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
    help="Model name (default: ML_API_MODEL_NAME, i.e. penguins).",
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
    test_size: float,
    seed: int,
    fmt: str,
    model_root: Path | None,
    if_missing: bool,
) -> None:
    """Train a model on a CSV file and save it as a new artifact version."""
    from ml_api import preprocess
    from ml_api.train import Task
    from ml_api.train import train as run_training

    settings = _settings(model_root=model_root, model_name=model_name)
    root = settings.resolved_model_root()
    if data is None:
        data = preprocess.PENGUINS_CSV
        target = target or preprocess.PENGUINS_TARGET
        drop = drop or preprocess.PENGUINS_DROP
    if target is None:
        _fail("--target is required with --data")
    if if_missing and list_versions(root, settings.model_name):
        click.echo(f"model {settings.model_name!r} already exists in {root}; not retraining")
        return
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
            test_size=test_size,
            seed=seed,
            fmt=fmt,  # type: ignore[arg-type]
        )
    except (KeyError, ValueError) as exc:
        _fail(str(exc).strip("'\""))
    meta = result.metadata
    click.echo(f"trained {meta['estimator_class']} ({meta['task']}) on {data}")
    click.echo("held-out metrics: " + ", ".join(f"{k}={v:.4f}" for k, v in result.metrics.items()))
    click.echo(f"saved {result.path}")


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
@click.option("--version", "model_version", default=None, help="Version (default: newest).")
@click.option("--model-root", type=click.Path(file_okay=False, path_type=Path), default=None)
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
    dev: bool,
) -> None:
    """Serve the model over HTTP with gunicorn (or a development server with --dev).

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
    )
    if not dev:
        prepare_metrics_dir()  # before anything imports prometheus_client
    from ml_api.serving.logging import configure_logging

    configure_logging(settings.log_level)
    application = _compose_or_exit(settings)
    factory = _app_factory(settings.framework, application)
    bound_port = settings.bind_port()
    _log_start(application, host, bound_port)
    if dev:
        _serve_dev(settings.framework, factory, host, bound_port)
        return
    _serve_gunicorn(application, factory, host)


def _compose_or_exit(settings: Settings) -> Application:
    """Build the application in this (the future gunicorn master) process, or exit 1."""
    import logging

    from ml_api.composition import build
    from ml_api.serving.gunicorn_app import remove_own_metrics_dir

    try:
        return build(settings)
    except (ArtifactError, OSError) as exc:
        logging.getLogger("ml_api.serve").critical("cannot serve: %s", exc)
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
@click.option("--version", "model_version", default=None)
@click.option("--model-root", type=click.Path(file_okay=False, path_type=Path), default=None)
@click.option("--chunk-rows", type=click.IntRange(1), default=5000, show_default=True)
@click.option("--quiet", is_flag=True, help="No progress bar and no summary line; errors only.")
def predict(
    input_path: Path,
    output_path: Path,
    model_name: str | None,
    model_version: str | None,
    model_root: Path | None,
    chunk_rows: int,
    quiet: bool,
) -> None:
    """Score a CSV (also .csv.gz) or Parquet file; the output's name picks its format.

    Same validation as the API; errors name 1-based data rows. On a terminal a progress bar shows
    rows, rows/s and the time left; otherwise one summary line with rows/s is printed at the end.
    """
    import time

    import pandas as pd

    from ml_api.composition import build
    from ml_api.predict import count_rows, score_file

    settings = _settings(model_root=model_root, model_name=model_name, model_version=model_version)
    try:
        service = build(settings).service
    except ArtifactError as exc:
        _fail(str(exc), code=1)
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
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, EOFError) as exc:
        _fail(f"cannot score {input_path} into {output_path}: {exc}", code=1)
    finally:
        if bar is not None:
            bar.close()
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
@click.option("--version", "model_version", default=None)
@click.option("--model-root", type=click.Path(file_okay=False, path_type=Path), default=None)
def info(model_name: str | None, model_version: str | None, model_root: Path | None) -> None:
    """Verify a model version and print its card as JSON."""
    from ml_api.composition import build

    settings = _settings(model_root=model_root, model_name=model_name, model_version=model_version)
    try:
        service = build(settings).service
    except ArtifactError as exc:
        _fail(str(exc), code=1)
    click.echo(json.dumps(service.metadata(), indent=2))


@main.command()
@click.option("--name", "model_name", default=None)
@click.option("--version", "model_version", default=None, help="Default: the newest.")
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
    from ml_api.core.artifact import load_artifact
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


if __name__ == "__main__":  # pragma: no cover
    main()
