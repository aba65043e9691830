"""WSGI entry point for any WSGI server: ``gunicorn ml_api.api.django_app.wsgi:application``.

Settings come from the environment (``ML_API_*``); ``AppConfig.ready()`` loads the model once per
process. ``ml-api serve --framework django`` does not use this module: it builds the application
around the model its gunicorn master already loaded (see :func:`get_wsgi_application`).
"""

from ml_api.api.django_app import get_wsgi_application

application = get_wsgi_application()
