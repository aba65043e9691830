"""Batch-invariant answers: an instance's output bytes do not depend on what it is batched with.

The property, for every runtime (scikit-learn, ONNX Runtime) and several kinds of model (a linear
model over mixed features, a binary logistic regression, a random forest, a linear regressor over
a float matrix, and a model with a step not known to be row-independent, a neural network): the
labels and the ``float64`` bytes of the probabilities (or regression values) of an instance are
the same

- when it is predicted alone,
- at any position of a batch of random other instances,
- when its request is coalesced with other requests by the adaptive batcher.

Instances include numbers beyond float32's range, which ONNX Runtime declines (scikit-learn
predicts those instances, and only those). Before the fixes, a lone instance took BLAS's and
MLAS's one-row GEMV path and got other last bits (``0.0005596332484856248`` alone,
``0.0005596329574473202`` beside another row); a one-output linear model on scikit-learn (GEMV at
any size) gave a row other last bits depending on its place in the batch; and the neighbours of
an instance beyond float32 got scikit-learn's answer instead of ONNX Runtime's.
"""

from __future__ import annotations

import dataclasses
import math
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ml_api import preprocess
from ml_api.core.batching import Batcher
from ml_api.core.errors import InvalidInput
from ml_api.core.model.artifact import load_artifact
from ml_api.core.model.schema import FeatureKind, FeatureSchema
from ml_api.core.runtimes.predictor import PredictionResult
from ml_api.core.runtimes.registry import WithFallback, load_predictor
from ml_api.core.runtimes.scikit_learn import SklearnPredictor
from ml_api.train import TrainingOptions, train

INVARIANCE = settings(
    max_examples=40, derandomize=True, deadline=None, database=None,
    suppress_health_check=list(HealthCheck),
)  # fmt: skip

A = ["Torgersen", 39.1, 18.7, 181.0, 3750.0, "male"]
G = ["Biscoe", 50.0, 15.0, 220.0, 5500.0, "male"]


BEYOND_FLOAT32 = (3.5e38, -1e39, 1.7e308)
"""Finite float64 values float32 cannot hold: ONNX Runtime declines an instance holding one."""


@pytest.fixture(scope="module")
def models(model_root: Path, diabetes_csv: Path, tmp_path_factory) -> dict[str, Path]:
    """Model roots by kind: penguins linear (conftest), forest, binary logit, diabetes ridge."""
    root = tmp_path_factory.mktemp("invariance")
    forest = TrainingOptions(
        preprocess.PENGUINS_CSV,
        "species",
        drop=preprocess.PENGUINS_DROP,
        estimator="random_forest",
    )
    train(forest, model_root=root, name="forest")
    # a binary logistic regression (coef_ of one row: a matrix-vector product at any size)
    penguins = pd.read_csv(preprocess.PENGUINS_CSV)
    penguins["species"] = penguins["species"] == "Gentoo"
    binary = root / "penguins-gentoo.csv"
    penguins.to_csv(binary, index=False)
    logit = TrainingOptions(binary, "species", drop=preprocess.PENGUINS_DROP)
    train(logit, model_root=root, name="logit")
    # diabetes' target in thousands: small values, so the ONNX form passes the gate (float32)
    frame = pd.read_csv(diabetes_csv)
    frame["target"] = frame["target"] / 1000
    small = root / "diabetes-thousands.csv"
    frame.to_csv(small, index=False)
    train(TrainingOptions(small, "target", estimator="linear"), model_root=root, name="ridge")
    return {
        "linear": model_root / "penguins",
        "forest": root / "forest",
        "logit": root / "logit",
        "ridge": root / "ridge",
    }


PREDICTORS: dict[tuple[str, str], object] = {}


def _predictor(models: dict[str, Path], kind: str, runtime: str):
    if (kind, runtime) not in PREDICTORS:
        if kind == "mlp":
            PREDICTORS[kind, runtime] = SklearnPredictor(_mlp_artifact(models))
            return PREDICTORS[kind, runtime]
        path = models[kind]
        artifact = load_artifact(path.parent, path.name)
        assert artifact.metadata["onnx"]["passed"], artifact.metadata["onnx"]  # both runtimes run
        PREDICTORS[kind, runtime] = load_predictor(artifact, runtime)
    return PREDICTORS[kind, runtime]


