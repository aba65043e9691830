"""The bad-input table, through the core service (no framework)."""

import json

import pytest

from ml_api.composition import build_scoring
from ml_api.core.errors import ServingError, to_payload
from ml_api.core.protocols.request import Request
from ml_api.core.protocols.v1 import V1Protocol
from tests.cases import body_bytes, check_response, load_cases

CASES = load_cases()


@pytest.mark.parametrize(("name", "case"), CASES, ids=[n for n, _ in CASES])
def test_case_through_core(service, name, case):
    body = body_bytes(case)
    try:
        headers = {"Content-Type": case["content_type"]} if case["content_type"] else {}
        result = V1Protocol(service).predict(Request.of(body, headers))
        status = 200
    except ServingError as exc:
        result = to_payload(exc, "rid")
        status = exc.status.value
    check_response(case, status, json.loads(json.dumps(result, allow_nan=False)))


def test_every_problem_of_a_batch_is_reported(service):
    rows = [["Atlantis", "1", True, None, 1e400, 3]] * 3
    with pytest.raises(ServingError) as info:
        V1Protocol(service).predict_instances(rows)
    named = {(p.instance, p.field) for p in info.value.details}
    for i in range(3):
        assert {
            (i, "island"),
            (i, "bill_length_mm"),
            (i, "bill_depth_mm"),
            (i, "body_mass_g"),
            (i, "sex"),
        } <= named
    assert (0, "flipper_length_mm") not in named  # null is fine: it had missing values


def test_unseen_category_lists_the_allowed_ones(service):
    with pytest.raises(ServingError) as info:
        V1Protocol(service).predict_instances([["Atlantis", 50.0, 15.0, 220.0, 5500.0, "male"]])
    problem = info.value.details[0].problem
    for island in ("Biscoe", "Dream", "Torgersen"):
        assert island in problem


def test_wrong_count_names_expected_features(service):
    with pytest.raises(ServingError) as info:
        V1Protocol(service).predict_instances([[1.2, 3.4, 5.6]])
    problem = info.value.details[0].problem
    assert "expected 6 values" in problem and "island" in problem and "got 3" in problem


def test_problem_list_is_bounded(service):
    with pytest.raises(ServingError) as info:
        V1Protocol(service).predict_instances([["Atlantis", 1, 1, 1, 1, "male"]] * 500)
    assert len(info.value.details) == 50
    assert info.value.message.startswith("50+ problems in the instances")


def test_key_order_does_not_matter(service, penguins_frame):
    names = list(service.schema.names)
    rows = penguins_frame[names].dropna().head(20)
    forward = [dict(zip(names, r, strict=True)) for r in rows.itertuples(index=False)]
    backward = [dict(reversed(list(d.items()))) for d in forward]
    positional = [list(r) for r in rows.itertuples(index=False)]
    v1 = V1Protocol(service)
    a = v1.predict_instances(forward)
    assert a == v1.predict_instances(backward) == v1.predict_instances(positional)


def test_batch_equals_singles(service, penguins_frame):
    names = list(service.schema.names)
    frame = penguins_frame[names].astype(object)
    rows = frame.where(frame.notna(), None).head(40).values.tolist()
    batch = V1Protocol(service).predict_instances(rows)
    singles = [V1Protocol(service).predict_instances([r]) for r in rows]
    assert batch["prediction"] == [s["prediction"][0] for s in singles]
    # Equal to the last few ULPs only: BLAS (and ONNX Runtime's float32 kernels) block a 40-row
    # product differently from a 1-row one: ~1e-16 in scikit-learn, ~1e-7 in ONNX Runtime.
    tol = 1e-15 if service.predictor.runtime == "scikit-learn" else 1e-6
    for got, single in zip(batch["probabilities"], singles, strict=True):
        assert got == pytest.approx(single["probabilities"][0], rel=0, abs=tol)


def test_predictions_match_the_pipeline(service, penguins_frame):
    names = list(service.schema.names)
    frame = service.schema.coerce_training_frame(penguins_frame[names])
    expected = service.artifact.model.predict(frame).tolist()
    raw = penguins_frame[names].astype(object)
    rows = raw.where(raw.notna(), None).values.tolist()
    assert V1Protocol(service).predict_instances(rows[:50])["prediction"] == expected[:50]


def test_batched_and_unbatched_services_agree(settings, penguins_frame):
    from concurrent.futures import ThreadPoolExecutor

    on = build_scoring(settings.model_copy(update={"batching": True}))
    off = build_scoring(settings.model_copy(update={"batching": False}))
    names = list(on.schema.names)
    frame = penguins_frame[names].astype(object)
    rows = frame.where(frame.notna(), None).values.tolist()
    with ThreadPoolExecutor(16) as pool:
        batched = list(pool.map(lambda r: V1Protocol(on).predict_instances([r]), rows))
    for row, got in zip(rows, batched, strict=True):
        want = V1Protocol(off).predict_instances([row])
        assert got["prediction"] == want["prediction"]
        tol = (
            1e-15 if on.predictor.runtime == "scikit-learn" else 1e-6
        )  # float32 kernels under ONNX
        assert got["probabilities"][0] == pytest.approx(want["probabilities"][0], rel=0, abs=tol)
