"""Routes of the ``ml_api`` app: every path of the core's endpoint table, the Flask adapter's too.

Both spellings of ``/predict`` (and of ``/v2``) are routes, so nothing redirects. ``<name>`` and
``<version>`` match one path segment, as Flask's default converter does.
"""

from django.urls import path

from ml_api.api.django_app.ml_api_app import views
from ml_api.core.protocols.routes import ENDPOINTS, angle_brackets

urlpatterns = [
    path(angle_brackets(route).removeprefix("/"), views.VIEWS[endpoint.name], name=endpoint.name)
    for endpoint in ENDPOINTS
    for route in endpoint.paths
]
