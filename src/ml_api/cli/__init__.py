"""The ``ml-api`` command: train, import, serve, predict and the model store's commands.

Run ``ml-api COMMAND --help`` for each command's options. Every command reads the same settings
(``ML_API_*`` variables, ``.env``) as the server; options given here override them.

One module per concern: :mod:`~ml_api.cli.train`, :mod:`~ml_api.cli.serve` (the launch itself is
:mod:`ml_api.serving`), :mod:`~ml_api.cli.score` (``predict``), :mod:`~ml_api.cli.models` (the
model store: ``import``, ``info``, ``card``, ``versions``, ``promote``),
:mod:`~ml_api.cli.requirements` (the pins that serve a model with its own library versions),
:mod:`~ml_api.cli.drift` (``drift``: files against the reference profile), and
:mod:`~ml_api.cli.common` for what they share.

Imports of ml_api's own modules, pydantic, pandas and scikit-learn are made inside the commands
that need them: ``ml-api --help`` loads click alone, and ``train --if-missing`` with a model
present returns before pandas or scikit-learn are imported (docs/development.md).
"""

from __future__ import annotations

import click

from ml_api.cli.common import DEFAULT_ALIAS, VERSION_HELP
from ml_api.cli.drift import drift
from ml_api.cli.models import card, import_, info, promote, versions
from ml_api.cli.requirements import requirements
from ml_api.cli.score import predict
from ml_api.cli.serve import serve
from ml_api.cli.train import model_name_for, train

__all__ = ["DEFAULT_ALIAS", "VERSION_HELP", "main", "model_name_for"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ml-api", prog_name="ml-api")
def main() -> None:
    """Train a scikit-learn model and serve it as a prediction API."""


for _command in (
    train,
    import_,
    serve,
    predict,
    info,
    card,
    versions,
    promote,
    requirements,
    drift,
):
    main.add_command(_command)