def _mlp_artifact(models: dict[str, Path]):
    """The ridge's version with a one-output neural network in place of the ridge (as an import
    of such a model would serve it): its last layer is a matrix-vector product."""
    from sklearn.base import clone
    from sklearn.neural_network import MLPRegressor

    artifact = load_artifact(models["ridge"].parent, "ridge")
    pipeline = clone(artifact.model)
    pipeline.steps[-1] = (
        "model",
        MLPRegressor(hidden_layer_sizes=(8,), max_iter=300, random_state=0),
    )
    frame = pd.read_csv(models["ridge"].parent / "diabetes-thousands.csv")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pipeline.fit(frame[list(artifact.schema.names)].to_numpy(), frame["target"])
    return dataclasses.replace(artifact, model=pipeline)


def _value(feature) -> st.SearchStrategy:
    """A validated value of one feature: in and around its training range, null where allowed."""
    if feature.kind is FeatureKind.CATEGORICAL:
        values = st.sampled_from(list(feature.categories))
    else:
        lo, hi = feature.minimum, feature.maximum
        span = (hi - lo) or 1.0
        values = st.floats(lo - span, hi + span, allow_nan=False) | st.sampled_from(
            [lo, hi, 0.0, *BEYOND_FLOAT32]  # ONNX Runtime declines an instance beyond float32
        )
    return values | st.just(math.nan) if feature.nullable else values


def _instances(schema: FeatureSchema) -> st.SearchStrategy:
    row = st.tuples(*[_value(f) for f in schema.features]).map(list)
    return st.lists(row, min_size=1, max_size=40)


def _columns(rows: list[list]) -> list[list]:
    return [list(c) for c in zip(*rows, strict=True)]


def _predict(predictor, rows: list[list]) -> PredictionResult | None:
    """The predictor's result, or ``None`` when it refused the values (a 422)."""
    with warnings.catch_warnings():
        # a forest casts to float32: 1e39 overflows there, and scikit-learn then refuses it
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            return predictor.predict(_columns(rows))
        except InvalidInput:
            return None


def _bytes(result: PredictionResult, i: int) -> tuple[str, bytes]:
    """One instance's answer as bytes: its label and its float64 probabilities (or value)."""
    values = result.probabilities[i] if result.probabilities is not None else result.labels[i]
    return repr(result.labels[i]), np.asarray(values, dtype=np.float64).tobytes()


@pytest.mark.parametrize("runtime", ["sklearn", "onnx"])
def test_the_reported_example(models, runtime):
    predictor = _predictor(models, "linear", runtime)
    alone = predictor.predict(_columns([A]))
    beside_g = predictor.predict(_columns([A, G]))
    assert _bytes(alone, 0) == _bytes(beside_g, 0)
    assert alone.probabilities[0][1] == beside_g.probabilities[0][1]


def _schema(models: dict[str, Path], kind: str) -> FeatureSchema:
    path = models["ridge" if kind == "mlp" else kind]
    return load_artifact(path.parent, path.name).schema


@pytest.mark.parametrize(
    ("kind", "runtime"),
    [(k, r) for k in ("linear", "forest", "logit", "ridge") for r in ("sklearn", "onnx")]
    + [("mlp", "sklearn")],
)
def test_alone_equals_in_any_batch(models, kind, runtime):
    predictor = _predictor(models, kind, runtime)
    schema = _schema(models, kind)

    @INVARIANCE
    @given(rows=_instances(schema), cut=st.data())
    def check(rows, cut):
        alone = [_predict(predictor, [row]) for row in rows]
        # a random sub-request: a contiguous slice, each instance at another position
        start = cut.draw(st.integers(0, len(rows) - 1))
        stop = cut.draw(st.integers(start + 1, len(rows)))
        for first, batch in ((0, rows), (start, rows[start:stop])):
            result = _predict(predictor, batch)
            mine = alone[first : first + len(batch)]
            if any(a is None for a in mine):  # a refused instance refuses its whole request
                assert result is None
                continue
            for i, single in enumerate(mine):
                assert _bytes(result, i) == _bytes(single, 0), (first + i, batch[i])

    check()


