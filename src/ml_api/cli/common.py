"""What every ``ml-api`` command shares: settings from options, the one-line failure, loading.

Only click and the standard library are imported at module level: ``ml-api --help`` loads click
alone (see :mod:`ml_api.cli`).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

if TYPE_CHECKING:
    from ml_api.settings import Settings

DEFAULT_ALIAS = "production"
"""``ml_api.core.model.versions.DEFAULT_ALIAS``, repeated so ``--help`` need not import the core."""
VERSION_HELP = (
    f"Version or alias (default: ML_API_MODEL_VERSION, else the '{DEFAULT_ALIAS}' alias if set, "
    "else the newest)."
)
"""Every ``--version`` option's help: what ``resolve_version_dir`` loads without one."""
NAME_HELP = "Model name (default: ML_API_MODEL_NAME, else penguins)."
"""Every ``--name`` option's help that picks one existing model (``Settings.model_name``)."""
MODEL_ROOT_HELP = "Where the models' versions are (default: ML_API_MODEL_ROOT, else ./models)."
"""Every reading command's ``--model-root`` help (``Settings.resolved_model_root``)."""


_Command = TypeVar("_Command", bound=Callable[..., Any])


def model_root_option(help: str = MODEL_ROOT_HELP) -> Callable[[_Command], _Command]:
    """The ``--model-root`` option every command that finds models takes (a directory path).

    Args:
        help: Its help text (commands that write artifacts say so).
    """
    return click.option(
        "--model-root", type=click.Path(file_okay=False, path_type=Path), default=None, help=help
    )


def na_values_option(effect: str) -> Callable[[_Command], _Command]:
    """The one ``--na-values`` option (train, import, predict, drift): which CSV cells mean missing.

    Args:
        effect: What the command does with the tokens (one sentence, ends the help).

    Returns:
        The click option decorator; the command gets ``na_values``, a tuple (empty: not given).
    """
    return click.option(
        "--na-values",
        multiple=True,
        help="A cell read as missing (repeatable; default: pandas' list, NA, null, NaN, "
        "empty...). --na-values '' reads only empty cells as missing. A cell that is a "
        "category of the model's column (NA: North America) or in a text column is never "
        f"read as missing. {effect}",
    )


def warn_missing_cells(
    features: Iterable[Any], cells: Mapping[str, Mapping[str, int]], again: str
) -> None:
    """Warn, per categorical feature, which cells were read as missing and how many.

    Args:
        features: The card's features (``name`` and ``kind`` each).
        cells: Per column, the cells each token made missing (the card's
            ``missing_values.cells``).
        again: What to run instead when a token is a value there (names ``--na-values``).
    """
    for f in features:
        counts = cells.get(f.name)
        if f.kind == "categorical" and counts:
            shown = ", ".join(f"{token!r}: {n}" for token, n in sorted(counts.items()))
            click.echo(
                f"warning: {f.name}: {sum(counts.values())} cells read as missing ({shown}), "
                f"not as a category; if one is a value here ('NA': North America, Namibia...), "
                f"{again}"
            )


def settings_from(**overrides: Any) -> Settings:
    """The settings (``ML_API_*``, ``.env``) with the options given on the command line applied.

    Args:
        **overrides: Settings fields by name; ``None`` (an option not given) keeps the setting.

    Exits with status 2 and one line per invalid setting, naming its ``ML_API_*`` variable
    (pydantic's message, without a traceback), when a setting cannot be used.
    """
    from pydantic import ValidationError

    from ml_api.settings import Settings

    values = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**values)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"])
            name = f"ML_API_{where.upper()} ({where}): " if where else ""
            problems.append(f"{name}{error['msg']}")
        fail("invalid settings: " + "; ".join(problems))


def fail(message: str, code: int = 2) -> NoReturn:
    """Print ``ml-api: error: MESSAGE`` on stderr and exit with ``code`` (2: usage, 1: failure)."""
    click.echo(f"ml-api: error: {message}", err=True)
    sys.exit(code)


TRAINING_MODULES = ("matplotlib", "skl2onnx", "onnx")
"""What ``ml-api train`` imports beyond serving: the ``train`` extra of pyproject.toml."""


def require_training_extra() -> None:
    """Exit with one line naming the missing libraries when the ``train`` extra is not installed.

    A serving-only installation (the container image: dependencies without extras) has no
    matplotlib or ONNX converter; training there would stop with a traceback halfway.
    """
    import importlib.util

    missing = [name for name in TRAINING_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        fail(
            f"training needs {', '.join(missing)}, which this installation lacks (it serves "
            "only): install the train extra, e.g. pip install 'ml-api[train]'",
            code=1,
        )


def load_service(settings: Settings) -> Any:
    """Load the service alone (``build_scoring``: no HTTP parts) for ``info``/``predict``, or exit.

    An artifact that loads but is malformed (a model that fails its warm-up prediction, a card
    that does not match the model) is reported like a missing one: one line naming the path, no
    traceback.
    """
    from ml_api.composition import build_scoring
    from ml_api.core.model.integrity import ArtifactError
    from ml_api.serving.launch import malformed

    try:
        return build_scoring(settings)
    except ArtifactError as exc:
        fail(str(exc), code=1)
    except Exception as exc:  # any fault of a malformed artifact is one line
        fail(malformed(settings, exc), code=1)


def serve_command(name: str, model_root: Path | None, version: str | None = None) -> str:
    """The ``ml-api serve`` line for a model just saved, with the options it was saved with."""
    line = f"ml-api serve --name {name}"
    if version is not None:
        line += f" --version {version}"
    if model_root is not None:
        line += f" --model-root {model_root}"
    return line
