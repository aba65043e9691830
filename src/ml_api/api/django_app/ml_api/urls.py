"""Routes of the ``ml_api`` app. Both spellings of ``/predict`` are routes, so nothing redirects."""

from django.urls import path

from ml_api.api.django_app.ml_api import views

urlpatterns = [
    path("predict", views.PredictView.as_view(), name="predict"),
    path("predict/", views.PredictView.as_view(), name="predict-slash"),
    path("health", views.HealthView.as_view(), name="health"),
    path("ready", views.ReadyView.as_view(), name="ready"),
    path("metadata", views.MetadataView.as_view(), name="metadata"),
]
