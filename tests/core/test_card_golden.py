"""The card a version is written with stays field for field what it was (golden JSON files).

tests/testdata/cards/ holds the ``metadata.json`` of a trained and an imported model of each
kind (tests/core/card_cases.py), as the card writer wrote them when they were committed, with
the values that change with the time, the build or the libraries masked. A field lost, renamed,
moved or given another value fails here.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.core.card_cases import CASES, PLACEHOLDER, normalized

GOLDEN = Path(__file__).resolve().parents[1] / "testdata" / "cards"


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_card_is_written_as_the_golden_file(case, tmp_path):
    written = normalized(CASES[case](tmp_path))
    assert written == (GOLDEN / f"{case}.json").read_text()


def test_the_golden_files_mask_only_what_varies():
    # the masks must not hide the card: name, features and the model file's name are real
    for case in CASES:
        card = json.loads((GOLDEN / f"{case}.json").read_text())
        assert card["name"] and card["features"] and card["model_file"]["name"] != PLACEHOLDER
        assert card["created_at"] == PLACEHOLDER and card["model_file"]["sha256"] == PLACEHOLDER
        assert set(card["versions"]) >= {"python", "scikit-learn", "numpy", "pandas"}
