"""One trailing-slash policy: what a person or client types answers with and without the slash.

``/predict/`` answered while ``/docs/``, ``/model/`` and ``/metadata/`` were 404. The documents
(``/predict``, ``/metadata``, ``/v2``) answer both spellings with the same body in both frameworks;
the HTML pages (``/docs``, ``/model``) redirect their slashed spelling to themselves (their
relative assets resolved under ``/docs/docs/``); probes, metrics and files answer only as written.
"""

from __future__ import annotations

import pytest

SLASHED = ["/metadata", "/v2"]
PAGES = ["/docs", "/model"]
AS_WRITTEN = ["/health", "/ready", "/metrics", "/openapi.json"]


@pytest.mark.parametrize("path", SLASHED)
def test_a_document_answers_the_same_with_a_trailing_slash(app, path):
    plain, slashed = app.get(path), app.get(path + "/")
    assert plain.status == 200, plain.body[:200]
    assert slashed.status == 200 and slashed.body == plain.body


@pytest.mark.parametrize("path", PAGES)
def test_a_page_with_a_trailing_slash_redirects_to_it(app, path):
    """Its relative assets and links would resolve under ``/docs/docs/`` (a blank page)."""
    assert app.get(path).status == 200
    slashed = app.get(path + "/")
    assert slashed.status == 308
    # relative, so it also works behind a path prefix: /docs/ + ../docs = /docs
    assert slashed.headers["Location"] == "../" + path.lstrip("/")


@pytest.mark.parametrize("path", AS_WRITTEN)
def test_probes_and_files_answer_only_as_written(app, path):
    assert app.get(path + "/").status == 404
