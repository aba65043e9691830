#!/usr/bin/env python
"""Django's command-line utility for the ml-api Django adapter (the seed's ``manage.py``).

Examples, from the checkout::

    ML_API_DEBUG=true .venv/bin/python src/ml_api/api/django_app/manage.py runserver 8000
    ML_API_SECRET_KEY=... .venv/bin/python src/ml_api/api/django_app/manage.py check --deploy
"""

import os
import sys
from pathlib import Path


def main() -> None:
    """Run a Django management command with the ml-api settings."""
    here = Path(__file__).resolve().parent
    # Python puts this script's directory first on sys.path; its ``ml_api/`` (the Django app)
    # would then shadow the ``ml_api`` package the app belongs to.
    sys.path[:] = [p for p in sys.path if Path(p or os.curdir).resolve() != here]
    src = here.parents[2]
    if (src / "ml_api" / "__init__.py").is_file() and str(src) not in sys.path:
        sys.path.insert(0, str(src))  # a source checkout without `pip install -e .`
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ml_api.api.django_app.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
