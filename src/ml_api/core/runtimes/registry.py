"""The runtime registry: which runtimes exist, which one serves a model version, and building it.

:data:`RUNTIMES` lists every runtime class (:class:`ml_api.core.runtimes.predictor.Runtime`);
:func:`choose_runtime` is the one place that decides which serves a loaded artifact, from the
``ML_API_RUNTIME`` setting, the card's ``runtime`` and what the artifact holds
(:meth:`Runtime.status`); :func:`load_predictor` builds it and, for a runtime that declines some
batches (``capabilities.takes_every_batch=False``), composes it with the fallback runtime
(:class:`WithFallback`).

Adding a runtime: one module in ``ml_api/core/runtimes/`` with a :class:`Runtime` subclass (its
name, setting, served form and capabilities, and :meth:`Runtime.status` when it needs more than its
form), and its class in :data:`RUNTIMES`; the ``ML_API_RUNTIME`` values in
``ml_api.settings.Settings.runtime`` follow (a test checks they agree).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from ml_api.core.model.artifact import Artifact
from ml_api.core.model.integrity import ArtifactError
from ml_api.core.runtimes.onnx_runtime import OnnxPredictor
from ml_api.core.runtimes.predictor import (
    Capabilities,
    Declined,
    PredictionResult,
    Predictor,
    Runtime,
)
from ml_api.core.runtimes.scikit_learn import SklearnPredictor

FALLBACK: type[Runtime] = SklearnPredictor
"""The runtime that serves every version (it runs the artifact's own model): ``auto`` falls back
to it when the card's runtime cannot serve, and it predicts the batches another runtime declines."""

RUNTIMES: tuple[type[Runtime], ...] = (FALLBACK, OnnxPredictor)
"""Every runtime, the fallback first."""

_BY_NAME = {cls.runtime: cls for cls in RUNTIMES}

RUNTIME_SETTINGS = {cls.setting: cls.runtime for cls in RUNTIMES}
"""``ML_API_RUNTIME`` values that force a runtime, and its name (``auto``: what the card says)."""


def _choices() -> str:
    names = ["auto", *RUNTIME_SETTINGS]
    return f"{', '.join(names[:-1])} or {names[-1]}"


def choose_runtime(artifact: Artifact, setting: str = "auto") -> str:
    """Decide which runtime serves an artifact under ``ML_API_RUNTIME``.

    Args:
        artifact: The loaded version.
        setting: ``auto`` (the card's runtime where it can serve this version, e.g. ONNX Runtime
            where the version passed the gate; the fallback runtime, scikit-learn, elsewhere) or
            a key of :data:`RUNTIME_SETTINGS` (``sklearn``, ``onnx``).

    Returns:
        A runtime name (a key of the registry, or what an unknown card names, which
        :func:`load_predictor` refuses).

    Raises:
        ArtifactError: ``setting`` forces a runtime that cannot serve this artifact (``onnx``
            for a version without an ONNX form that passed the gate); one line naming the
            version directory and the reason.
        ValueError: Unknown setting.
    """
    if setting != "auto":
        name = RUNTIME_SETTINGS.get(setting)
        if name is None:
            raise ValueError(f"unknown runtime setting {setting!r}; use {_choices()}")
        forced = _BY_NAME[name]
        usable, why = forced.status(artifact)
        if not usable:
            raise ArtifactError(
                f"ML_API_RUNTIME={setting} but model {artifact.path} cannot be served by "
                f"{forced.title}: {why} (set ML_API_RUNTIME=auto or {FALLBACK.setting}, or "
                "retrain it)"
            )
        return name
    runtime = artifact.card.runtime
    known = _BY_NAME.get(runtime)
    if known is not None and not known.status(artifact)[0]:
        return FALLBACK.runtime
    return runtime


def load_predictor(artifact: Artifact, setting: str = "auto") -> Predictor:
    """Build the runtime that serves a loaded artifact.

    Args:
        artifact: The verified model version.
        setting: ``ML_API_RUNTIME`` (see :func:`choose_runtime`).

    Returns:
        The predictor: the chosen runtime, wrapped in :class:`WithFallback` when it declines
        some batches.

    Raises:
        ArtifactError: The card names a runtime this installation does not have; or the setting
            forces a runtime that cannot serve this version; or the runtime refused the model
            (one line naming it).
    """
    name = choose_runtime(artifact, setting)
    runtime = _BY_NAME.get(name)
    if runtime is None:
        raise ArtifactError(f"model {artifact.path} needs the runtime {name!r}, which is unknown")
    predictor = runtime(artifact)
    if runtime.capabilities.takes_every_batch:
        return predictor
    return WithFallback(predictor, artifact)


class WithFallback:
    """A runtime whose declined batches the fallback runtime predicts.

    The fallback (:data:`FALLBACK`, built from the same artifact at the first declined batch)
    gives those batches the answer, or the 422, they get under ``ML_API_RUNTIME`` forcing it.
    Everything else (name, version, classes) is the primary runtime's.

    Args:
        primary: The chosen runtime; it raises
            :class:`~ml_api.core.runtimes.predictor.Declined` for batches it cannot compute.
        artifact: The version both serve.
    """

    def __init__(self, primary: Predictor, artifact: Artifact) -> None:
        self.primary = primary
        self._artifact = artifact
        self._fallback: Predictor | None = None
        self._lock = threading.Lock()
        self.capabilities = Capabilities(
            batches_across_requests=primary.capabilities.batches_across_requests
            and FALLBACK.capabilities.batches_across_requests,
            takes_every_batch=True,
        )

    @property
    def runtime(self) -> str:
        """The primary runtime's name."""
        return self.primary.runtime

    @property
    def runtime_version(self) -> str:
        """The primary runtime's library version."""
        return self.primary.runtime_version

    @property
    def classes(self) -> tuple[Any, ...]:
        """The primary runtime's classes (the fallback's are the same: one card)."""
        return self.primary.classes

    @property
    def is_classifier(self) -> bool:
        """Whether the model is a classifier."""
        return self.primary.is_classifier

    @property
    def has_probabilities(self) -> bool:
        """Whether results carry class probabilities."""
        return self.primary.has_probabilities

    def predict(self, columns: Sequence[Sequence[Any]]) -> PredictionResult:
        """Predict a batch with the primary runtime, or with the fallback where it declines.

        Args:
            columns: ``n_features`` equally long sequences of validated values in schema order.

        Returns:
            ``n_instances`` labels and, for classifiers, probabilities.

        Raises:
            InvalidInput: (422) the runtime that predicted refused the values.
        """
        try:
            return self.primary.predict(columns)
        except Declined:
            return self._built_fallback().predict(columns)

    def _built_fallback(self) -> Predictor:
        if self._fallback is None:
            with self._lock:
                if self._fallback is None:
                    self._fallback = FALLBACK(self._artifact)
        return self._fallback
