"""``GET /docs``: Swagger UI on ``/openapi.json``, from assets a maintained Python package bundles.

The assets come from ``drf-spectacular-sidecar`` (Swagger UI 5, released with each upstream
Swagger UI release), read from the installed package, never from a CDN: pods have no internet.
Swagger UI 5 is the first to render OpenAPI 3.1 (the document uses ``prefixItems`` and type
lists); ``swagger-ui-bundle`` on PyPI still ships Swagger UI 4.15, which refuses 3.1 documents.
The package is located with :func:`importlib.util.find_spec` and never imported (its
``__init__`` imports Django, and the core imports no web framework).

Both adapters serve :attr:`DocsUI.page` at ``/docs`` and :meth:`DocsUI.asset` at
``/docs/<name>``; the document is completed here for people by :func:`complete_for_people`:
request examples that "Try it out" sends as they are (V1 ``/predict`` and V2 ``infer``), and the
API-key security schemes when keys are configured.
"""

from __future__ import annotations

import html
import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ml_api.core.errors import NotFound

ASSET_PACKAGE = "drf_spectacular_sidecar"
ASSET_DIR = ("static", "drf_spectacular_sidecar", "swagger-ui-dist")
INITIALIZER = "swagger-initializer.js"
ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
}
"""Files of the Swagger UI distribution that the page loads, with their content types."""

PUBLIC_PATHS = ("/docs", "/openapi.json", *(f"/docs/{n}" for n in (*ASSETS, INITIALIZER)))
"""Paths the docs page needs without an API key (``Settings.public_paths`` lists them too)."""

# Relative URLs, so the page also works behind a path prefix (``/docs`` -> ``openapi.json``).
_INITIALIZER_JS = """\
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    validatorUrl: null,
    persistAuthorization: false,
    displayRequestDuration: true
  });
});
"""


def asset_names() -> tuple[str, ...]:
    """Names of the files served under ``/docs/``, sorted (the ``{name}`` of ``/docs/{name}``)."""
    return tuple(sorted((*ASSETS, INITIALIZER)))


def asset_directory() -> Path:
    """Return the folder of the bundled Swagger UI distribution.

    Raises:
        RuntimeError: ``drf-spectacular-sidecar`` is not installed (it is a dependency of ml-api).
    """
    spec = importlib.util.find_spec(ASSET_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            f"{ASSET_PACKAGE} is not installed; `pip install drf-spectacular-sidecar` "
            "(an ml-api dependency) provides the Swagger UI assets for /docs"
        )
    return Path(next(iter(spec.submodule_search_locations))).joinpath(*ASSET_DIR)


@dataclass(frozen=True)
class DocsUI:
    """The ``/docs`` page and its assets, read once (before gunicorn forks its workers).

    Attributes:
        page: The HTML page, UTF-8 text.
        assets: ``name -> (bytes, content type)`` for every file under ``/docs/``.
    """

    page: str
    assets: dict[str, tuple[bytes, str]] = field(repr=False)

    @classmethod
    def build(cls, title: str) -> DocsUI:
        """Read the assets and render the page.

        Args:
            title: The page title (the OpenAPI document's ``info.title``).

        Raises:
            RuntimeError: The asset package is missing.
            OSError: An asset file cannot be read.
        """
        folder = asset_directory()
        assets = {name: ((folder / name).read_bytes(), ctype) for name, ctype in ASSETS.items()}
        assets[INITIALIZER] = (_INITIALIZER_JS.encode(), ASSETS["swagger-ui-bundle.js"])
        page = (
            "<!doctype html>\n<html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>{html.escape(title)}</title>"
            # An empty icon: the browser asks for no /favicon.ico (a 404 in the console).
            "<link rel='icon' href='data:,'>"
            "<link rel='stylesheet' href='docs/swagger-ui.css'></head>"
            "<body><div id='swagger-ui'></div>"
            "<noscript>This page needs JavaScript; the API is described in "
            "<a href='openapi.json'>openapi.json</a>.</noscript>"
            "<script src='docs/swagger-ui-bundle.js'></script>"
            f"<script src='docs/{INITIALIZER}'></script></body></html>\n"
        )
        return cls(page=page, assets=assets)

    def asset(self, name: str) -> tuple[bytes, str]:
        """Return ``(body, content type)`` for ``GET /docs/<name>``.

        Raises:
            NotFound: (404) no such asset.
        """
        try:
            return self.assets[name]
        except KeyError:
            raise NotFound(f"no docs asset {name!r}") from None


