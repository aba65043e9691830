"""``ml-api predict``: score a CSV or Parquet file with the same validation as the API."""

from __future__ import annotations

import importlib
import sys
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from ml_api.cli.common import (
    NAME_HELP,
    VERSION_HELP,
    fail,
    load_service,
    model_root_option,
    na_values_option,
    settings_from,
)
from ml_api.core.wording import count

if TYPE_CHECKING:  # imported when run: --help stays quick
    from ml_api.core.errors import ServingError
    from ml_api.core.model.ranges import OutOfRangeInput
    from ml_api.core.service import PredictionService
    from ml_api.settings import Settings

ENGINES = ("local", "spark", "dask")
"""``--engine`` values (as ``ml_api.engines.jobs.ENGINES``; ``--help`` imports click alone)."""


@click.command()
@click.option(
    "--input",
    "input_text",
    required=True,
    type=click.Path(),
    help="Rows to score: a CSV (.csv, .csv.gz) or Parquet file with the model's feature columns.",
)
@click.option(
    "--output",
    "output_text",
    required=True,
    type=click.Path(),
    help="Where the rows go with their predictions; its name picks the format (.csv, .csv.gz, "
    ".parquet).",
)
@click.option("--name", "model_name", default=None, help=NAME_HELP)
@click.option("--version", "model_version", default=None, help=VERSION_HELP)
@model_root_option()
@click.option(
    "--chunk-rows",
    type=click.IntRange(1),
    default=5000,
    show_default=True,
    help="Rows read, validated and predicted at a time (memory is bounded by it).",
)
@click.option(
    "--out-of-range",
    type=click.Choice(["accept", "warn", "reject"]),
    default=None,
    help="Values outside the training range: warn (one line on stderr), reject (refuse the "
    "file) or accept (default: ML_API_OUT_OF_RANGE, else warn).",
)
@click.option("--quiet", is_flag=True, help="No progress bar and no summary line; errors only.")
@click.option(
    "--engine",
    type=click.Choice(ENGINES),
    default="local",
    show_default=True,
    help="local: this process. spark: a Spark job (local mode unless spark-submit or "
    "spark-defaults name a cluster). dask: Dask's scheduler. spark and dask read a file, a "
    "directory or a URL and write a directory of part files (docs/engines.md).",
)
@click.option(
    "--refused",
    "refused_path",
    default=None,
    help="spark and dask: write rows that break the schema here (their columns, row, problems) "
    "instead of failing the run.",
)
@na_values_option(
    "Default: the model card's tokens (what training or import read as missing). Local engine."
)
def predict(
    input_text: str,
    output_text: str,
    model_name: str | None,
    model_version: str | None,
    model_root: Path | None,
    chunk_rows: int,
    out_of_range: str | None,
    quiet: bool,
    engine: str,
    refused_path: str | None,
    na_values: tuple[str, ...],
) -> None:
    """Score a CSV (also .csv.gz) or Parquet file; the output's name picks its format.

    Same validation as the API; errors name 1-based data rows. On a terminal a progress bar shows
    rows, rows/s and the time left; otherwise one summary line with rows/s is printed at the end.
    """
    import time

    settings = settings_from(
        model_root=model_root,
        model_name=model_name,
        model_version=model_version,
        out_of_range=out_of_range,
    )
    if engine != "local" and na_values:
        fail(
            f"--na-values is read by the local engine only: --engine {engine} reads the "
            "model card's missing-value tokens (train or import the model with --na-values)",
            code=2,
        )
    if engine != "local":  # paths as given: a URL (s3a://...) is no local path
        _run_engine(engine, settings, input_text, output_text, refused_path, chunk_rows, quiet)
        return
    input_path, output_path = _local_paths(input_text, output_text, refused_path)
    service = load_service(settings)
    outside: Counter[str] = Counter()
    started = time.perf_counter()
    scored = _score(service, input_path, output_path, chunk_rows, outside, quiet, na_values)
    if outside:
        _warn_out_of_range(outside)
    if not quiet:
        seconds = time.perf_counter() - started
        rate = scored / seconds if seconds > 0 else 0.0
        click.echo(
            f"scored {count(scored, 'row')} with {service.artifact.name} version "
            f"{service.artifact.version} in {seconds:.1f} s ({rate:,.0f} rows/s); "
            f"wrote {output_path}"
        )


