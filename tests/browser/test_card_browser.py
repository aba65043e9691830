"""``GET /model`` in a real browser, from a live gunicorn server of each framework."""

from __future__ import annotations

import pytest

from tests.browser.conftest import watch
from tests.conftest import DJANGO_SECRET_KEY
from tests.live.server import LiveServer

pytestmark = pytest.mark.live


@pytest.fixture(scope="module", params=["flask", "django"])
def server(request, model_root):
    env = {"ML_API_SECRET_KEY": DJANGO_SECRET_KEY} if request.param == "django" else {}
    srv = LiveServer(model_root, request.param, workers=1, env=env)
    srv.wait_ready()
    yield srv
    assert srv.terminate() == 0, srv.output()


def test_card_page_renders_every_chart_with_nothing_external(browser, server):
    watched = watch(browser, server.url)
    page = watched.page
    page.goto(server.url + "/model")
    page.wait_for_load_state("load")
    assert page.locator("h1").inner_text() == "Model card: penguins version 1"
    charts = page.locator("img.chart")
    assert charts.count() == 3
    for i in range(3):
        chart = charts.nth(i)
        chart.scroll_into_view_if_needed()
        assert chart.is_visible()
        # decoded and drawn: a broken image has no natural size
        assert chart.evaluate(
            "img => img.complete && img.naturalWidth > 100 && img.naturalHeight > 100"
        )
        box = chart.bounding_box()
        assert box and box["width"] > 100 and box["height"] > 100
    assert page.locator("#charts-absent").count() == 0
    watched.assert_clean()
    page.context.close()
