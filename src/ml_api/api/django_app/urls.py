"""The project's URL configuration: the ``ml_api`` app's routes, then a JSON 404 for the rest.

``handler400/403/404/500`` render the errors Django raises outside the views as the same JSON
envelope (never Django's HTML error pages).
"""

from django.urls import include, path, re_path

from ml_api.api.django_app.ml_api_app import views

urlpatterns = [
    path("", include("ml_api.api.django_app.ml_api_app.urls")),
    re_path(r"^.*$", views.not_found, name="not-found"),
]

handler400 = "ml_api.api.django_app.ml_api_app.rendering.bad_request"
handler403 = "ml_api.api.django_app.ml_api_app.rendering.permission_denied"
handler404 = "ml_api.api.django_app.ml_api_app.rendering.page_not_found"
handler500 = "ml_api.api.django_app.ml_api_app.rendering.server_error"
