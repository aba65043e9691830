"""The HTML pages' assets and links resolve over real HTTP from either spelling of the page.

``/docs/`` answered the page, whose relative ``docs/swagger-ui.css`` then resolved to
``/docs/docs/swagger-ui.css`` (404: a blank page). Here a real client follows the redirect and
every ``href``/``src`` of the page it lands on, as a browser would, against live gunicorn servers.
"""

from __future__ import annotations

import re
from urllib.parse import urljoin

import pytest
import requests

from tests.conftest import DJANGO_SECRET_KEY
from tests.live.server import LiveServer

pytestmark = pytest.mark.live


@pytest.mark.parametrize("framework", ["flask", "django"])
def test_every_asset_and_link_of_the_pages_answers(model_root, framework):
    env = {"ML_API_SECRET_KEY": DJANGO_SECRET_KEY} if framework == "django" else {}
    with LiveServer(model_root, framework, workers=1, env=env) as server:
        for path in ("/docs", "/docs/", "/model", "/model/"):
            page = requests.get(server.url + path, timeout=30)
            assert page.status_code == 200, (path, page.text[:200])
            assert page.url == server.url + path.rstrip("/")
            refs = re.findall(r"(?:href|src)='([^']+)'", page.text)
            local = [r for r in refs if not r.startswith(("data:", "http", "#"))]
            assert local, page.text[:300]
            for ref in local:
                url = urljoin(page.url, ref)
                got = requests.get(url, timeout=30)
                assert got.status_code == 200, (path, ref, url, got.status_code)
