"""The one endpoint table: every route ml-api serves; adapters and path lists derive from it.

Each row is one documented path (plus its trailing-slash spelling where both answer: the pages and
documents a person or client types, ``/predict``, ``/metadata``, ``/docs``, ``/model``, ``/v2``;
probes, metrics and files answer only as written): its name,
methods, path templates (``{param}`` as in OpenAPI), the handler that answers it, and its flags:

- ``probe``: the kubelet probes it or Prometheus scrapes it, so the gunicorn worker answers it off
  the request pool (``ml_api.serving.probe_lane``);
- ``public``: open without an API key unless ``ML_API_PUBLIC_PATHS`` says otherwise (the default
  of :attr:`ml_api.settings.Settings.public_paths`);
- ``any_host``: answered whatever the ``Host`` header (the kubelet and Prometheus use the pod IP;
  Django's ``ALLOWED_HOSTS`` check skips it).

The Flask routes (``ml_api.api.flask_app.routes``) and the Django URL patterns
(``ml_api.api.django_app.ml_api_app.urls``) are bound from :data:`ENDPOINTS` in a loop; the
OpenAPI document's paths (:mod:`ml_api.core.protocols.openapi`, from ``summary``, ``ok``,
``media``, ``errors`` and ``body``), :func:`public_paths`, :func:`probe_paths` and
:func:`any_host_paths` are derived from it. Adding an endpoint is a row here and its method in
its protocol's module.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from ml_api.core import metrics
from ml_api.core.pages.docs_ui import DocsUI, asset_names
from ml_api.core.protocols.repository_body import read_repository_body
from ml_api.core.protocols.request import Reply, Request
from ml_api.core.protocols.v1 import V1Protocol
from ml_api.core.protocols.v2 import OpenInferenceProtocol, server_live, server_metadata

JSON = "application/json"
HTML = "text/html; charset=utf-8"


class Model(Protocol):
    """One served model version's protocols and pages (``ml_api.composition.ServedModel``)."""

    @property
    def v1(self) -> V1Protocol:
        """The V1 endpoints."""
        ...

    @property
    def v2(self) -> OpenInferenceProtocol:
        """The Open Inference Protocol (V2) endpoints."""
        ...

    @property
    def openapi(self) -> dict[str, Any]:
        """The OpenAPI document."""
        ...

    @property
    def card_html(self) -> str:
        """The model card page."""
        ...


class Repository(Protocol):
    """The served models' repository (``ml_api.core.repository.Repository``)."""

    def index(self) -> list[dict[str, Any]]:
        """The repository index."""
        ...

    def load(self, name: str) -> None:
        """Load (or swap to the serving version of) a model in every worker."""
        ...

    def unload(self, name: str) -> None:
        """Stop serving a model in every worker."""
        ...


class Served(Model, Protocol):
    """What the handlers answer from: the default model's protocols and pages, every model.

    ``ml_api.composition.Application`` is one.
    """

    @property
    def docs(self) -> DocsUI:
        """Swagger UI's page and assets."""
        ...

    @property
    def repository(self) -> Repository:
        """The served models."""
        ...

    def model(self, name: str | None = None, version: str | None = None) -> Model:
        """The served model ``name`` (``None``: the default), taken once per request.

        Raises:
            NotFound: (404) not served, or ``version`` is not its serving version.
        """
        ...


Handler = Callable[[Served, Request], Reply]
"""Answers one request (the path's parameters in ``request.params``); raises ``ServingError``."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One row of the endpoint table.

    Attributes:
        name: A unique name (the Flask endpoint and the Django URL name).
        methods: HTTP methods, upper case (``HEAD`` and ``OPTIONS`` are added by the adapters).
        paths: Path templates, ``{param}`` for a path segment; the first is documented, the
            others are its trailing-slash spelling.
        handler: Answers the request.
        summary: The OpenAPI operation's summary.
        ok: The OpenAPI component schema of the 200 JSON body; ``None`` for a plain object.
        media: Media types of the 200 body (the schema applies to JSON; others have none).
        errors: Error statuses the OpenAPI document lists, in order.
        body: The request body: ``"predict"`` (V1) or ``"infer"`` (V2); ``None`` for none.
        values: Fixed values of a path parameter (documented as an enum; expanded into
            :func:`public_paths`).
        probe: Answered off the request pool (probes and scrapes).
        public: Open without an API key by default.
        any_host: Answered whatever the ``Host`` header.
    """

    name: str
    methods: tuple[str, ...]
    paths: tuple[str, ...]
    handler: Handler
    summary: str
    ok: str | None = None
    media: tuple[str, ...] = (JSON,)
    errors: tuple[int, ...] = ()
    body: str | None = None
    values: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    probe: bool = False
    public: bool = False
    any_host: bool = False


def _name(request: Request) -> str:
    return request.params["name"]


def _version(request: Request) -> str | None:
    return request.params.get("version")


