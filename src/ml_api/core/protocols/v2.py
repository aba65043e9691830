"""The Open Inference Protocol (KServe V2) REST data plane, on the same core as ``/predict``.

Specification: https://github.com/kserve/open-inference-protocol (``inference_rest.md``); its
OpenAPI file is in ``shared/specs/open_inference_rest.yaml`` and the conformance tests check every
response against it.

How a tabular model is sent as tensors (also described by the model metadata endpoint):

- one input tensor per feature column, named after the feature: ``FP64`` (or ``FP32``/``INT*``) for
  numeric features, ``BYTES`` for categorical ones, shape ``[n]`` or ``[n, 1]``; ``null`` is
  accepted where the feature is nullable;
- for all-numeric models, alternatively one ``FP32``/``FP64`` tensor of shape
  ``[n, n_features]`` in feature order (any name; ``input-0`` in the metadata), as MLServer's and
  Triton's scikit-learn backends take it.

Outputs: ``predict`` (shape ``[n]``; ``BYTES`` for string class labels, ``INT64`` for integer ones,
``FP64`` for regression) and, for classifiers, ``predict_proba`` (``FP64``, ``[n, n_classes]``,
classes in the order of the metadata's ``classes`` parameter). A request's ``outputs`` selects
among them; without it both are returned. ``id`` is echoed, ``parameters`` are accepted. Values
outside the training range (``ML_API_OUT_OF_RANGE=warn``) are named in the response's
``parameters``: ``out_of_range`` (V1's ``warnings`` list, JSON-encoded, as parameter values are
scalars) and ``out_of_range_count``; under ``reject`` they are a 400.

Errors follow the protocol: ``{"error": "..."}`` (plus ml-api's ``details`` and ``request_id``),
400 for any bad request (schema violations included), 404 for an unknown model or version, 413 for
bodies or batches over the limits, 503 when not ready.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import metadata as importlib_metadata
from typing import Any

from ml_api.core.deadline import deadline
from ml_api.core.errors import (
    BadRequest,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    Problem,
    quote,
)
from ml_api.core.protocols.body import check_headers, read_json
from ml_api.core.protocols.request import Request
from ml_api.core.protocols.tensors import (
    columns_from_tensors,
    feature_datatype,
    label_datatype,
    read_tensor,
    rows_from_matrix,
)
from ml_api.core.protocols.v2_request import check_request_types
from ml_api.core.runtimes.predictor import PredictionResult, class_keys, to_jsonable
from ml_api.core.service import PredictionService

OUTPUT_LABEL = "predict"
OUTPUT_PROBA = "predict_proba"
TENSOR_INPUT = "input-0"
INFERENCE_HEADER_LENGTH = "Inference-Header-Content-Length"
"""The binary tensor extension's header (refused: the extension is not served)."""


def server_metadata() -> dict[str, Any]:
    """Body for ``GET /v2``: server name, version and extensions (the model repository)."""
    try:
        version = importlib_metadata.version("ml-api")
    except importlib_metadata.PackageNotFoundError:  # pragma: no cover - running from source
        version = "0"
    return {"name": "ml-api", "version": version, "extensions": ["model_repository"]}


def server_live() -> dict[str, Any]:
    """Body for ``GET /v2/health/live``: the process answers (the model is not touched)."""
    return {"live": True}


