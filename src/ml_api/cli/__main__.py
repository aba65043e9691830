"""``python -m ml_api.cli``: the ``ml-api`` command."""

from ml_api.cli import main

main()
