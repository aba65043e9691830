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
from ml_api.core.pages.card_page import CardContent, read_charts, render_html
from ml_api.core.pages.docs_ui import DocsUI
from ml_api.core.prediction_log import PredictionLog, RotatingFileSink, Sink, StdoutSink
from ml_api.core.protocols import routes
from ml_api.core.protocols.openapi import openapi_document
from ml_api.core.protocols.v1 import V1Protocol
from ml_api.core.protocols.v2 import OpenInferenceProtocol
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
class Application:
    """One served model and everything the transports answer with, built once per process.

    It is the :class:`~ml_api.core.protocols.routes.Served` every endpoint's handler answers from.

    Attributes:
        settings: The configuration it was built from.
        service: Validation and prediction (no HTTP).
        auth: The optional API-key check, applied before routing.
        v1: ``/predict``, ``/health``, ``/ready``, ``/metadata``.
        v2: The Open Inference Protocol endpoints.
        openapi: The OpenAPI 3.1 document (``GET /openapi.json``), with the request examples
            and security schemes Swagger UI uses.
        docs: Swagger UI on it and its assets (``GET /docs``, ``GET /docs/<asset>``).
        card_html: The model card as a page, charts included (``GET /model``).
    """

    settings: Settings
    service: PredictionService
    auth: ApiKeyAuth
    v1: V1Protocol
    v2: OpenInferenceProtocol
    openapi: dict[str, Any]
    docs: DocsUI
    card_html: str


def build_scoring(
    settings: Settings, *, artifact: Artifact | None = None, monitored: bool = False
) -> PredictionService:
    """Wire the prediction service alone: artifact → predictor, validator, range check → service.

    Args:
        settings: Configuration (model location, runtime, limits, out-of-range policy, batching).
        artifact: An already loaded artifact; loaded from ``settings`` when ``None``.
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
    )


def observers(settings: Settings, artifact: Artifact, profile: Profile | None) -> list[Observer]:
    """What watches a served model's traffic (:class:`~ml_api.core.service.Observer`).

    The drift counter, where the version has a reference profile and ``ML_API_DRIFT`` is on
    (the default); the prediction log, where ``ML_API_PREDICTION_LOG_RATE`` is above 0.

    Raises:
        ValueError: ``ML_API_LOG_EXCLUDE_FEATURES`` names a feature the model does not have.
    """
    out: list[Observer] = []
    model = (artifact.name, artifact.version)
    if profile is not None and settings.drift:
        out.append(DriftCounter(profile, artifact.schema, model))
    if settings.prediction_log_rate > 0:
        unknown = sorted(set(settings.log_exclude_features) - set(artifact.schema.names))
        if unknown:
            raise ValueError(
                f"ML_API_LOG_EXCLUDE_FEATURES names {', '.join(unknown)}, which model "
                f"{artifact.name} v{artifact.version} does not have (its features: "
                f"{', '.join(artifact.schema.names)})"
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
    """Wire a served model: the service (:func:`build_scoring`), then its protocols and pages.

    Args:
        settings: Configuration (model location, limits, API keys, public paths, batching).
        artifact: An already loaded artifact; loaded from ``settings`` when ``None``.
        service: An already built service (tests that need to reach into it); built from
            ``artifact``/``settings`` when ``None``. Takes precedence over ``artifact``.

    Returns:
        The application.

    Raises:
        ArtifactError: Nothing given and the configured model is missing, tampered with or
            incompatible.
        OSError: ``settings.api_keys_file`` is set but unreadable.
    """
    if service is None:
        service = build_scoring(settings, artifact=artifact, monitored=True)
    public_paths = (
        routes.public_paths() if settings.public_paths is None else tuple(settings.public_paths)
    )
    auth = ApiKeyAuth(
        [k.get_secret_value() for k in settings.api_keys],
        public_paths,
        keys_file=settings.api_keys_file,
    )
    card = service.artifact.card
    predictor = service.predictor
    document = openapi_document(
        card=card,
        classes=predictor.classes,
        probabilities=predictor.has_probabilities,
        limits=service.limits,
        platform=predictor.runtime,
        auth_enabled=auth.enabled,
        public_paths=public_paths,
    )
    return Application(
        settings=settings,
        service=service,
        auth=auth,
        v1=V1Protocol(service),
        v2=OpenInferenceProtocol(service),
        openapi=document,
        docs=DocsUI.build(document["info"]["title"]),
        card_html=render_html(
            CardContent.from_card(card, read_charts(card, service.artifact.path))
        ),
    )
