"""The prediction service: the one place both adapters (Flask, Django) and the CLI call.

A view parses the request into ``(content type, content length, body reader)``, calls
:meth:`PredictionService.predict_http`, and renders the dict it returns, or the
:class:`~ml_api.core.errors.ServingError` it raises, with :func:`~ml_api.core.errors.to_payload`.
The order of checks, and so the status a bad request gets, lives here and nowhere else:

1. ``Content-Type`` is JSON, else 415;
2. ``Content-Length`` is within ``max_body_bytes``, else 413 before a byte is read;
3. the body is strict JSON, else 400;
4. the envelope is one the contract accepts, else 400 (413 past ``max_instances``);
5. every value fits the feature schema, else 422 naming instance and field;
6. the model predicts.
"""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ml_api.artifact import Artifact, load_artifact
from ml_api.core.codecs import check_content_type, extract_instances, parse_json
from ml_api.core.errors import ModelNotReady, PayloadTooLarge, Problem
from ml_api.core.predictor import Predictor
from ml_api.settings import Settings

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:/+=-]{1,128}$")


def request_id_from(header: str | None) -> str:
    """Return the caller's ``X-Request-ID`` if it is safe to echo, else a new random id.

    A caller's id is kept when it is 1 to 128 characters of ``[A-Za-z0-9._:/+=-]`` (enough for
    UUIDs, W3C trace ids and most gateways' ids, never a log-injection vector).
    """
    if header and _REQUEST_ID.match(header):
        return header
    return uuid.uuid4().hex


class PredictionService:
    """Validation, prediction and encoding for one loaded model version.

    Args:
        artifact: The verified model version to serve.
        settings: Limits (``max_body_bytes``, ``max_instances``).
    """

    def __init__(self, artifact: Artifact, settings: Settings) -> None:
        self.artifact = artifact
        self.settings = settings
        self.predictor = Predictor(artifact)
        self.schema = artifact.schema
        self.model_ref = {"name": artifact.name, "version": artifact.version}
        self._draining = threading.Event()

    @classmethod
    def from_settings(cls, settings: Settings) -> PredictionService:
        """Load the configured model version and build the service.

        Raises:
            ArtifactError: The artifact is missing, tampered with or incompatible.
        """
        artifact = load_artifact(
            settings.resolved_model_root(),
            settings.model_name,
            settings.model_version,
            allow_version_mismatch=settings.allow_version_mismatch,
        )
        return cls(artifact, settings)

    # ---- lifecycle -------------------------------------------------------------------------

    def start_draining(self) -> None:
        """Mark the process as shutting down: readiness answers 503 from now on."""
        self._draining.set()

    @property
    def draining(self) -> bool:
        """Whether :meth:`start_draining` was called."""
        return self._draining.is_set()

    def readiness(self) -> dict[str, Any]:
        """Body for ``GET /ready``.

        Raises:
            ModelNotReady: (503) the process is draining before shutdown.
        """
        if self.draining:
            raise ModelNotReady("shutting down: not accepting new traffic")
        return {"status": "ready", "model": self.model_ref}

    @staticmethod
    def liveness() -> dict[str, Any]:
        """Body for ``GET /health``: the process answers; the model is not touched."""
        return {"status": "ok"}

    def metadata(self) -> dict[str, Any]:
        """Body for ``GET /metadata``: the model card (schema, classes, metrics, versions)."""
        meta = self.artifact.metadata
        return {
            "model": self.model_ref,
            "task": meta.get("task"),
            "estimator": meta.get("estimator_class"),
            "target": meta.get("target"),
            "features": meta.get("features"),
            "classes": meta.get("classes"),
            "metrics": meta.get("metrics"),
            "training": meta.get("training"),
            "created_at": meta.get("created_at"),
            "model_file": meta.get("model_file"),
            "versions": meta.get("versions"),
            "limits": {
                "max_body_bytes": self.settings.max_body_bytes,
                "max_instances": self.settings.max_instances,
            },
        }

    # ---- inference -------------------------------------------------------------------------

    def predict_http(
        self,
        content_type: str | None,
        content_length: int | None,
        read_body: Callable[[], bytes],
    ) -> dict[str, Any]:
        """Answer ``POST /predict`` (see the module docstring for the order of checks).

        Args:
            content_type: The ``Content-Type`` header, or ``None``.
            content_length: The declared ``Content-Length`` in bytes, or ``None`` (chunked).
            read_body: Reads the whole body; the framework enforces ``max_body_bytes`` on it for
                bodies without a length (and raises its own 413, which the adapter maps).

        Returns:
            ``{"prediction": [...], "probabilities": [...], "model": {...}}``
            (``probabilities`` for classifiers only).

        Raises:
            ServingError: 400, 413, 415 or 422 as listed above.
        """
        check_content_type(content_type)
        limit = self.settings.max_body_bytes
        if content_length is not None and content_length > limit:
            raise PayloadTooLarge(
                f"request body is {content_length} bytes; the limit is {limit}",
                [Problem(f"at most {limit} bytes", field="Content-Length")],
            )
        payload = parse_json(read_body())
        return self.predict_instances(extract_instances(payload, self.settings.max_instances))

    def predict_instances(
        self, rows: Sequence[Sequence[Any] | Mapping[str, Any]], first_index: int = 0
    ) -> dict[str, Any]:
        """Validate and predict instances already out of their envelope.

        Args:
            rows: Positional lists or named mappings, ``n_instances`` of them.
            first_index: Index reported for ``rows[0]`` in errors (the CLI passes CSV row numbers).

        Returns:
            The response body (see :meth:`predict_http`).

        Raises:
            InvalidInput: (422) a value breaks the schema or the model refused it.
        """
        frame = self.schema.validate(rows, first_index=first_index)
        result = self.predictor.predict(frame)
        body: dict[str, Any] = {"prediction": result.labels}
        if result.probabilities is not None:
            body["probabilities"] = result.probabilities
        body["model"] = self.model_ref
        return body