class OpenInferenceProtocol:
    """V2 endpoints for one served model, a thin codec over its service.

    The model's name, version, classes and feature schema come from the service's card and
    predictor; body size, instance count and time limits from its limits.

    Args:
        service: The prediction service.
    """

    def __init__(self, service: PredictionService) -> None:
        card = service.artifact.card
        predictor = service.predictor
        self.service = service
        self.schema = card.schema
        self.names = card.schema.names
        self.name = card.name
        self.version = card.version
        self.platform = model_platform(card.library_versions, predictor.runtime)
        self.classes = list(class_keys(tuple(predictor.classes)))
        # the probabilities output exists only for a classifier with predict_proba
        self.probabilities = bool(self.classes) and predictor.has_probabilities
        self.all_numeric = self.schema.all_numeric
        self.limits = service.limits
        self.label_type = label_datatype(tuple(predictor.classes))

    # ---- resolution, health, metadata -----------------------------------------------------

    def resolve(self, name: str, version: str | None) -> None:
        """Check that ``name`` (and ``version``, if given) is the served model.

        Raises:
            NotFound: (404) another name or version.
        """
        if name != self.name:
            raise NotFound(f"unknown model {quote(name)}; this server serves {self.name!r}")
        if version is not None and version != self.version:
            raise NotFound(
                f"unknown version {quote(version)} of model {quote(name)}; "
                f"served version: {self.version}"
            )

    def server_ready(self) -> dict[str, Any]:
        """Body for ``GET /v2/health/ready``.

        Raises:
            ModelNotReady: (503) draining before shutdown.
        """
        self.service.check_ready()
        return {"ready": True}

    def model_ready(self, name: str, version: str | None = None) -> dict[str, Any]:
        """Body for ``GET /v2/models/{name}[/versions/{version}]/ready``.

        Raises:
            NotFound: (404) unknown model or version.
            ModelNotReady: (503) draining before shutdown.
        """
        self.resolve(name, version)
        self.service.check_ready()
        return {"name": self.name, "ready": True}

    def model_metadata(self, name: str, version: str | None = None) -> dict[str, Any]:
        """Body for ``GET /v2/models/{name}[/versions/{version}]``.

        Raises:
            NotFound: (404) unknown model or version.
        """
        self.resolve(name, version)
        if self.all_numeric:
            inputs = [{"name": TENSOR_INPUT, "datatype": "FP64", "shape": [-1, len(self.schema)]}]
        else:
            inputs = [
                {
                    "name": f.name,
                    "datatype": feature_datatype(f),
                    "shape": [-1],
                }
                for f in self.schema.features
            ]
        outputs = [{"name": OUTPUT_LABEL, "datatype": self.label_type, "shape": [-1]}]
        if self.probabilities:
            outputs.append(
                {"name": OUTPUT_PROBA, "datatype": "FP64", "shape": [-1, len(self.classes)]}
            )
        return {
            "name": self.name,
            "versions": [self.version],
            "platform": self.platform,
            "inputs": inputs,
            "outputs": outputs,
            "parameters": {
                "feature_names": ",".join(self.schema.names),
                "classes": ",".join(self.classes),
                "input_layout": "one tensor [n, n_features]"
                if self.all_numeric
                else "one tensor per feature",
                "batching": batching_text(self.service.batching),
            },
        }

    # ---- inference -------------------------------------------------------------------------

    def infer(self, request: Request, name: str, version: str | None = None) -> dict[str, Any]:
        """Answer ``POST /v2/models/{name}[/versions/{version}]/infer``.

        The body is read as every protocol reads one (:mod:`ml_api.core.protocols.body`), with
        two differences the protocol makes: a request without ``Content-Type`` is taken as JSON
        (Triton's client sends none), and another media type is a 400.

        Args:
            request: The request (``Content-Type``, ``Content-Encoding``,
                ``Inference-Header-Content-Length``, the body).
            name: Model name from the path.
            version: Model version from the path, or ``None``.

        Returns:
            The inference response object.

        Raises:
            NotFound: (404) unknown model or version.
            BadRequest: (400) malformed request, the binary tensor extension, a media type other
                than JSON, tensors that do not match the model, or values that break the feature
                schema.
            PayloadTooLarge: (413) body (decoded) or instance count over the limits.
            UnsupportedMediaType: (415) an unknown ``Content-Encoding``.
            RequestTimeout: (504) past the per-request time limit.
        """
        self.resolve(name, version)
        if request.headers.get(INFERENCE_HEADER_LENGTH) is not None:
            raise BadRequest(
                "the binary tensor data extension is not supported; send JSON tensors "
                "(tritonclient: binary_data=False)"
            )
        limit = self.limits.max_body_bytes
        codings = check_headers(request, limit, refusal=BadRequest, media_type_optional=True)
        with deadline(self.limits.request_timeout_seconds):
            payload = read_json(request, codings, limit)
            instances, requested = self._decode(payload)
            result = self._predict(instances)
        return self._encode(payload, result, requested)

    def _predict(self, instances: Instances) -> PredictionResult:
        """The service's prediction; a value that breaks the schema is a 400 here (V1: 422).

        Raises:
            BadRequest: (400) the service refused a value (``InvalidInput``, out-of-range
                refusals included), with its message and details.
            RequestTimeout: (504) past the per-request time limit.
        """
        try:
            if instances.columns is not None:
                return self.service.predict_columns(instances.columns)
            return self.service.predict_rows(instances.rows)
        except InvalidInput as exc:
            raise BadRequest(exc.message, exc.details) from exc

    def _decode(self, request: Any) -> tuple[Instances, list[str]]:
        check_request_types(request)  # every field of the JSON type the protocol gives it
        inputs = request["inputs"]
        if not inputs:
            raise BadRequest(
                '"inputs" must be a non-empty array of tensors',
                [Problem("required", field="inputs")],
            )
        requested = self._requested_outputs(request.get("outputs"))
        first = inputs[0]
        width = len(self.schema)
        if (  # checked before the values, whose datatype can only be wrong in such a tensor
            len(inputs) == 1
            and not self.all_numeric
            and width > 1
            and isinstance(first, Mapping)
            and isinstance(first.get("name"), str)
            and (
                first["name"] not in self.schema.names
                or (isinstance(first.get("shape"), list) and first["shape"][-1:] == [width])
            )
        ):
            layout = ", ".join(f"{f.name} ({feature_datatype(f)})" for f in self.schema.features)
            raise BadRequest(
                f"this model mixes numeric and categorical features, so it takes one tensor per "
                f"feature, shape [n]: {layout}",
                [Problem("one tensor per feature", field=first["name"])],
            )
        tensors = [read_tensor(t, i) for i, t in enumerate(inputs)]
        if len(tensors) == 1 and self.all_numeric and width > 1:
            instances = Instances(rows=rows_from_matrix(tensors[0], width))
        else:
            instances = Instances(columns=columns_from_tensors(tensors, self.schema))
        n = len(instances)
        max_instances = self.limits.max_instances
        if n > max_instances:
            raise PayloadTooLarge(f"{n} instances in one request; the limit is {max_instances}")
        if not n:
            raise BadRequest("the input tensors hold no instances")
        return instances, requested

    def _requested_outputs(self, outputs: Any) -> list[str]:
        available = [OUTPUT_LABEL] + ([OUTPUT_PROBA] if self.probabilities else [])
        if outputs is None:
            return available
        if not isinstance(outputs, list):
            raise BadRequest('"outputs" must be an array')
        names = []
        for i, out in enumerate(outputs):
            name = out.get("name") if isinstance(out, Mapping) else None
            if name not in available:
                raise BadRequest(
                    f"unknown output {quote(name)}; available: {', '.join(available)}",
                    [Problem("unknown output", instance=i, field="outputs")],
                )
            names.append(name)
        return names

    def _encode(
        self, request: Mapping[str, Any], result: PredictionResult, requested: list[str]
    ) -> dict[str, Any]:
        labels = to_jsonable(result.labels)
        n = len(labels)
        outputs = []
        for name in requested:
            if name == OUTPUT_LABEL:
                data = [str(v) for v in labels] if self.label_type == "BYTES" else labels
                outputs.append(
                    {"name": OUTPUT_LABEL, "datatype": self.label_type, "shape": [n], "data": data}
                )
            else:
                assert result.probabilities is not None  # requested only for classifiers
                flat = to_jsonable(result.probabilities.reshape(-1))
                outputs.append(
                    {
                        "name": OUTPUT_PROBA,
                        "datatype": "FP64",
                        "shape": [n, len(self.classes)],
                        "data": flat,
                    }
                )
        response: dict[str, Any] = {"model_name": self.name, "model_version": self.version}
        if "id" in request:
            response["id"] = request["id"]
        response["outputs"] = outputs
        if result.out_of_range is not None:
            # V2 parameter values are scalars: the V1 warnings list, JSON-encoded, and its count
            response["parameters"] = {
                "out_of_range": json.dumps(result.out_of_range.warnings(), ensure_ascii=False),
                "out_of_range_count": result.out_of_range.total,
            }
        return response


