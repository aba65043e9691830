#!/usr/bin/env python
"""Django's command-line utility for the ml-api Django adapter.

Needs ml-api installed (``make install`` or ``pip install -e .``). Examples, from the checkout::

    ML_API_DEBUG=true .venv/bin/python src/ml_api/api/django_app/manage.py runserver 8000
    ML_API_SECRET_KEY=... .venv/bin/python src/ml_api/api/django_app/manage.py check --deploy
"""

import os
import sys


def main() -> None:
    """Run a Django management command with the ml-api settings."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ml_api.api.django_app.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
