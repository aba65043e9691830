"""Routes of the ``ml_api`` app, the Flask adapter's one for one.

Both spellings of ``/predict`` (and of ``/v2``) are routes, so nothing redirects. ``<name>`` and
``<version>`` match one path segment, as Flask's default converter does.
"""

from django.urls import path

from ml_api.api.django_app.ml_api_app import views

predict = views.PredictView.as_view()
v2_metadata = views.V2ModelMetadataView.as_view()
v2_ready = views.V2ModelReadyView.as_view()
v2_infer = views.V2InferView.as_view()

urlpatterns = [
    path("predict", predict, name="predict"),
    path("predict/", predict, name="predict-slash"),
    path("health", views.HealthView.as_view(), name="health"),
    path("ready", views.ReadyView.as_view(), name="ready"),
    path("metadata", views.MetadataView.as_view(), name="metadata"),
    path("model", views.ModelCardView.as_view(), name="model"),
    path("metrics", views.MetricsView.as_view(), name="metrics"),
    path("openapi.json", views.OpenAPIView.as_view(), name="openapi"),
    path("docs", views.DocsView.as_view(), name="docs"),
    path("docs/<name>", views.DocsAssetView.as_view(), name="docs-asset"),
    path("v2", views.V2ServerMetadataView.as_view(), name="v2"),
    path("v2/", views.V2ServerMetadataView.as_view(), name="v2-slash"),
    path("v2/health/live", views.V2LiveView.as_view(), name="v2-live"),
    path("v2/health/ready", views.V2ReadyView.as_view(), name="v2-ready"),
    path("v2/models/<name>", v2_metadata, name="v2-model"),
    path("v2/models/<name>/versions/<version>", v2_metadata, name="v2-model-version"),
    path("v2/models/<name>/ready", v2_ready, name="v2-model-ready"),
    path("v2/models/<name>/versions/<version>/ready", v2_ready, name="v2-model-version-ready"),
    path("v2/models/<name>/infer", v2_infer, name="v2-infer"),
    path("v2/models/<name>/versions/<version>/infer", v2_infer, name="v2-version-infer"),
]