def _score(
    service: PredictionService,
    input_path: Path,
    output_path: Path,
    chunk_rows: int,
    outside: Counter[str],
    quiet: bool,
    na_values: tuple[str, ...] = (),
) -> int:
    """Score the file (counting out-of-range values per feature into ``outside``); exit on error.

    Returns:
        The number of rows scored.
    """
    import pandas as pd

    from ml_api.core.errors import ServingError
    from ml_api.core.model.ranges import OutOfRangeInput
    from ml_api.predict import UNREADABLE_INPUT, score_file

    bar = None
    try:
        bar = _progress_bar(input_path, quiet)
        return score_file(
            service,
            input_path,
            output_path,
            chunk_rows=chunk_rows,
            on_chunk=bar.update if bar is not None else None,
            on_out_of_range=lambda found: outside.update(found.counts),
            na_values=na_values or None,
        )
    except OutOfRangeInput as exc:
        _fail_out_of_range(exc)
    except ServingError as exc:
        _fail_problems(exc, input_path)
    except pd.errors.EmptyDataError:
        fail(f"cannot read {input_path}: the file is empty (a CSV needs a header row)", code=1)
    except UNREADABLE_INPUT as exc:
        fail(f"cannot read {input_path}: {exc}", code=1)
    except OSError as exc:  # e.g. the output's folder does not exist
        fail(f"cannot write {output_path}: {exc.strerror or exc}", code=1)
    finally:
        if bar is not None:
            bar.close()


def _progress_bar(input_path: Path, quiet: bool) -> Any:
    """A tqdm bar of the file's rows on stderr when it is a terminal (not quiet), else None."""
    if quiet or not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    from ml_api.predict import count_rows

    return tqdm(
        total=count_rows(input_path),
        desc="scoring",
        unit=" rows",
        unit_scale=True,
        file=sys.stderr,
        dynamic_ncols=True,
    )


def _fail_out_of_range(exc: OutOfRangeInput) -> NoReturn:
    """Exit 1 naming the rows the reject policy refused (the first 10) and the first value."""
    rows = sorted({int(i) for i in exc.report.instances})
    shown = ", ".join(map(str, rows[:10]))
    if len(rows) > 10:
        shown += f" and {len(rows) - 10} more"
    first = exc.details[0]
    fail(
        f"refused (out-of-range policy reject): values outside the training range in "
        f"rows {shown}; first: row {first.instance}, column {first.field}: {first.problem}",
        code=1,
    )


def _fail_problems(exc: ServingError, input_path: Path | str) -> NoReturn:
    """Exit 1 with the error's problems, one line each, by row and column where known."""
    n = len(exc.details)
    capped = " (the first 50)" if n >= 50 else ""
    by_row = any(p.instance is not None for p in exc.details)
    headline = (
        f"{n} problem{'s' if n != 1 else ''}{capped} in {input_path}:" if by_row else exc.message
    )
    lines = [headline] + [
        f"  row {p.instance}, column {p.field}: {p.problem}"
        if p.instance is not None
        else f"  column {p.field}: {p.problem}"
        for p in exc.details
    ]
    fail("\n".join(lines), code=1)


def _warn_out_of_range(outside: Counter[str]) -> None:
    """Say on stderr how many values per feature were outside the training range."""
    per_feature = ", ".join(f"{name} {count}" for name, count in outside.items())
    click.echo(
        f"warning: values outside the training range (the model extrapolates): "
        f"{per_feature} ({sum(outside.values())} in all); "
        f"set ML_API_OUT_OF_RANGE=reject to refuse them, accept to stay silent",
        err=True,
    )


def _local_paths(input_text: str, output_text: str, refused: str | None) -> tuple[Path, Path]:
    """The local scorer's file paths; exit 2 for a directory, a missing input or --refused."""
    if refused is not None:
        fail("--refused needs --engine spark or dask (ml-api predict refuses the whole file)")
    input_path, output_path = Path(input_text), Path(output_text)
    for option, path, must_exist in (
        ("--input", input_path, True),
        ("--output", output_path, False),
    ):
        if path.is_dir() or (must_exist and not path.exists()):
            what = "is a directory" if path.is_dir() else "does not exist"
            fail(f"Invalid value for '{option}': {path} {what} (a directory needs --engine)")
    return input_path, output_path


def _run_engine(
    engine: str,
    settings: Settings,
    input_path: str,
    output_path: str,
    refused_path: str | None,
    chunk_rows: int,
    quiet: bool,
) -> None:
    """``--engine spark|dask``: score with that engine, print the summary or the refusal."""
    import time

    from ml_api.core.errors import ServingError
    from ml_api.core.model.integrity import ArtifactError
    from ml_api.core.model.ranges import OutOfRangeInput

    started = time.perf_counter()
    try:
        module = importlib.import_module(f"ml_api.engines.{engine}")
        run = module.run(
            settings, input_path, output_path, refused_path=refused_path, chunk_rows=chunk_rows
        )
    except ImportError as exc:
        fail(f"--engine {engine} needs {exc.name}: pip install 'ml-api[{engine}]'", code=1)
    except ArtifactError as exc:
        fail(str(exc), code=1)
    except OutOfRangeInput as exc:
        _fail_out_of_range(exc)
    except ServingError as exc:
        _fail_problems(exc, input_path)
    if run.out_of_range:
        _warn_out_of_range(run.out_of_range)
    if not quiet:
        seconds = time.perf_counter() - started
        refused = f"; {count(run.refused, 'refused row')} in {refused_path}" if refused_path else ""
        click.echo(
            f"scored {count(run.rows, 'row')} with {run.model} on {engine} in {seconds:.1f} s; "
            f"wrote {output_path} (a directory of part files){refused}"
        )
