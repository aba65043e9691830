"""ml-api's own protocol (V1): ``POST /predict``, ``GET /health``, ``/ready`` and ``/metadata``.

A thin codec over :class:`~ml_api.core.service.PredictionService`. Accepted ``POST /predict``
bodies (the README's "Ask for a prediction" shows each)::

    {"features": [f1, f2, ...]}              one instance, positional (the simplest form)
    {"features": [[...], [...]]}             a batch of positional instances
    {"features": {"name": value, ...}}       one named instance
    {"features": [{...}, {...}]}             a batch of named instances
    {"instances": [{...} or [...], ...]}     a batch of records (TF-Serving / KServe V1 style)

The order of checks, and so the status a bad request gets:

1. to 3. the body's media type (415), coding (415), size (413) and JSON (400), as every protocol
   reads a body (:mod:`ml_api.core.protocols.body`);
4. the envelope is one of the above, else 400 (413 past ``max_instances``);
5. the service's checks: every value fits the feature schema, else 422 naming instance and field;
   values outside the training range warned about or refused (422); the model predicts.

3 to 5 run within ``request_timeout_seconds``, else 504.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ml_api.core import deadline as time_limit
from ml_api.core.errors import BadRequest, PayloadTooLarge, Problem, quote
from ml_api.core.model.profile import PROFILE_FILE
from ml_api.core.protocols.body import check_headers, read_json
from ml_api.core.protocols.request import Request
from ml_api.core.runtimes.predictor import PredictionResult, json_scalar, plain_finite, to_jsonable
from ml_api.core.service import PredictionService


class V1Protocol:
    """The V1 endpoints over one service.

    Args:
        service: The prediction service (its limits apply to bodies and batches).
    """

    def __init__(self, service: PredictionService) -> None:
        self.service = service
        self.limits = service.limits

    def predict(self, request: Request) -> dict[str, Any]:
        """Answer ``POST /predict`` (see the module docstring for the order of checks).

        Args:
            request: The request; its body is read here.

        Returns:
            ``{"prediction": [...], "probabilities": [...], "model": {...}}``
            (``probabilities`` for classifiers only; ``warnings`` when values lie outside the
            training range under ``warn``): :func:`encode_v1`.

        Raises:
            ServingError: 400, 413, 415, 422 as listed above; 504 past the time limit.
        """
        limits = self.limits
        codings = check_headers(request, limits.max_body_bytes)
        with time_limit.deadline(limits.request_timeout_seconds):
            payload = read_json(request, codings, limits.max_body_bytes)
            time_limit.check()
            rows = extract_instances(payload, limits.max_instances)
            return self.predict_instances(rows)

    def predict_instances(
        self, rows: Sequence[Sequence[Any] | Mapping[str, Any]], first_index: int = 0
    ) -> dict[str, Any]:
        """Validate and predict instances already out of their envelope; V1 body out.

        Args:
            rows: ``n_instances`` positional lists or named mappings.
            first_index: Index reported for ``rows[0]`` in errors.

        Returns:
            The ``POST /predict`` response body (:func:`encode_v1`).

        Raises:
            InvalidInput: (422) a value breaks the schema or the model refused it.
            RequestTimeout: (504) the request waited past its time limit for the model.
        """
        result = self.service.predict_rows(rows, first_index)
        return encode_v1(result, self.service.model_ref)

    @staticmethod
    def liveness() -> dict[str, Any]:
        """Body for ``GET /health``: the process answers; the model is not touched."""
        return {"status": "ok"}

    def readiness(self) -> dict[str, Any]:
        """Body for ``GET /ready``.

        Raises:
            ModelNotReady: (503) the server is draining before shutdown.
        """
        self.service.check_ready()
        return {"status": "ready", "model": self.service.model_ref}

    def metadata(self) -> dict[str, Any]:
        """Body for ``GET /metadata``: :func:`model_metadata` of the served model."""
        return model_metadata(self.service)


def model_metadata(service: PredictionService) -> dict[str, Any]:
    """The model card as ``GET /metadata`` and ``ml-api info`` show it.

    ``runtime`` is the runtime serving this process (``scikit-learn`` or ``onnxruntime``, from
    ``ML_API_RUNTIME`` and the card); ``batching`` whether concurrent requests share its model
    calls and, when not, why (``PredictionService.batching``); ``onnx`` is the card's ONNX section
    (the gate's result, the file's hash), ``null`` for versions saved before models were
    converted.

    Args:
        service: The service of the model version.

    Returns:
        ``{"model", "task", "estimator", "target", "features", "classes", "metrics",
        "training", "created_at", "model_file", "runtime", "batching", "onnx", "versions", ...,
        "limits"}``; ``"missing_values"`` (the cells training read as missing, and how many per
        categorical feature) where the card records it.
    """
    card = service.artifact.card
    raw = card.raw  # the blocks exactly as stored, unknown keys inside them included
    return {
        "model": service.model_ref,
        "task": card.task,
        "estimator": card.estimator_class,
        "target": card.target,
        "features": raw.get("features"),
        "classes": raw.get("classes"),
        "metrics": card.metrics,
        "training": card.training,
        "created_at": card.created_at,
        "model_file": raw.get("model_file"),
        "runtime": service.predictor.runtime,
        "batching": service.batching,
        "onnx": raw.get("onnx"),
        "versions": raw.get("versions"),
        # imported models (ml-api import): where the model and its schema came from
        # how training read its CSV's missing cells (batch scoring reads files the same way), and
        # for imported models where the model and its schema came from
        **{
            k: raw[k]
            for k in ("missing_values", "metrics_on", "source", "provenance", "import_data")
            if k in raw
        },
        "limits": service.limits.as_dict(),
        "drift": drift_metadata(service),
    }


def drift_metadata(service: PredictionService) -> dict[str, Any]:
    """Whether this server measures input drift for the model, against what, and why not.

    Returns:
        ``{"measured": bool, "profile": {"rows", "source", "features"} | None, "note": str}``.
    """
    profile = service.profile
    counting = service.counts_drift
    if profile is None:
        listed = PROFILE_FILE in (service.artifact.card.raw.get("files") or {})
        note = (
            "this version's reference profile is in a format this ml-api does not read: "
            "drift is not measured"
            if listed
            else "this version has no reference profile (saved before ml-api profiled training "
            "data): drift is not measured; train or import it again to measure it"
        )
        return {"measured": False, "profile": None, "note": note}
    return {
        "measured": counting,
        "profile": {
            "rows": profile.rows,
            "source": profile.source,
            "features": [f.name for f in profile.features],
        },
        "note": "ml_api_feature_values_total counts served instances per feature and bin"
        if counting
        else "drift counting is off (ML_API_DRIFT=false)",
    }


ENVELOPE_KEYS = ("features", "instances")


def extract_instances(payload: Any, max_instances: int) -> list[Any]:
    """Unwrap the envelope into a list of instances (each a list or a mapping).

    Args:
        payload: The parsed JSON body.
        max_instances: Most instances accepted in one request.

    Returns:
        The instances, at least one; each is still unvalidated (see ``FeatureSchema.validate``).

    Raises:
        BadRequest: (400) not an object, neither or both envelope keys, an unknown top-level key,
            an empty or mis-shaped ``features``/``instances`` value.
        PayloadTooLarge: (413) more than ``max_instances`` instances.
    """
    if not isinstance(payload, Mapping):
        raise BadRequest(
            'the body must be a JSON object with a "features" or an "instances" key',
        )
    present = [k for k in ENVELOPE_KEYS if k in payload]
    unknown = [k for k in payload if k not in ENVELOPE_KEYS]
    if unknown:
        raise BadRequest(
            f'unknown key {quote(unknown[0])} in the body; expected "features" or "instances"',
            [Problem("unknown key", field=str(k)) for k in unknown],
        )
    if len(present) != 1:
        msg = (
            'the body needs a "features" or an "instances" key'
            if not present
            else 'send either "features" or "instances", not both'
        )
        raise BadRequest(msg)
    key = present[0]
    value = payload[key]
    rows = _rows_from_features(value) if key == "features" else _rows_from_instances(value)
    if not rows:
        raise BadRequest(
            f'"{key}" is empty: send at least one instance', [Problem("empty", field=key)]
        )
    if len(rows) > max_instances:
        raise PayloadTooLarge(
            f"{len(rows)} instances in one request; the limit is {max_instances}",
            [Problem(f"at most {max_instances} instances per request", field=key)],
        )
    return rows


def _rows_from_features(value: Any) -> list[Any]:
    if isinstance(value, Mapping):
        return [value]
    if not isinstance(value, list):
        raise BadRequest(
            '"features" must be an array (one instance, or a batch of arrays or objects) '
            "or an object keyed by feature name",
            [Problem(f"got {type(value).__name__}", field="features")],
        )
    if not value:
        return []
    nested = [isinstance(v, list | Mapping) for v in value]
    if all(nested):
        return value
    if not any(nested):
        return [value]  # one positional instance, the simplest form
    first = nested.index(not nested[0])
    kinds = ("a value", "an array or object")
    # one malformed "features", not an instance: the position is an element of that array
    problem = (
        f"element {first} is {kinds[nested[first]]}, element 0 {kinds[nested[0]]}: "
        "mixes values and arrays/objects"
    )
    raise BadRequest(
        '"features" mixes values and nested instances; send one flat array (one instance) '
        "or an array of arrays/objects (a batch)",
        [Problem(problem, field="features")],
    )


def _rows_from_instances(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise BadRequest(
            '"instances" must be an array of instances',
            [Problem(f"got {type(value).__name__}", field="instances")],
        )
    return value


def encode_v1(result: PredictionResult, model_ref: Mapping[str, str]) -> dict[str, Any]:
    """Encode a prediction as the ``POST /predict`` response body.

    Args:
        result: The neutral result, ``n_instances`` of them.
        model_ref: ``{"name": ..., "version": ...}`` of the model that predicted.

    Returns:
        ``{"prediction": [n_instances values], "probabilities": [n_instances {class: p}],
        "model": model_ref}``; ``probabilities`` for classifiers with ``predict_proba`` only,
        keyed by the classes as strings in the model's class order; non-finite numbers become
        ``null``. When the result carries values outside the training range
        (``ML_API_OUT_OF_RANGE=warn``), a last key ``warnings`` names them
        (:meth:`ml_api.core.model.ranges.OutOfRange.warnings`); without such values the key is
        absent.
    """
    body: dict[str, Any] = {"prediction": to_jsonable(result.labels)}
    if result.probabilities is not None:
        keys = result.class_keys
        probabilities = result.probabilities
        if plain_finite(probabilities):  # the rule: floats, all finite (the overflow check)
            body["probabilities"] = probability_rows(keys, probabilities.tolist())
        else:
            body["probabilities"] = [
                dict(zip(keys, [json_scalar(v) for v in row], strict=True))
                for row in probabilities.tolist()
            ]
    body["model"] = model_ref
    if result.out_of_range is not None:
        body["warnings"] = result.out_of_range.warnings()
    return body


def probability_rows(keys: Sequence[str], rows: list[list[Any]]) -> list[dict[str, Any]]:
    """V1's ``probabilities``: one ``{class: p}`` object per instance, keys in class order.

    The same objects as ``dict(zip(keys, row))`` per row; for 2 or 3 classes (most classifiers)
    built as dict displays, about twice as fast at 64 rows.

    Args:
        keys: The classes as strings (``n_classes``).
        rows: ``n_instances`` lists of ``n_classes`` probabilities.

    Returns:
        ``n_instances`` objects.
    """
    if len(keys) == 2:
        k0, k1 = keys
        return [{k0: a, k1: b} for a, b in rows]
    if len(keys) == 3:
        k0, k1, k2 = keys
        return [{k0: a, k1: b, k2: c} for a, b, c in rows]
    return [dict(zip(keys, row, strict=True)) for row in rows]
