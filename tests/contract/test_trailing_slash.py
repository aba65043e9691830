"""One trailing-slash policy: what a person or client types answers with and without the slash.

``/predict/`` answered while ``/docs/``, ``/model/`` and ``/metadata/`` were 404. The pages and
documents (``/predict``, ``/metadata``, ``/docs``, ``/model``, ``/v2``) now answer both spellings
with the same body in both frameworks; probes, metrics and files answer only as written.
"""

from __future__ import annotations

import pytest

SLASHED = ["/metadata", "/docs", "/model", "/v2"]
AS_WRITTEN = ["/health", "/ready", "/metrics", "/openapi.json"]


@pytest.mark.parametrize("path", SLASHED)
def test_a_page_answers_the_same_with_a_trailing_slash(app, path):
    plain, slashed = app.get(path), app.get(path + "/")
    assert plain.status == 200, plain.body[:200]
    assert slashed.status == 200 and slashed.body == plain.body


@pytest.mark.parametrize("path", AS_WRITTEN)
def test_probes_and_files_answer_only_as_written(app, path):
    assert app.get(path + "/").status == 404
