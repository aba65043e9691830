"""``GET /docs``: Swagger UI on ``/openapi.json``, from assets a maintained Python package bundles.

The assets come from ``drf-spectacular-sidecar`` (Swagger UI 5, released with each upstream
Swagger UI release), read from the installed package, never from a CDN: pods have no internet.
Swagger UI 5 is the first to render OpenAPI 3.1 (the document uses ``prefixItems`` and type
lists); ``swagger-ui-bundle`` on PyPI still ships Swagger UI 4.15, which refuses 3.1 documents.
The package is located with :func:`importlib.util.find_spec` and never imported (its
``__init__`` imports Django, and the core imports no web framework).

Both adapters serve :attr:`DocsUI.page` at ``/docs`` and :meth:`DocsUI.asset` at
``/docs/<name>`` (the endpoint table's ``docs`` and ``docs_asset`` rows); the document it shows,
request examples and security schemes included, is :mod:`ml_api.core.protocols.openapi`'s.
"""

from __future__ import annotations

import html
import importlib.util
from dataclasses import dataclass, field
from pathlib import Path

from ml_api.core.errors import NotFound

ASSET_PACKAGE = "drf_spectacular_sidecar"
ASSET_DIR = ("static", "drf_spectacular_sidecar", "swagger-ui-dist")
INITIALIZER = "swagger-initializer.js"
ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
}
"""Files of the Swagger UI distribution that the page loads, with their content types."""

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
