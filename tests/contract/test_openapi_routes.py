"""The OpenAPI document lists every route both adapters serve, and nothing else."""

from __future__ import annotations

import re

from ml_api.api.flask_app import create_app
from ml_api.composition import build

HTTP_METHODS = {"get", "post", "put", "patch", "delete"}


def _normalize(path: str) -> str:
    """``/v2/models/<name>/`` (Flask, Django) -> ``/v2/models/{name}`` (OpenAPI)."""
    path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", path)
    return path.rstrip("/") or "/"


def _document_operations(document: dict) -> set[tuple[str, str]]:
    return {
        (path, method)
        for path, item in document["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }


def _flask_operations(app) -> set[tuple[str, str]]:
    return {
        (_normalize(rule.rule), method.lower())
        for rule in app.url_map.iter_rules()
        if rule.endpoint != "static"
        for method in rule.methods
        if method.lower() in HTTP_METHODS
    }


def _django_operations() -> set[tuple[str, str]]:
    from django.urls import URLPattern, URLResolver, get_resolver

    out: set[tuple[str, str]] = set()

    def walk(patterns, prefix: str) -> None:
        for p in patterns:
            if isinstance(p, URLResolver):
                walk(p.url_patterns, prefix + str(p.pattern))
            elif isinstance(p, URLPattern):
                view_class = getattr(p.callback, "view_class", None)
                if view_class is None:  # the catch-all JSON 404, not a route
                    continue
                for method in HTTP_METHODS:
                    if hasattr(view_class, method):
                        out.add((_normalize("/" + prefix + str(p.pattern)), method))

    walk(get_resolver().url_patterns, "")
    return out


def test_document_lists_every_flask_and_django_route(settings, service, django_app):
    application = build(settings, service=service)
    documented = _document_operations(application.openapi)
    flask_routes = _flask_operations(create_app(settings, application=application))
    django_routes = _django_operations()
    assert ("/predict", "post") in documented and ("/docs", "get") in documented
    assert ("/v2/models/{name}/versions/{version}/infer", "post") in documented
    assert flask_routes == documented, flask_routes ^ documented
    assert django_routes == documented, django_routes ^ documented


def test_served_document_is_the_composed_one(settings, service):
    application = build(settings, service=service)
    client = create_app(settings, application=application).test_client()
    assert client.get("/openapi.json").get_json() == application.openapi
    assert client.get("/docs").get_data(as_text=True) == application.docs.page


def test_a_route_missing_from_the_document_is_caught(settings, service):
    application = build(settings, service=service)
    document = {**application.openapi, "paths": dict(application.openapi["paths"])}
    del document["paths"]["/v2/models/{name}/ready"]
    flask_routes = _flask_operations(create_app(settings, application=application))
    assert flask_routes - _document_operations(document) == {("/v2/models/{name}/ready", "get")}