def _v1_examples(schema: Any) -> dict[str, Any]:
    example = schema.example()
    names = list(schema.names)
    return {
        "positional": {
            "summary": "one instance, values in feature order",
            "value": {"features": [example[n] for n in names]},
        },
        "named": {"summary": "one named instance", "value": {"features": example}},
        "records": {"summary": "a batch of records", "value": {"instances": [example, example]}},
    }


def _v2_example(schema: Any) -> dict[str, Any]:
    example = schema.example()
    return {
        "inputs": [
            {
                "name": f.name,
                "datatype": "FP64" if f.kind == "numeric" else "BYTES",
                "shape": [1],
                "data": [example[f.name]],
            }
            for f in schema.features
        ]
    }


def _with_default(param: dict[str, Any], value: str) -> dict[str, Any]:
    return {**param, "schema": {"type": "string", "enum": [value], "default": value}}


def complete_for_people(
    document: dict[str, Any], *, card: Any, auth_enabled: bool, public_paths: list[str]
) -> dict[str, Any]:
    """Add what Swagger UI needs to the OpenAPI document, in place, and return it.

    - Request examples that "Try it out" sends unchanged: ``POST /predict`` (one per body form,
      named) and the V2 ``infer`` operations (one tensor per feature), whose ``name`` and
      ``version`` parameters default to the served model.
    - ``GET /model``, the card page, and ``GET /docs/{name}``, the Swagger UI files.
    - With API keys configured: the ``bearer`` (``Authorization: Bearer <key>``) and ``apiKey``
      (``X-API-Key``) schemes, required by default, and ``security: []`` on the public paths,
      so the "Authorize" button sends the key and the public operations work without one.

    Args:
        document: The document from :func:`ml_api.core.protocols.openapi.openapi_document`.
        card: The served model's card (``ModelCard``: name, version, feature schema).
        auth_enabled: Whether API keys are configured.
        public_paths: Paths open without a key (``Settings.public_paths``).

    Returns:
        ``document``, changed.
    """
    schema = card.schema
    paths = document["paths"]
    body = paths["/predict"]["post"]["requestBody"]["content"]["application/json"]
    body["examples"] = _v1_examples(schema)
    defaults = {"name": str(card.name), "version": str(card.version)}
    for path, item in paths.items():
        if not path.startswith("/v2/models/"):
            continue
        item["parameters"] = [
            _with_default(p, defaults[p["name"]]) if p.get("name") in defaults else p
            for p in item.get("parameters", [])
        ]
        if path.endswith("/infer"):
            media = item["post"]["requestBody"]["content"]["application/json"]
            media["example"] = _v2_example(schema)
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    assets = sorted((*ASSETS, INITIALIZER))
    paths["/docs/{name}"] = {
        "get": {
            "summary": "A Swagger UI file the /docs page loads",
            "parameters": [
                {"name": "name", "in": "path", "required": True,
                 "schema": {"type": "string", "enum": assets}}
            ],
            "responses": {
                "200": {"description": "OK", "content": {"text/javascript": {"schema": {}},
                                                         "text/css": {"schema": {}}}},
                "404": {"description": "error", "content": error},
            },
        }
    }  # fmt: skip
    paths["/model"] = {
        "get": {
            "summary": "The model card as a page for people (charts included)",
            "responses": {
                "200": {"description": "OK", "content": {"text/html": {"schema": {}}}},
                "401": {"description": "error", "content": error},
            },
        }
    }
    if auth_enabled:
        document.setdefault("components", {})["securitySchemes"] = {
            "bearer": {
                "type": "http",
                "scheme": "bearer",
                "description": "Authorization: Bearer <API key>",
            },
            "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
        }
        document["security"] = [{"bearer": []}, {"apiKey": []}]
        public = {"/" + p.strip("/") for p in public_paths}
        if {f"/docs/{name}" for name in assets} <= public:
            public.add("/docs/{name}")
        for path, item in paths.items():
            if path in public:
                for method, op in item.items():
                    if method != "parameters":
                        op["security"] = []
    return document
