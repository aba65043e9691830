"""``ml-api train``: fit a model on a CSV and save it as a new version, saying what it did."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ml_api.cli.common import (
    fail,
    model_root_option,
    na_values_option,
    require_training_extra,
    serve_command,
    settings_from,
)
from ml_api.core.wording import count

if TYPE_CHECKING:  # imported when run: --help stays quick
    from ml_api.core.model.card import TrainedCard


def model_name_for(data: Path) -> str:
    """The model name ``train --data FILE`` uses without ``--name``: the file's stem.

    Characters an artifact name cannot hold become ``-`` (``My Houses.csv`` -> ``My-Houses``), so
    a model trained on another file never lands under the default name by accident.
    """
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", Path(data).stem).strip("-.")
    return name or "model"


def has_version(root: Path, name: str) -> bool:
    """``bool(ml_api.core.model.versions.list_versions(root, name))`` without importing the core."""
    base = root / name
    return base.is_dir() and any(
        p.name.isdigit() and (p / "metadata.json").is_file() for p in base.iterdir()
    )


@click.command()
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
    "--text",
    multiple=True,
    help="A free-text column (reviews, tickets): a TF-IDF text feature (repeatable).",
)
@click.option(
    "--nullable",
    multiple=True,
    help="Accept null for this feature at serving although the training data had no missing "
    "value there; the pipeline imputes it (repeatable).",
)
@na_values_option(
    "Training reads a token as missing in every column but text ones (so --na-values '' "
    "keeps NA a category); recorded in the card, scoring files are read the same way."
)
@click.option(
    "--test-size",
    type=click.FloatRange(0.05, 0.5),
    default=0.2,
    show_default=True,
    help="Held-out fraction the metrics are measured on (stratified for classification).",
)
@click.option(
    "--seed",
    type=int,
    default=42,
    show_default=True,
    help="Seed of the split and of estimators that use randomness (same seed, same model).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["joblib", "skops"]),
    default="joblib",
    show_default=True,
    help="skops files load without executing code.",
)
@model_root_option("Where artifacts go (default: ML_API_MODEL_ROOT or ./models of the checkout).")
@click.option("--if-missing", is_flag=True, help="Do nothing when the model already has a version.")
def train(
    data: Path | None,
    target: str | None,
    model_name: str | None,
    model_root: Path | None,
    if_missing: bool,
    **choices: Any,
) -> None:
    """Train a model on a CSV file and save it as a new artifact version.

    Prints the features it used (kind, categories or range, missing share), the columns it left
    out and why (identifiers and date/time strings are left out unless --keep), and the rows
    dropped for a missing target.
    """
    # ``choices``: task, estimator, drop, keep, categorical, numeric, nullable, na_values,
    # test_size, seed and fmt, named as the fields of ml_api.train.TrainingOptions, which takes
    # them whole.
    if data is not None and model_name is None:
        model_name = model_name_for(data)
    settings = settings_from(model_root=model_root, model_name=model_name)
    root = settings.resolved_model_root()
    if data is not None and target is None:
        fail("--target is required with --data")
    if if_missing and has_version(root, settings.model_name):
        click.echo(f"model {settings.model_name!r} already exists in {root}; not retraining")
        return
    require_training_extra()
    from ml_api import preprocess
    from ml_api.settings import project_root
    from ml_api.train import TrainingOptions, runtime_line
    from ml_api.train import train as run_training

    if data is None:
        data = preprocess.PENGUINS_CSV
        target = target or preprocess.PENGUINS_TARGET
        if not choices["drop"]:
            choices["drop"] = preprocess.PENGUINS_DROP
            choices["drop_reason"] = preprocess.PENGUINS_DROP_REASON
    choices["na_values"] = choices["na_values"] or None  # none given: pandas' defaults
    assert target is not None  # given with --data, defaulted without it
    serving_before = _serving_card(root, settings.model_name, settings.model_version)
    try:
        result = run_training(
            TrainingOptions(data, target, **choices),
            model_root=root,
            name=settings.model_name,
            processed_dir=project_root() / "data" / "processed" / settings.model_name,
        )
    except (KeyError, ValueError) as exc:
        fail(str(exc).strip("'\""))
    card = result.card
    _echo_columns(result)
    _echo_missing_text(card)
    if card.training.marked_nullable:
        marked = ", ".join(card.training.marked_nullable)
        click.echo(f"null accepted at serving (--nullable; the pipeline imputes it): {marked}")
    click.echo(f"trained {card.estimator_class} ({card.task}) on {data}")
    click.echo("held-out metrics: " + ", ".join(f"{k}={v:.4f}" for k, v in result.metrics.items()))
    click.echo(runtime_line(card))
    click.echo(f"saved {result.path}")
    serves = _echo_comparison(
        result, serving_before, root, settings.model_name, settings.model_version
    )
    pin = None if serves else result.path.name
    click.echo(f"serve it with: {serve_command(settings.model_name, model_root, pin)}")


def _serving_card(root: Path, name: str, version: str | None) -> dict[str, Any] | None:
    """The card of the version ``serve`` would load now (alias or newest), if there is one."""
    from ml_api.core.model.integrity import ArtifactError
    from ml_api.core.model.versions import resolve_version_dir

    try:
        return json.loads((resolve_version_dir(root, name, version) / "metadata.json").read_text())
    except (ArtifactError, OSError, ValueError):
        return None


def _echo_comparison(
    result: Any, before: dict[str, Any] | None, root: Path, name: str, version: str | None
) -> bool:
    """Print how the new version compares with the one that was serving; return if it serves."""
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
    same_data = before.get("training", {}).get("data_sha256") == result.card.training.data_sha256
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


def _echo_missing_text(card: TrainedCard) -> None:
    """Say which cells of each categorical feature were read as missing, and how many.

    The advice to train with ``--na-values ''`` is given only where a token is shaped like the
    column's own categories (``NA`` beside ``EU`` and ``APAC``: a region code); beside ``male``
    and ``female`` (penguins' ``sex``), ``NA`` can only mean missing and the line is a note.
    """
    cells = card.missing_values.cells
    for f in card.schema.features:
        counts = cells.get(f.name)
        if f.kind != "categorical" or not counts:
            continue
        shown = ", ".join(f"{token!r}: {n}" for token, n in sorted(counts.items()))
        head = f"{f.name}: {count(sum(counts.values()), 'cell')} read as missing ({shown})"
        shapes = {_shape(str(c)) for c in f.categories or ()}
        alike = [t for t in sorted(counts) if _shape(t) in shapes]
        if not alike:
            click.echo(f"note: {head}")
            continue
        click.echo(
            f"warning: {head}, not as a category; {', '.join(map(repr, alike))} looks like this "
            "column's values: if it is one here ('NA': North America, Namibia...), train again "
            "with --na-values '' (only empty cells missing) or list the tokens that mean missing"
        )


def _shape(text: str) -> str:
    """A value's shape: ``A`` per capital, ``a`` per small letter, ``9`` per digit, else itself."""
    return "".join(
        "A" if c.isupper() else "a" if c.islower() else "9" if c.isdigit() else c for c in text
    )


def _echo_columns(result: Any) -> None:
    """The feature table, the columns left out and why, and the rows without a target."""
    training = result.card.training
    missing = training.missing_share
    rows = []
    for f in result.card.schema.to_list():
        if f["kind"] == "categorical":
            cats = f["categories"]
            shown = ", ".join(cats[:6]) + (f", ... ({len(cats)} in all)" if len(cats) > 6 else "")
        elif f["kind"] == "text":
            shown = f"free text, up to {f['max_length']} characters"
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
    left = training.left_out
    if left:
        click.echo(f"left out ({len(left)}):")
        for c in left:
            click.echo(f"  {c['name']}: {c['reason']}")
    n = training.rows_without_target
    click.echo(
        f"rows dropped for a missing target {result.card.target!r}: {n}"
        if n
        else "rows dropped for a missing target: none"
    )
