"""The composition root: the one place that wires a served model, from settings to protocols.

``build(settings)`` loads and verifies the artifact, builds its runtime (the predictor), the
:class:`~ml_api.core.service.PredictionService` around it, and the protocol objects that hold
only what they need: the Open Inference Protocol (V2) endpoints, the OpenAPI document, Swagger UI
on it and the model card page. Flask's ``create_app``, Django's runtime, ``ml-api serve`` (the
gunicorn master, before it forks) and the CLI's ``predict`` and ``info`` all start here; nothing
else builds these objects::

    settings ─► artifact ─► predictor (runtime) ─► PredictionService ─► V2 · OpenAPI · docs · card
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ml_api.core.model.artifact import Artifact
from ml_api.core.pages.card_page import CardContent, read_charts, render_html
from ml_api.core.pages.docs_ui import DocsUI, complete_for_people
from ml_api.core.protocols.openapi import openapi_document
from ml_api.core.protocols.v2 import OpenInferenceProtocol
from ml_api.core.service import PredictionService
from ml_api.settings import Settings


@dataclass(frozen=True, eq=False)
class Application:
    """One served model and everything the transports answer with, built once per process.

    Attributes:
        settings: The configuration it was built from.
        service: V1 prediction, health, readiness, the model card, authentication.
        open_inference: The V2 endpoints.
        openapi: The OpenAPI 3.1 document (``GET /openapi.json``), with the request examples
            and security schemes Swagger UI uses.
        docs: Swagger UI on it and its assets (``GET /docs``, ``GET /docs/<asset>``).
        card_html: The model card as a page, charts included (``GET /model``).
    """

    settings: Settings
    service: PredictionService
    open_inference: OpenInferenceProtocol
    openapi: dict[str, Any]
    docs: DocsUI
    card_html: str


def build(
    settings: Settings,
    *,
    artifact: Artifact | None = None,
    service: PredictionService | None = None,
) -> Application:
    """Wire a served model: artifact → predictor → service → protocols.

    Args:
        settings: Configuration (model location, limits, API keys, batching).
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
        service = (
            PredictionService(artifact, settings)
            if artifact is not None
            else PredictionService.from_settings(settings)
        )
    card = service.artifact.card
    predictor = service.predictor
    open_inference = OpenInferenceProtocol(
        card=card,
        classes=predictor.classes,
        platform=predictor.runtime,
        predict=service.predict_rows,
        ready=service.readiness,
        limits=service.limits,
    )
    document = openapi_document(
        card=card, classes=predictor.classes, limits=service.limits, platform=predictor.runtime
    )
    complete_for_people(
        document, card=card, auth_enabled=service.auth.enabled, public_paths=settings.public_paths
    )
    return Application(
        settings=settings,
        service=service,
        open_inference=open_inference,
        openapi=document,
        docs=DocsUI.build(document["info"]["title"]),
        card_html=render_html(
            CardContent.from_card(card, read_charts(card, service.artifact.path))
        ),
    )
