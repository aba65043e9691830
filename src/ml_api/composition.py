"""The composition root: the one place that wires a served model, from settings to protocols.

``build_scoring(settings)`` loads and verifies the artifact and gives the
:class:`~ml_api.core.service.PredictionService` its parts: the runtime (predictor), the validator,
the range check, the limits and the batcher. ``build(settings)`` adds what HTTP needs: the API-key
check, the V1 and V2 protocols over the service, the OpenAPI document, Swagger UI on it and the
model card page. Flask's ``create_app``, Django's runtime and ``ml-api serve`` (the gunicorn
master, before it forks) start at ``build``; the CLI's ``predict`` and ``info`` at
``build_scoring`` (no Swagger bundle, no charts, no OpenAPI). Nothing else builds these objects::

    settings ─► artifact ─► predictor ─► PredictionService ─► V1 · V2 · OpenAPI · docs · card
                            validator ─┘  (build_scoring)     (build)
                            range check, limits, batcher ─┘
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ml_api.core.auth import ApiKeyAuth
from ml_api.core.batching import Batcher
from ml_api.core.drift import DriftCounter
from ml_api.core.limits import Limits
from ml_api.core.model.artifact import Artifact, load_artifact
from ml_api.core.model.profile import Profile, ProfileError, load_profile
from ml_api.core.model.ranges import RangeCheck
from ml_api.core.model.validation import Validator
from ml_api.core.model.versions import list_versions, resolve_version_dir
from ml_api.core.pages.card_page import CardContent, read_charts, render_html
from ml_api.core.pages.docs_ui import DocsUI
from ml_api.core.prediction_log import PredictionLog, RotatingFileSink, Sink, StdoutSink
from ml_api.core.protocols import routes
from ml_api.core.protocols.openapi import openapi_document
from ml_api.core.protocols.v1 import V1Protocol
from ml_api.core.protocols.v2 import OpenInferenceProtocol
from ml_api.core.repository import MAX_MODELS, Loaded, Repository, resident_bytes
from ml_api.core.runtimes.registry import load_predictor
from ml_api.core.service import (
    ModelCall,
    Observer,
    PredictionService,
    Submitter,
    Unbatched,
    labels_of,
)
from ml_api.settings import Settings

_log = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class ServedModel:
    """One served model version and what the transports answer with for it.

    It is a :class:`~ml_api.core.repository.Entry` of the server's repository.

    Attributes:
        service: Validation and prediction (no HTTP).
        v1: ``/predict``, ``/metadata`` (and ``/models/{name}/...``) of this version.
        v2: The Open Inference Protocol endpoints of this version.
        openapi: The OpenAPI 3.1 document (``GET /openapi.json`` for the default model,
            ``GET /models/{name}/openapi.json``), with the request examples and security schemes
            Swagger UI uses.
        card_html: The model card as a page, charts included (``GET /model``,
            ``GET /models/{name}/card``).
    """

    service: PredictionService
    v1: V1Protocol
    v2: OpenInferenceProtocol
    openapi: dict[str, Any]
    card_html: str


class Application:
    """The server: its served models (a :class:`Repository`) and what the transports share.

    It is the :class:`~ml_api.core.protocols.routes.Served` every endpoint's handler answers
    from: a handler takes its model once per request with :meth:`model` (which starts this
    process's repository watcher on first use). ``service``, ``v1``, ``v2``, ``openapi`` and
    ``card_html`` are the default model's (``ML_API_MODEL_NAME``) as served now, without
    starting the watcher (the gunicorn master reads them before forking).

    Args:
        settings: The configuration it was built from.
        repository: The served models.
        auth: The optional API-key check, applied before routing.
        docs: Swagger UI on the default model's document and its assets (``GET /docs``).
    """

    def __init__(
        self, settings: Settings, repository: Repository, auth: ApiKeyAuth, docs: DocsUI
    ) -> None:
        self.settings = settings
        self.repository = repository
        self.auth = auth
        self.docs = docs

    def model(self, name: str | None = None, version: str | None = None) -> ServedModel:
        """The served model ``name`` (the default for ``None``): :meth:`Repository.model`.

        Raises:
            NotFound: (404) not served, or ``version`` is not its serving version.
        """
        entry = self.repository.model(name, version)
        assert isinstance(entry, ServedModel)
        return entry

    @property
    def service(self) -> PredictionService:
        """The default model's service."""
        return self.repository.current().service

    @property
    def v1(self) -> V1Protocol:
        """The default model's V1 endpoints."""
        return self.repository.current().v1

    @property
    def v2(self) -> OpenInferenceProtocol:
        """The default model's V2 endpoints."""
        return self.repository.current().v2

    @property
    def openapi(self) -> dict[str, Any]:
        """The default model's OpenAPI document (``GET /openapi.json``)."""
        return self.repository.current().openapi

    @property
    def card_html(self) -> str:
        """The default model's card page (``GET /model``)."""
        return self.repository.current().card_html

    def start_draining(self) -> None:
        """Readiness answers 503 from now on, for every model, in every worker."""
        self.repository.current().service.start_draining()


def build_scoring(
    settings: Settings,
    *,
    artifact: Artifact | None = None,
    draining: Any = None,
    monitored: bool = False,
) -> PredictionService:
    """Wire the prediction service alone: artifact → predictor, validator, range check → service.

    Args:
        settings: Configuration (model location, runtime, limits, out-of-range policy, batching).
        artifact: An already loaded artifact; loaded from ``settings`` when ``None``.
        draining: The shutdown flag to share (another service's ``draining_flag``: every model
            of a server drains together); a new one when ``None``.
        monitored: Watch the served traffic (:func:`observers`: drift counting into the
            metrics, the prediction log): serving does, batch scoring does not.

    Returns:
        The service, warmed up (one prediction on the schema's example).

    Raises:
        ArtifactError: No artifact given and the configured model is missing, tampered with or
            incompatible.
    """
    load_seconds = 0.0
    if artifact is None:
        started = time.perf_counter()
        artifact = load_artifact(
            settings.resolved_model_root(),
            settings.model_name,
            settings.model_version,
            allow_version_mismatch=settings.allow_version_mismatch,
        )
        load_seconds = time.perf_counter() - started
    predictor = load_predictor(artifact, settings.runtime)
    call = ModelCall(predictor, labels_of(artifact, predictor))
    batcher: Submitter = (
        Batcher(
            call,
            settings.batch_max_rows,
            settings.batch_max_wait_ms / 1000,
            labels_of(artifact, predictor),
        )
        # merged calls only where they cannot change an answer (docs/production.md)
        if settings.batching and predictor.capabilities.batches_across_requests
        else Unbatched(call)
    )
    profile = _profile(artifact)
    return PredictionService(
        artifact,
        predictor,
        Validator(artifact.schema),
        RangeCheck(artifact.schema),
        Limits.from_settings(settings),
        batcher,
        load_seconds=load_seconds,
        profile=profile,
        observers=observers(settings, artifact, profile) if monitored else (),
        counts_drift=settings.drift and profile is not None,
        draining=draining,
    )


def observers(settings: Settings, artifact: Artifact, profile: Profile | None) -> list[Observer]:
    """What watches a served model's traffic (:class:`~ml_api.core.service.Observer`).

    The drift counter, where the version has a reference profile and ``ML_API_DRIFT`` is on
    (the default); the prediction log, where ``ML_API_PREDICTION_LOG_RATE`` is above 0 (a name
    of ``ML_API_LOG_EXCLUDE_FEATURES`` the model does not have is warned about: several models
    may be served, each with its own features).
    """
    out: list[Observer] = []
    model = (artifact.name, artifact.version)
    if profile is not None and settings.drift:
        out.append(DriftCounter(profile, artifact.schema, model))
    if settings.prediction_log_rate > 0:
        unknown = sorted(set(settings.log_exclude_features) - set(artifact.schema.names))
        if unknown:  # a typo would log the field it meant to hide: said at start-up
            _log.warning(
                "ML_API_LOG_EXCLUDE_FEATURES names %s, which model %s v%s does not have "
                "(its features: %s)",
                ", ".join(unknown),
                artifact.name,
                artifact.version,
                ", ".join(artifact.schema.names),
            )
        sink: Sink = (
            RotatingFileSink(
                settings.prediction_log_file,
                settings.prediction_log_max_bytes,
                settings.prediction_log_backups,
            )
            if settings.prediction_log_file is not None
            else StdoutSink()
        )
        out.append(
            PredictionLog(
                sink,
                artifact.schema,
                model,
                rate=settings.prediction_log_rate,
                exclude=settings.log_exclude_features,
                max_instances=settings.prediction_log_max_instances,
            )
        )
    return out


def _profile(artifact: Artifact) -> Profile | None:
    """The version's reference profile, or ``None`` (drift not measured).

    ``None`` when it has none, or one this ml-api cannot read (a newer format: said in the log
    and in ``GET /metadata``).
    """
    try:
        return load_profile(artifact.card.raw, artifact.path)
    except ProfileError as exc:
        _log.warning("model %s: drift is not measured: %s", artifact.path, exc)
        return None


def build(
    settings: Settings,
    *,
    artifact: Artifact | None = None,
    service: PredictionService | None = None,
) -> Application:
    """Wire the server: every served model (:func:`build_scoring` and its protocols), the rest.

    Without ``artifact`` or ``service``, the server serves every model under the model root (or
    ``settings.models``), each at its serving version, and follows the registry (promotions,
    SIGHUP, the repository extension's ``load``): :class:`~ml_api.core.repository.Repository`.
    With one, it serves that model alone, fixed.

    Args:
        settings: Configuration (model location, limits, API keys, public paths, batching).
        artifact: An already loaded artifact: served alone.
        service: An already built service (tests that need to reach into it): served alone.
            Takes precedence over ``artifact``.

    Returns:
        The application.

    Raises:
        ArtifactError: Nothing given and the default model (``settings.model_name``) is missing,
            tampered with or incompatible (another model that fails is logged and listed as
            unavailable by the repository index instead).
        OSError: ``settings.api_keys_file`` is set but unreadable.
    """
    public_paths = (
        routes.public_paths() if settings.public_paths is None else tuple(settings.public_paths)
    )
    auth = ApiKeyAuth(
        [k.get_secret_value() for k in settings.api_keys],
        public_paths,
        keys_file=settings.api_keys_file,
    )

    def wrap(built: PredictionService) -> ServedModel:
        return served_model(built, auth_enabled=auth.enabled, public_paths=public_paths)

    if service is not None or artifact is not None:
        single = service or build_scoring(settings, artifact=artifact, monitored=True)
        name = single.artifact.name
        repository = Repository((name,), name, {name: Loaded(wrap(single), 0)})
    else:
        repository = build_repository(settings, wrap)
    title = repository.current().openapi["info"]["title"]
    return Application(settings, repository, auth, DocsUI.build(title))


def served_model(
    service: PredictionService, *, auth_enabled: bool, public_paths: tuple[str, ...]
) -> ServedModel:
    """Wrap one model version's service in its protocols, OpenAPI document and card page.

    Args:
        service: The built service.
        auth_enabled: Whether API keys are configured (the document's security schemes).
        public_paths: Paths open without a key.

    Returns:
        The served model.
    """
    card = service.artifact.card
    predictor = service.predictor
    document = openapi_document(
        card=card,
        classes=predictor.classes,
        probabilities=predictor.has_probabilities,
        limits=service.limits,
        platform=predictor.runtime,
        auth_enabled=auth_enabled,
        public_paths=public_paths,
    )
    return ServedModel(
        service=service,
        v1=V1Protocol(service),
        v2=OpenInferenceProtocol(service),
        openapi=document,
        card_html=render_html(
            CardContent.from_card(
                card, read_charts(card, service.artifact.path), serving_facts(service)
            )
        ),
    )


def serving_facts(service: PredictionService) -> list[tuple[str, str]]:
    """What the card page says about how this server runs the model: runtime and batching."""
    batching = service.batching
    return [
        ("runtime", f"{service.predictor.runtime} {service.predictor.runtime_version}"),
        (
            "batching",
            "concurrent requests may share a model call (each instance's answer is the same "
            "as alone)"
            if batching["across_requests"]
            else f"one model call per request: {batching['why_not']}",
        ),
    ]


log = logging.getLogger("ml_api.repository")


def served_names(settings: Settings) -> tuple[tuple[str, ...], dict[str, str | None]]:
    """Which models a server serves, and each one's pin.

    Args:
        settings: ``models`` (``name`` or ``name:version`` entries), ``model_name`` (always
            served, first), ``model_version`` (its pin), ``model_root``.

    Returns:
        ``(names, pins)``: the default model first, then the others sorted (at most
        :data:`~ml_api.core.repository.MAX_MODELS`); ``pins`` maps a name to its pinned
        version or alias, ``None`` where the ``production`` alias, else the newest, serves.
    """
    default = settings.model_name
    pins: dict[str, str | None] = {default: settings.model_version}
    if settings.models is None:
        root = settings.resolved_model_root()
        found = (
            sorted(p.name for p in root.iterdir() if p.is_dir() and list_versions(root, p.name))
            if root.is_dir()
            else []
        )
        for name in found:
            pins.setdefault(name, None)
    else:
        for item in settings.models:
            name, _, pin = item.partition(":")
            if name != default:
                pins[name.strip()] = pin.strip() or None
    others = sorted(n for n in pins if n != default)
    if len(others) >= MAX_MODELS:
        log.warning("serving the first %d of %d models", MAX_MODELS, len(others) + 1)
    names = (default, *others[: MAX_MODELS - 1])
    return names, {n: pins[n] for n in names}


def build_repository(
    settings: Settings, wrap: Callable[[PredictionService], ServedModel]
) -> Repository:
    """Build every served model (before gunicorn forks) into a repository that follows the registry.

    Args:
        settings: The configuration (:func:`served_names`, the budget, the reload interval).
        wrap: Wraps a built service in its protocols (:func:`served_model`).

    Returns:
        The repository; a model other than the default that fails to load is left out, and the
        index says why.

    Raises:
        ArtifactError: The default model cannot be loaded.
    """
    names, pins = served_names(settings)
    root = settings.resolved_model_root()
    draining: list[Any] = []

    def resolve(name: str) -> str:  # a model found after start has no pin: its default
        return resolve_version_dir(root, name, pins.get(name)).name

    def discover() -> list[str]:
        return [p.name for p in root.iterdir() if p.is_dir() and list_versions(root, p.name)]

    def build_one(name: str, version: str) -> ServedModel:
        scoped = settings.model_copy(update={"model_name": name, "model_version": version})
        built = build_scoring(scoped, draining=draining[0] if draining else None, monitored=True)
        if not draining:
            draining.append(built.draining_flag)
        return wrap(built)

    loaded: dict[str, Loaded] = {}
    failures: dict[str, str] = {}
    budget = None if settings.memory_budget_mb is None else int(settings.memory_budget_mb * 1e6)
    used = 0
    for name in names:
        before = resident_bytes()
        try:
            entry = build_one(name, resolve(name))
        except Exception as exc:
            if name == settings.model_name:
                raise
            failures[name] = f"model {name!r} cannot be served: {exc}"
            log.error("%s", failures[name])
            continue
        card_bytes = entry.service.artifact.card.model_file.bytes or 0
        grown = max(resident_bytes() - before, card_bytes)
        if budget is not None and used + grown > budget and name != settings.model_name:
            failures[name] = (
                f"model {name!r} needs about {grown / 1e6:.1f} MB; the {budget / 1e6:.1f} MB "
                "budget (ML_API_MEMORY_BUDGET_MB) is used up"
            )
            log.error("%s", failures[name])
            continue
        used += grown
        loaded[name] = Loaded(entry, grown)
    return Repository(
        names,
        settings.model_name,
        loaded,
        build=build_one,
        resolve=resolve,
        failures=failures,
        memory_budget_bytes=budget,
        reload_seconds=settings.reload_seconds,
        discover=discover if settings.models is None else None,
    )
