"""The endpoint table is what both adapters serve, what the OpenAPI document lists, and the source
of every path list (public, probe lane, any host): nothing is declared twice."""

from __future__ import annotations

import re

from pydantic import SecretStr

from ml_api.api.flask_app import create_app
from ml_api.composition import build
from ml_api.core.protocols import routes
from ml_api.core.protocols.routes import ENDPOINTS

HTTP_METHODS = {"get", "post", "put", "patch", "delete"}


def _normalize(path: str) -> str:
    """``/v2/models/<name>/`` (Flask, Django) -> ``/v2/models/{name}`` (OpenAPI)."""
    path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", path)
    return path.rstrip("/") or "/"


def _table_operations() -> set[tuple[str, str]]:
    return {(_normalize(p), m.lower()) for e in ENDPOINTS for p in e.paths for m in e.methods}


def _document_operations(document: dict) -> set[tuple[str, str]]:
    return {
        (path, method)
        for path, item in document["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }


def _flask_rules(app) -> set[tuple[str, str]]:
    return {
        (rule.rule, method.lower())
        for rule in app.url_map.iter_rules()
        if rule.endpoint != "static"
        for method in rule.methods
        if method.lower() in HTTP_METHODS
    }


def _django_rules() -> set[tuple[str, str]]:
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
                        out.add(("/" + prefix + str(p.pattern), method))

    walk(get_resolver().url_patterns, "")
    return out


def test_both_adapters_and_the_document_serve_exactly_the_table(settings, service, django_app):
    application = build(settings, service=service)
    table = _table_operations()
    assert ("/predict", "post") in table and ("/docs", "get") in table
    assert ("/v2/models/{name}/versions/{version}/infer", "post") in table
    assert _document_operations(application.openapi) == table
    # every spelling of every row, trailing slashes included, is a route in both frameworks
    spellings = {
        (routes.angle_brackets(p), m.lower()) for e in ENDPOINTS for p in e.paths for m in e.methods
    }
    flask_rules = _flask_rules(create_app(settings, application=application))
    assert flask_rules == spellings, flask_rules ^ spellings
    assert _django_rules() == spellings, _django_rules() ^ spellings
    assert list(application.openapi["paths"]) == list(dict.fromkeys(
        _normalize(e.paths[0]) for e in ENDPOINTS
    ))  # fmt: skip


def test_path_lists_are_derived_from_the_table(settings, service):
    from ml_api.api.django_app.middleware import ANY_HOST_PATHS
    from ml_api.serving.probe_lane import LANE_PATHS

    assert LANE_PATHS == routes.probe_paths() == ("/health", "/ready", "/metrics")
    assert ANY_HOST_PATHS == routes.any_host_paths() == {
        "/health", "/ready", "/metrics", "/v2/health/live", "/v2/health/ready"
    }  # fmt: skip
    assert set(routes.public_paths()) == {
        "/health", "/ready", "/metrics", "/docs", "/docs/swagger-ui-bundle.js",
        "/docs/swagger-ui.css", "/docs/swagger-initializer.js", "/openapi.json",
    }  # fmt: skip
    assert settings.public_paths is None  # the default: the table's
    keyed = settings.model_copy(update={"api_keys": [SecretStr("k")]})
    application = build(keyed, service=service)
    for path in routes.public_paths():
        application.auth.check(path, None, None)  # open without a key
    paths = application.openapi["paths"]
    open_ops = {p for p, item in paths.items() if "security" in item.get("get", {})}
    assert open_ops == {"/health", "/ready", "/metrics", "/docs", "/docs/{name}", "/openapi.json"}


def test_served_document_is_the_composed_one(settings, service):
    application = build(settings, service=service)
    client = create_app(settings, application=application).test_client()
    assert client.get("/openapi.json").get_json() == application.openapi
    assert client.get("/docs").get_data(as_text=True) == application.docs.page


def test_a_route_missing_from_the_document_is_caught(settings, service):
    application = build(settings, service=service)
    document = {**application.openapi, "paths": dict(application.openapi["paths"])}
    del document["paths"]["/v2/models/{name}/ready"]
    assert _table_operations() - _document_operations(document) == {
        ("/v2/models/{name}/ready", "get")
    }
