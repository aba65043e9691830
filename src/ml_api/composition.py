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

import time
from dataclasses import dataclass
from typing import Any

from ml_api.core.auth import ApiKeyAuth
from ml_api.core.batching import Batcher
from ml_api.core.limits import Limits
from ml_api.core.model.artifact import Artifact, load_artifact
from ml_api.core.model.ranges import RangeCheck
from ml_api.core.model.validation import Validator
from ml_api.core.pages.card_page import CardContent, read_charts, render_html
from ml_api.core.pages.docs_ui import DocsUI
from ml_api.core.protocols import routes
from ml_api.core.protocols.openapi import openapi_document
from ml_api.core.protocols.v1 import V1Protocol
from ml_api.core.protocols.v2 import OpenInferenceProtocol
from ml_api.core.runtimes.registry import load_predictor
from ml_api.core.service import ModelCall, PredictionService, Submitter, Unbatched, labels_of
from ml_api.settings import Settings


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


def build_scoring(settings: Settings, *, artifact: Artifact | None = None) -> PredictionService:
    """Wire the prediction service alone: artifact → predictor, validator, range check → service.

    Args:
        settings: Configuration (model location, runtime, limits, out-of-range policy, batching).
        artifact: An already loaded artifact; loaded from ``settings`` when ``None``.

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
    return PredictionService(
        artifact,
        predictor,
        Validator(artifact.schema),
        RangeCheck(artifact.schema),
        Limits.from_settings(settings),
        batcher,
        load_seconds=load_seconds,
    )


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
        service = build_scoring(settings, artifact=artifact)
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
