"""``ml-api drift``: compare a file of instances with a model version's reference profile."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ml_api.cli.common import (
    NAME_HELP,
    VERSION_HELP,
    fail,
    model_root_option,
    na_values_option,
    settings_from,
)
from ml_api.core.wording import count


@click.command()
@click.option(
    "--input",
    "inputs",
    required=True,
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="CSV (.csv, .csv.gz), Parquet, or prediction-log file (.jsonl and its rotated .jsonl.N, "
    "or a saved container log); repeat for several.",
)
@click.option("--name", "model_name", default=None, help=NAME_HELP)
@click.option("--version", "model_version", default=None, help=VERSION_HELP)
@model_root_option()
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    default=None,
    help="Write the HTML report here (a bar chart per feature, ranked by drift).",
)
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    default=None,
    help="Write the JSON report here ('-': stdout).",
)
@click.option(
    "--fail-above",
    type=click.FloatRange(min=0),
    default=None,
    help="Exit 1 when a feature's score is above this PSI (0.25: a large shift).",
)
@na_values_option("Default: the model card's tokens (what training or import read as missing).")
def drift(
    inputs: tuple[Path, ...],
    model_name: str | None,
    model_version: str | None,
    model_root: Path | None,
    report_path: Path | None,
    json_path: Path | None,
    fail_above: float | None,
    na_values: tuple[str, ...],
) -> None:
    """Score each feature's drift (PSI) in files of instances against the model's training data.

    Prints one line per feature, highest score first; exits 1 when a score is above --fail-above
    (a CI gate), 2 when the model or the input cannot be read.
    """
    from ml_api.core.model.artifact import load_artifact
    from ml_api.core.model.integrity import ArtifactError
    from ml_api.core.model.profile import ProfileError, load_profile
    from ml_api.drift_report import compare, read_input, render_html

    settings = settings_from(model_root=model_root, model_name=model_name)
    try:
        artifact = load_artifact(
            settings.resolved_model_root(),
            settings.model_name,
            model_version or settings.model_version,
            allow_version_mismatch=True,  # the model itself is not run
        )
        profile = load_profile(artifact.card.raw, artifact.path)
    except (ArtifactError, ProfileError) as exc:
        fail(str(exc), code=2)
    if profile is None:
        fail(
            f"model {artifact.path} has no reference profile (saved before ml-api profiled "
            f"training data): train or import it again",
            code=2,
        )
    tokens = na_values or (artifact.card.raw.get("missing_values") or {}).get("tokens")
    try:
        frame = read_input(list(inputs), tokens, artifact.name, artifact.schema)
    except ValueError as exc:
        fail(str(exc), code=2)
    report = compare(
        profile,
        frame,
        model={"name": artifact.name, "version": artifact.version},
        inputs=[str(p) for p in inputs],
        fail_above=fail_above,
    )
    if not report.features:
        fail(f"the input has none of the model's features ({', '.join(report.not_compared)})")
    body = json.dumps(report.to_dict(), indent=2, allow_nan=False) + "\n"
    if json_path is not None and str(json_path) == "-":
        click.echo(body, nl=False)
    elif json_path is not None:
        json_path.write_text(body)
    if report_path is not None:
        report_path.write_text(render_html(report))
    for f in report.features:
        score = "n/a" if f.score != f.score else f"{f.score:.3f}"
        click.echo(f"{f.feature}: {score} ({count(f.rows, 'value')})", err=json_path is not None)
    for what, path in (("JSON report", json_path), ("HTML report", report_path)):
        if path is not None and str(path) != "-":
            click.echo(f"wrote the {what} to {path}", err=json_path is not None)
    if report.above:
        names = ", ".join(f.feature for f in report.above)
        click.echo(f"ml-api: drift above {fail_above:g}: {names}", err=True)
        raise SystemExit(1)
