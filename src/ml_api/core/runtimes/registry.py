"""Which runtime serves a model version: the ``ML_API_RUNTIME`` setting and what the card says.

:func:`load_predictor` is the one place that builds a runtime (:mod:`ml_api.core.runtimes`) for a
loaded artifact; :func:`choose_runtime` decides which.
"""

from __future__ import annotations

from ml_api.core.model.artifact import Artifact, ArtifactError
from ml_api.core.runtimes.onnx_runtime import onnx_status
from ml_api.core.runtimes.predictor import ONNX_RUNTIME, SCIKIT_LEARN, Predictor

RUNTIME_SETTINGS = {"sklearn": SCIKIT_LEARN, "onnx": ONNX_RUNTIME}
"""``ML_API_RUNTIME`` values that force a runtime (``auto``: what the card says)."""


def choose_runtime(artifact: Artifact, setting: str = "auto") -> str:
    """Decide which runtime serves an artifact under ``ML_API_RUNTIME``.

    Args:
        artifact: The loaded version.
        setting: ``auto`` (the card's runtime: ONNX Runtime where the version passed the gate,
            scikit-learn elsewhere), ``sklearn`` or ``onnx``.

    Returns:
        A runtime name (:data:`SCIKIT_LEARN` or :data:`ONNX_RUNTIME`, or what an unknown card
        names, which :func:`load_predictor` refuses).

    Raises:
        ArtifactError: ``setting`` is ``onnx`` and the artifact has no ONNX form that passed the
            gate; one line naming the version directory and the reason.
        ValueError: Unknown setting.
    """
    if setting not in ("auto", *RUNTIME_SETTINGS):
        raise ValueError(f"unknown runtime setting {setting!r}; use auto, sklearn or onnx")
    if setting == "sklearn":
        return SCIKIT_LEARN
    usable, why = onnx_status(artifact)
    if setting == "onnx":
        if not usable:
            raise ArtifactError(
                f"ML_API_RUNTIME=onnx but model {artifact.path} cannot be served by ONNX "
                f"Runtime: {why} (set ML_API_RUNTIME=auto or sklearn, or retrain it)"
            )
        return ONNX_RUNTIME
    runtime = artifact.card.runtime
    if runtime == ONNX_RUNTIME and not usable:
        return SCIKIT_LEARN
    return runtime


def load_predictor(artifact: Artifact, setting: str = "auto") -> Predictor:
    """Build the runtime that serves a loaded artifact.

    Args:
        artifact: The verified model version.
        setting: ``ML_API_RUNTIME`` (``auto``, ``sklearn`` or ``onnx``; see
            :func:`choose_runtime`).

    Returns:
        The predictor.

    Raises:
        ArtifactError: The card names a runtime this installation does not have; or ``onnx``
            was asked for a version without a passing ONNX form; or ONNX Runtime refused the
            file (one line naming it).
    """
    runtime = choose_runtime(artifact, setting)
    if runtime == SCIKIT_LEARN:
        from ml_api.core.runtimes.scikit_learn import SklearnPredictor

        return SklearnPredictor(artifact)
    if runtime == ONNX_RUNTIME:
        from ml_api.core.runtimes.onnx_runtime import OnnxPredictor

        return OnnxPredictor(artifact)
    raise ArtifactError(f"model {artifact.path} needs the runtime {runtime!r}, which is unknown")