def _metrics(app: Served, request: Request) -> Reply:
    body, content_type = metrics.render()
    return Reply(body, content_type)


def _page(request: Request, html: Any) -> Reply:
    """An HTML page; its trailing-slash spelling redirects to it (308, a relative ``Location``).

    The pages' links and assets are relative (``docs/swagger-ui.css``, ``openapi.json``), so they
    also work behind a path prefix; from ``/docs/`` they would resolve under ``/docs/docs/``
    (404, a blank page), so that spelling sends the browser to ``/docs`` instead.
    """
    if request.path.endswith("/"):
        last = request.path.rstrip("/").rsplit("/", 1)[-1]
        return Reply(b"", HTML, status=308, headers={"Location": f"../{last}"})
    return Reply(html, HTML)


def _docs_asset(app: Served, request: Request) -> Reply:
    body, content_type = app.docs.asset(_name(request))
    return Reply(body, content_type)


def _v2_model(app: Served, request: Request) -> Reply:
    name, version = _name(request), _version(request)
    return Reply(app.model(name, version).v2.model_metadata(name, version))


def _v2_model_ready(app: Served, request: Request) -> Reply:
    name, version = _name(request), _version(request)
    return Reply(app.model(name, version).v2.model_ready(name, version))


def _v2_infer(app: Served, request: Request) -> Reply:
    name, version = _name(request), _version(request)
    return Reply(app.model(name, version).v2.infer(request, name, version))


def _model_predict(app: Served, request: Request) -> Reply:
    return Reply(app.model(_name(request), _version(request)).v1.predict(request))


def _model_metadata(app: Served, request: Request) -> Reply:
    return Reply(app.model(_name(request), _version(request)).v1.metadata())


def _model_openapi(app: Served, request: Request) -> Reply:
    return Reply(app.model(_name(request)).openapi)


def _model_card(app: Served, request: Request) -> Reply:
    return Reply(app.model(_name(request)).card_html, HTML)


def _repository_index(app: Served, request: Request) -> Reply:
    ready_only = read_repository_body(request).get("ready") is True
    rows = app.repository.index()
    return Reply([r for r in rows if r["state"] == "READY"] if ready_only else rows)


def _repository_load(app: Served, request: Request) -> Reply:
    read_repository_body(request)
    app.repository.load(_name(request))
    return Reply({})


def _repository_unload(app: Served, request: Request) -> Reply:
    read_repository_body(request)
    app.repository.unload(_name(request))
    return Reply({})


