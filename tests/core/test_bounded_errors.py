"""Error bodies stay bounded whatever the client sent (core/errors.py, issue 12 item 1)."""

import json

import pytest

from ml_api.core.errors import (
    MAX_ERROR_BODY_BYTES,
    InvalidInput,
    Problem,
    RouteNotFound,
    quote,
    shorten,
    to_payload,
)


def _size(payload) -> int:
    return len(json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode())


def test_quote_keeps_short_values_and_shortens_long_ones():
    assert quote("Atlantis") == "'Atlantis'"
    assert quote("A" * 61) == "'" + "A" * 60 + "'... (61 characters)"
    assert quote(10**100).endswith("(101 characters)")
    assert shorten("abc") == "abc"


@pytest.mark.parametrize("char", ["A", "\x00", "\u2028", "\U0001f427", '"'])
def test_the_worst_characters_still_fit(char):
    huge = char * 100_000
    problems = [Problem(huge, instance=i, field=huge) for i in range(500)]
    payload = to_payload(InvalidInput(huge, problems), "r-1")
    assert _size(payload) <= MAX_ERROR_BODY_BYTES
    assert payload["details"]  # some details survive
    assert all(len(d["field"]) <= 100 for d in payload["details"])


def test_a_path_in_a_404_is_shortened():
    err = RouteNotFound("GET", "/" + "p" * 100_000)
    assert len(err.message) < 400 and "(100001 characters)" in err.message


def test_non_finite_predictions_are_refused_per_instance():
    """Found by fuzzing: extreme finite inputs overflowed the model (a RuntimeWarning, a 500 under
    -W error); the service now predicts under np.errstate and refuses non-finite outputs (422)."""
    import numpy as np

    from ml_api.core.runtimes.predictor import PredictionResult
    from ml_api.core.service import _refuse_overflow

    ok = PredictionResult(np.array(["a", "b"]), np.array([[0.5, 0.5], [1.0, 0.0]]), ("a", "b"))
    _refuse_overflow(ok, 0)
    bad = PredictionResult(
        np.array(["a", "b"]), np.array([[0.5, 0.5], [np.nan, np.nan]]), ("a", "b")
    )
    with pytest.raises(InvalidInput) as info:
        _refuse_overflow(bad, 3)
    assert [p.instance for p in info.value.details] == [4]
    regression = PredictionResult(np.array([1.0, np.inf]), None, ())
    with pytest.raises(InvalidInput):
        _refuse_overflow(regression, 0)