@pytest.mark.parametrize("runtime", ["sklearn", "onnx"])
@pytest.mark.parametrize("kind", ["linear", "logit", "ridge"])
def test_batcher_coalesced_answers_equal_single_calls(models, kind, runtime):
    """Requests queued behind a running call are merged into one model call by the batcher."""
    predictor = _predictor(models, kind, runtime)
    assert predictor.capabilities.batches_across_requests  # the service batches it
    schema = _schema(models, kind)

    @INVARIANCE
    @given(requests=st.lists(_instances(schema), min_size=2, max_size=8))
    def check(requests):
        entered, gate, calls = threading.Event(), threading.Event(), []

        def predict(columns, sizes):
            if not calls:
                entered.set()
                gate.wait(10)  # the first call holds the worker while the others queue
            calls.append(sizes)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                return predictor.predict(columns).split(sizes)

        batcher = Batcher(predict, max_rows=10_000)
        with ThreadPoolExecutor(len(requests)) as pool:
            first = pool.submit(batcher.submit, _columns(requests[0]), len(requests[0]))
            assert entered.wait(10)
            rest = [pool.submit(batcher.submit, _columns(r), len(r)) for r in requests[1:]]
            while len(batcher._queue) < len(requests) - 1:  # every follower queued
                threading.Event().wait(0.001)
            gate.set()
            futures = [first, *rest]
        # coalesced: the second call held every follower (in the order they queued)
        assert len(calls) >= 2 and sorted(calls[1]) == sorted(len(r) for r in requests[1:])
        for request, future in zip(requests, futures, strict=True):
            alone = [_predict(predictor, [row]) for row in request]
            if any(a is None for a in alone):
                assert isinstance(future.exception(), InvalidInput)
                continue
            for i, single in enumerate(alone):
                assert _bytes(future.result(), i) == _bytes(single, 0)

    check()


@pytest.mark.parametrize("kind", ["logit", "ridge"])
def test_a_one_output_linear_model_sums_rows_rowwise_and_is_batched(models, kind):
    """A binary logistic regression and a ridge score by a matrix-vector product (GEMV) at any
    batch size, whose last bits moved with a row's place in the batch (found by the property
    test); the scikit-learn runtime computes those sums row-wise, so it batches them."""
    from ml_api.composition import build_scoring
    from ml_api.core.batching import Batcher
    from ml_api.core.runtimes.invariance import RowwiseCoef
    from ml_api.settings import Settings

    predictor = _predictor(models, kind, "sklearn")
    assert predictor.capabilities.batches_across_requests is True
    assert isinstance(predictor._estimator.coef_, RowwiseCoef)
    # the artifact's own model is untouched (its coef_ a plain array)
    assert type(predictor.model[-1].coef_) is np.ndarray
    path = models[kind]
    service = build_scoring(
        Settings(model_root=path.parent, model_name=path.name, runtime="sklearn")
    )
    assert isinstance(service.batcher, Batcher)


def test_a_model_not_known_to_be_row_independent_is_evaluated_alone(models):
    """A one-output neural network (an imported model) is on no list of row-independent steps:
    each instance is its own model call, concurrent requests are not batched, and the note the
    metadata shows says why."""
    predictor = _predictor(models, "mlp", "sklearn")
    assert predictor.capabilities.batches_across_requests is False
    assert predictor.capabilities.note.startswith("MLPRegressor not known to compute a row")
    rows = [[0.01 * i] * len(_schema(models, "mlp")) for i in range(9)]
    together = predictor.predict(_columns(rows))
    for i, row in enumerate(rows):
        assert _bytes(together, i) == _bytes(predictor.predict(_columns([row])), 0)


def test_the_neighbours_of_an_instance_beyond_float32_keep_onnx_answers(models):
    """ONNX Runtime declines only the instance beyond float32: scikit-learn predicts that one,
    its neighbours keep ONNX Runtime's bytes (before: the whole batch went to scikit-learn)."""
    onnx = _predictor(models, "linear", "onnx")
    sklearn = _predictor(models, "linear", "sklearn")
    assert isinstance(onnx, WithFallback)
    wide = [A[0], 39.1, 18.7, 181.0, 1e39, "male"]
    batch = onnx.predict(_columns([A, wide, G]))
    assert _bytes(batch, 0) == _bytes(onnx.predict(_columns([A])), 0)
    assert _bytes(batch, 2) == _bytes(onnx.predict(_columns([G])), 0)
    assert _bytes(batch, 1) == _bytes(sklearn.predict(_columns([wide])), 0)
    # ONNX Runtime's float32 answer for A is not scikit-learn's: the bytes say who answered
    assert _bytes(batch, 0) != _bytes(sklearn.predict(_columns([A])), 0)
    assert list(batch.labels) == ["Adelie", onnx.predict(_columns([wide])).labels[0], "Gentoo"]