_MODEL = "/v2/models/{name}"
_VERSION = "/v2/models/{name}/versions/{version}"
_V1_MODEL = "/models/{name}"
_V1_VERSION = "/models/{name}/versions/{version}"
_REPOSITORY = "/v2/repository/models/{name}"
_V1_ERRORS = (400, 401, 413, 415, 422, 504)
_V2_INFER_ERRORS = (400, 401, 404, 413, 415, 504)

ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("predict", ("POST",), ("/predict", "/predict/"),
             lambda app, r: Reply(app.model().v1.predict(r)), "Predict one instance or a batch",
             ok="Prediction", errors=_V1_ERRORS, body="predict"),
    Endpoint("health", ("GET",), ("/health",), lambda app, r: Reply(V1Protocol.liveness()),
             "Liveness", probe=True, public=True, any_host=True),
    Endpoint("ready", ("GET",), ("/ready",), lambda app, r: Reply(app.model().v1.readiness()),
             "Readiness", errors=(503,), probe=True, public=True, any_host=True),
    Endpoint("metadata", ("GET",), ("/metadata", "/metadata/"),
             lambda app, r: Reply(app.model().v1.metadata()),
             "The model card", errors=(401,)),
    Endpoint("metrics", ("GET",), ("/metrics",), _metrics, "Prometheus metrics",
             media=("text/plain",), probe=True, public=True, any_host=True),
    Endpoint("openapi", ("GET",), ("/openapi.json",), lambda app, r: Reply(app.model().openapi),
             "This document", errors=(401,), public=True),
    Endpoint("docs", ("GET",), ("/docs", "/docs/"), lambda app, r: _page(r, app.docs.page),
             "This document as an HTML page", media=("text/html",), errors=(401,), public=True),
    Endpoint("v2", ("GET",), ("/v2", "/v2/"), lambda app, r: Reply(server_metadata()),
             "V2 server metadata", ok="V2ServerMetadata", errors=(401,)),
    Endpoint("v2_live", ("GET",), ("/v2/health/live",), lambda app, r: Reply(server_live()),
             "V2 server liveness", ok="V2Live", errors=(401,), any_host=True),
    Endpoint("v2_ready", ("GET",), ("/v2/health/ready",),
             lambda app, r: Reply(app.model().v2.server_ready()), "V2 server readiness",
             ok="V2Ready",
             errors=(401, 503), any_host=True),
    Endpoint("v2_model", ("GET",), (_MODEL,), _v2_model, "V2 model metadata",
             ok="V2ModelMetadata", errors=(401, 404)),
    Endpoint("v2_model_ready", ("GET",), (f"{_MODEL}/ready",), _v2_model_ready,
             "V2 model readiness", ok="V2ModelReady", errors=(401, 404, 503)),
    Endpoint("v2_infer", ("POST",), (f"{_MODEL}/infer",), _v2_infer, "V2 inference on tensors",
             ok="V2InferenceResponse", errors=_V2_INFER_ERRORS, body="infer"),
    Endpoint("v2_version", ("GET",), (_VERSION,), _v2_model, "V2 model metadata",
             ok="V2ModelMetadata", errors=(401, 404)),
    Endpoint("v2_version_ready", ("GET",), (f"{_VERSION}/ready",), _v2_model_ready,
             "V2 model readiness", ok="V2ModelReady", errors=(401, 404, 503)),
    Endpoint("v2_version_infer", ("POST",), (f"{_VERSION}/infer",), _v2_infer,
             "V2 inference on tensors", ok="V2InferenceResponse", errors=_V2_INFER_ERRORS,
             body="infer"),
    Endpoint("docs_asset", ("GET",), ("/docs/{name}",), _docs_asset,
             "A Swagger UI file the /docs page loads", media=("text/javascript", "text/css"),
             errors=(404,), values={"name": asset_names()}, public=True),
    Endpoint("model", ("GET",), ("/model", "/model/"),
             lambda app, r: _page(r, app.model().card_html),
             "The model card as a page for people (charts included)", media=("text/html",),
             errors=(401,)),
    Endpoint("model_predict", ("POST",), (f"{_V1_MODEL}/predict", f"{_V1_MODEL}/predict/"),
             _model_predict, "Predict with the serving version of one model",
             ok="Prediction", errors=(*_V1_ERRORS, 404), body="predict"),
    Endpoint("model_version_predict", ("POST",),
             (f"{_V1_VERSION}/predict", f"{_V1_VERSION}/predict/"), _model_predict,
             "Predict with one version of one model (404 unless it is the serving one)",
             ok="Prediction", errors=(*_V1_ERRORS, 404), body="predict"),
    Endpoint("model_metadata", ("GET",), (f"{_V1_MODEL}/metadata",), _model_metadata,
             "One model's card", errors=(401, 404)),
    Endpoint("model_version_metadata", ("GET",), (f"{_V1_VERSION}/metadata",), _model_metadata,
             "One model version's card (404 unless it is the serving one)", errors=(401, 404)),
    Endpoint("model_openapi", ("GET",), (f"{_V1_MODEL}/openapi.json",), _model_openapi,
             "One model's own OpenAPI document", errors=(401, 404)),
    Endpoint("model_card", ("GET",), (f"{_V1_MODEL}/card",), _model_card,
             "One model's card as a page for people", media=("text/html",), errors=(401, 404)),
    Endpoint("v2_repository_index", ("POST",), ("/v2/repository/index",), _repository_index,
             "V2 model repository index: every model, its serving version and state",
             ok="RepositoryIndex", errors=(400, 401)),
    Endpoint("v2_repository_load", ("POST",), (f"{_REPOSITORY}/load",), _repository_load,
             "V2 model repository: load a model, or verify and swap to its serving version",
             errors=(400, 401, 404, 507)),
    Endpoint("v2_repository_unload", ("POST",), (f"{_REPOSITORY}/unload",), _repository_unload,
             "V2 model repository: stop serving a model", errors=(400, 401, 404)),
)  # fmt: skip
"""Every endpoint, in the order the OpenAPI document lists them."""


def concrete_paths(endpoint: Endpoint) -> list[str]:
    """The concrete paths of a row's documented path (``{param}`` expanded over ``values``).

    Returns:
        ``["/docs/swagger-ui.css", ...]`` for ``/docs/{name}``; the path itself for a row
        without ``values``.
    """
    paths = [endpoint.paths[0]]
    for param, values in endpoint.values.items():
        paths = [p.replace("{" + param + "}", v) for p in paths for v in values]
    return paths


def public_paths() -> tuple[str, ...]:
    """Paths open without an API key by default (``Settings.public_paths``' default)."""
    return tuple(p for e in ENDPOINTS if e.public for p in concrete_paths(e))


def probe_paths() -> tuple[str, ...]:
    """Paths the probe lane answers off the request pool (``GET``/``HEAD`` only)."""
    return tuple(e.paths[0] for e in ENDPOINTS if e.probe)


def any_host_paths() -> frozenset[str]:
    """Paths answered whatever the ``Host`` header (every spelling of each)."""
    return frozenset(p for e in ENDPOINTS if e.any_host for p in e.paths)


def angle_brackets(path: str) -> str:
    """A template in Flask's and Django's syntax: ``/v2/models/{name}`` -> ``/v2/models/<name>``."""
    return path.replace("{", "<").replace("}", ">")
