"""The model store's commands: ``import``, ``info``, ``card``, ``versions``, ``promote``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from ml_api.cli.common import (
    DEFAULT_ALIAS,
    NAME_HELP,
    VERSION_HELP,
    fail,
    load_service,
    model_root_option,
    na_values_option,
    serve_command,
    settings_from,
    warn_missing_cells,
)


@click.command("import")
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
    help="A type a skops file may hold besides the ones skops trusts (full name, repeatable).",
)
@click.option(
    "--code-path",
    "code_paths",
    multiple=True,
    type=click.Path(path_type=Path),
    metavar="PATH",
    help="Your own module the model's classes come from (a .py file or a package directory; "
    "repeatable): copied into the version, importable whenever it loads.",
)
@click.option(
    "--allow-version-mismatch",
    is_flag=True,
    default=False,
    help="Import a model pickled by another scikit-learn major.minor (the card records that "
    "version; serving it then needs ML_API_ALLOW_VERSION_MISMATCH=true).",
)
@na_values_option(
    "Read so in --data (a token that is one of the model's encoder categories stays that "
    "category); recorded in the card, scoring files are read the same way."
)
@model_root_option("Where artifacts go (default: ML_API_MODEL_ROOT or ./models of the checkout).")
def import_(
    model_path: Path,
    data: Path | None,
    target: str | None,
    model_name: str,
    fmt: str,
    trust: tuple[str, ...],
    code_paths: tuple[Path, ...],
    allow_version_mismatch: bool,
    na_values: tuple[str, ...],
    model_root: Path | None,
) -> None:
    """Import a fitted model (joblib/pickle, skops, MLflow directory, native file) as a new version.

    MODEL_PATH holds a fitted scikit-learn estimator or Pipeline, or an XGBoost or LightGBM
    scikit-learn model; or it is XGBoost's own model file (.json, .ubj), LightGBM's (.txt) or
    CatBoost's (.cbm).
    The model predicts on the data through the server's own path before anything is written;
    a model the server could not serve is refused.
    """
    from ml_api.importing import RUNS_CODE_WARNING, ImportRefused, import_model
    from ml_api.importing.notes import import_notes

    settings = settings_from(model_root=model_root)
    from ml_api.importing.native import is_native

    if model_path.suffix != ".skops" and not is_native(model_path):  # joblib/pickle, MLflow
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
            allow_version_mismatch=allow_version_mismatch,
            code_paths=code_paths,
            na_values=na_values or None,
        )
    except ImportRefused as exc:
        fail(str(exc), code=1)
    card = result.card
    features, *notes = import_notes(card)
    what = card.provenance.get("model", card.estimator_class)  # the whole model, in words
    click.echo(f"imported {what} ({card.task}) from {model_path}: {features}")
    for line in notes:
        click.echo(line)
    if card.missing_values is not None:  # a token the model's encoder does not hold as a category
        warn_missing_cells(
            card.schema.features,
            card.missing_values.cells,
            "import again with --na-values '' (only empty cells missing) or list the tokens "
            "that mean missing",
        )
    click.echo(f"saved {result.path}")
    click.echo(f"serve it with: {serve_command(model_name, model_root)}")


@click.command()
@click.option("--name", "model_name", default=None, help=NAME_HELP)
@click.option("--version", "model_version", default=None, help=VERSION_HELP)
@model_root_option()
def info(model_name: str | None, model_version: str | None, model_root: Path | None) -> None:
    """Verify a model version and print its card as JSON."""
    settings = settings_from(
        model_root=model_root, model_name=model_name, model_version=model_version
    )
    from ml_api.core.protocols.v1 import model_metadata

    service = load_service(settings)
    click.echo(json.dumps(model_metadata(service), indent=2))


@click.command()
@click.option("--name", "model_name", default=None, help=NAME_HELP)
@click.option("--version", "model_version", default=None, help=VERSION_HELP)
@model_root_option()
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
    from ml_api.core.model.artifact import load_artifact
    from ml_api.core.model.integrity import ArtifactError
    from ml_api.core.pages.card_page import CardContent, read_charts, render_html, render_markdown

    settings = settings_from(
        model_root=model_root, model_name=model_name, model_version=model_version
    )
    try:
        artifact = load_artifact(
            settings.resolved_model_root(),
            settings.model_name,
            settings.model_version,
            allow_version_mismatch=True,  # the card is read, the model is not run
        )
    except ArtifactError as exc:
        fail(str(exc), code=1)
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


@click.command()
@click.argument("name", required=False)
@click.option(
    "--name",
    "name_option",
    default=None,
    help="Model name, as the other commands take it (same as NAME).",
)
@model_root_option()
def versions(name: str | None, name_option: str | None, model_root: Path | None) -> None:
    """List a model's versions side by side, and which one serves by default.

    NAME defaults to ML_API_MODEL_NAME. Columns: version, created (UTC), estimator, held-out
    metrics, runtime, model file size, aliases ("serves" marks what 'serve' loads without
    --version: the 'production' alias if set, else the newest).
    """
    from ml_api.core.model.integrity import ArtifactError
    from ml_api.core.model.versions import list_versions, read_aliases, resolve_version_dir

    if name is not None and name_option is not None and name != name_option:
        fail(f"two model names: {name} and --name {name_option}; give one", code=2)
    settings = settings_from(model_root=model_root, model_name=name or name_option)
    root, name = settings.resolved_model_root(), settings.model_name
    try:
        found = list_versions(root, name)
        aliases = read_aliases(root, name)
        serving = resolve_version_dir(root, name).name if found else None
    except ArtifactError as exc:
        fail(str(exc), code=1)
    if not found:
        fail(f"no model {name!r} in {root / name}: train one with 'ml-api train'", code=1)
    refused = None if serving is None else _verification_error(settings, root, name, serving)
    header = ("version", "created", "estimator", "metrics", "runtime", "size", "aliases")
    rows = []
    for v in found:
        card = json.loads((root / name / str(v) / "metadata.json").read_text())
        marks = sorted(a for a, t in aliases.items() if t == v)
        if str(v) == serving:
            # never "serves" for a version a server would refuse
            marks.append("serves" if refused is None else "fails verification")
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
    if refused is not None:
        click.echo(
            f"version {serving} fails verification: {refused}; running servers keep the version "
            "they serve (see their log and ml_api_model_swap_failures_total)"
        )


def _verification_error(settings: Any, root: Path, name: str, version: str) -> str | None:
    """Verify a version as a server does before serving it (hashes, version gate, loading).

    Returns:
        Why it fails, or ``None`` when a server would load it.
    """
    from ml_api.core.model.artifact import load_artifact
    from ml_api.core.model.integrity import ArtifactError

    try:
        load_artifact(root, name, version, allow_version_mismatch=settings.allow_version_mismatch)
    except ArtifactError as exc:
        return str(exc)
    return None


@click.command()
@click.argument("name")
@click.argument("version", required=False)
@click.option(
    "--alias",
    default=DEFAULT_ALIAS,
    show_default=True,
    help="Alias to set (serve honours production).",
)
@click.option("--unset", is_flag=True, help="Remove the alias (then the newest version serves).")
@model_root_option()
def promote(
    name: str, version: str | None, alias: str, unset: bool, model_root: Path | None
) -> None:
    """Make VERSION of model NAME the one that serves (sets the 'production' alias).

    'serve', the image and the Kubernetes kit load the version the 'production' alias names
    ('models/NAME/aliases.json', replaced atomically); 'ML_API_MODEL_VERSION' may name any
    alias. Running servers verify the new version and swap it in without a restart
    (docs/models.md, "Hot swap"); the previous version is printed, to roll back with.
    """
    from ml_api.core.model.integrity import ArtifactError
    from ml_api.core.model.versions import set_alias

    if version is not None and unset:
        fail("give a VERSION or --unset, not both")
    if version is None and not unset:
        fail("give a VERSION, or --unset to remove the alias")
    if version is not None and not version.isdigit():
        fail(f"VERSION must be a version number (see 'ml-api versions {name}'), got {version!r}")
    settings = settings_from(model_root=model_root)
    root = settings.resolved_model_root()
    if version is not None:
        refused = _verification_error(settings, root, name, version)
        if refused is not None:
            fail(
                f"version {version} fails verification: {refused}; alias {alias} not changed "
                "(running servers would refuse it and keep the version they serve)",
                code=1,
            )
    try:
        before = set_alias(root, name, alias, None if version is None else int(version))
    except (ArtifactError, ValueError) as exc:
        fail(str(exc), code=1)
    was = f"was version {before}" if before is not None else "was unset"
    if unset:
        if before is None:
            click.echo(f"{name}: alias {alias} was not set; the newest version serves")
        else:
            click.echo(f"{name}: removed alias {alias} ({was}); the newest version serves")
    else:
        click.echo(f"{name}: {alias} -> version {version} ({was})")
    back = "" if alias == DEFAULT_ALIAS else f" --alias {alias}"
    if before is not None and str(before) != version:
        click.echo(f"roll back with: ml-api promote {name} {before}{back}")
    elif before is None and not unset:
        click.echo(f"roll back with: ml-api promote {name} --unset{back}")
    if alias == DEFAULT_ALIAS:
        click.echo(
            "running servers verify it and swap it in within ML_API_RELOAD_SECONDS (or at "
            "SIGHUP); the old version serves until it passes"
        )