@dataclass(frozen=True, slots=True)
class Instances:
    """A decoded request's instances: rows (the one-matrix layout) or feature columns.

    Attributes:
        rows: ``n_instances`` positional rows, or ``None``.
        columns: ``n_features`` columns of ``n_instances`` values in schema order, or ``None``.
    """

    rows: list[list[Any]] = field(default_factory=list)
    columns: list[list[Any]] | None = None

    def __len__(self) -> int:
        if self.columns is not None:
            return len(self.columns[0]) if self.columns else 0
        return len(self.rows)


def batching_text(batching: Mapping[str, Any]) -> str:
    """The V2 metadata's ``batching`` parameter (a string, like every parameter there).

    Args:
        batching: :attr:`PredictionService.batching`.

    Returns:
        ``"across requests"``, or ``"per request: <why>"``.
    """
    if batching["across_requests"]:
        return "across requests"
    return f"per request: {batching['why_not']}"


MODEL_LIBRARIES = ("xgboost", "lightgbm", "catboost")
"""Model libraries named in the V2 ``platform`` besides the runtime."""


def model_platform(library_versions: Mapping[str, str], runtime: str) -> str:
    """The V2 metadata's ``platform``: the runtime, prefixed by the model's own library.

    Args:
        library_versions: The card's library versions (``xgboost``/``lightgbm`` appear there for
            models of those libraries).
        runtime: The runtime serving it (``"scikit-learn"``, ``"onnxruntime"``).

    Returns:
        ``"xgboost/onnxruntime"``, ``"lightgbm/scikit-learn"`` (the model's own scikit-learn
        interface) and so on for XGBoost and LightGBM models; the runtime alone otherwise.
    """
    for library in MODEL_LIBRARIES:
        if library in library_versions:
            return f"{library}/{runtime}"
    return runtime
