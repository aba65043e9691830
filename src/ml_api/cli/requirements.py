"""``ml-api requirements``: the pip pins that serve a model with its own library versions."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ml_api.cli.common import VERSION_HELP, fail, model_root_option, settings_from


@click.command()
@click.argument("model", required=False)
@click.option("--version", "model_version", default=None, help=VERSION_HELP)
@model_root_option()
def requirements(model: str | None, model_version: str | None, model_root: Path | None) -> None:
    """Print pip constraints pinning the library versions MODEL was fitted with.

    MODEL is a model's name (default: ML_API_MODEL_NAME; its card's versions) or a model file not
    imported yet (a joblib/pickle file's scikit-learn stamp, an MLflow directory's MLmodel).
    Each version must be in the range ml-api supports (exit 1 otherwise). Install them with
    `pip install -c FILE` in a virtual environment; `make image MODEL=<name>` bakes them in.
    """
    from ml_api.importing.requirements import RequirementsError, card_pins, file_pins

    path = Path(model) if model else None
    try:
        if path is not None and (path.is_file() or (path / "MLmodel").is_file()):
            pins, what = file_pins(path), str(path)
        else:
            versions, what = _card_versions(model, model_version, model_root)
            pins = card_pins(versions, what)
    except RequirementsError as exc:
        fail(str(exc), code=1)
    for p in pins:
        click.echo(
            f"# {what}: {p.library} {p.version} (ml-api supports {p.distribution}{p.supported})"
        )
    for p in pins:
        click.echo(p.line())


def _card_versions(
    name: str | None, version: str | None, model_root: Path | None
) -> tuple[dict[str, str], str]:
    """The ``versions`` of a model version's card (read, not verified: nothing is loaded)."""
    from ml_api.core.model.integrity import ArtifactError
    from ml_api.core.model.versions import resolve_version_dir

    settings = settings_from(model_root=model_root, model_name=name, model_version=version)
    try:
        directory = resolve_version_dir(
            settings.resolved_model_root(), settings.model_name, settings.model_version
        )
    except ArtifactError as exc:
        fail(str(exc), code=1)
    card = directory / "metadata.json"
    if not card.is_file():
        fail(f"{directory} has no card (metadata.json): import the model with ml-api import", 1)
    versions = json.loads(card.read_text()).get("versions", {})
    return versions, f"model {settings.model_name!r} version {directory.name}"
