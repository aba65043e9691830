"""``/docs`` in a real browser against a live gunicorn server of each framework.

The click-through a person does: open ``/docs``, expand ``POST /predict``, "Try it out",
"Execute", read status 200 and the species; the same on the V2 infer operation. With API keys
configured, "Authorize" first. Nothing is fetched from outside the server and the console stays
free of errors.
"""

from __future__ import annotations

import pytest

from tests.browser.conftest import watch
from tests.conftest import DJANGO_SECRET_KEY
from tests.live.server import LiveServer

pytestmark = pytest.mark.live
SPECIES = ("Adelie", "Chinstrap", "Gentoo")
KEY = "browser-key-7f3a"


@pytest.fixture(
    scope="module",
    params=[("flask", False), ("flask", True), ("django", False), ("django", True)],
    ids=["flask", "flask-keys", "django", "django-keys"],
)
def server(request, model_root):
    framework, keys = request.param
    env = {"ML_API_SECRET_KEY": DJANGO_SECRET_KEY} if framework == "django" else {}
    if keys:
        env["ML_API_API_KEYS"] = KEY
    srv = LiveServer(model_root, framework, workers=1, env=env)
    srv.wait_ready()
    srv.keys = keys
    yield srv
    assert srv.terminate() == 0, srv.output()


def _authorize(page) -> None:
    page.click("button.authorize")
    modal = page.locator(".dialog-ux .modal-ux")
    modal.wait_for()
    modal.locator("input").first.fill(KEY)  # the first scheme: Authorization: Bearer <key>
    modal.locator("button.authorize").first.click()
    modal.locator("button.btn-done").first.click()


def _try_and_execute(page, path: str) -> str:
    block = page.locator(f".opblock-post:has(.opblock-summary-path[data-path='{path}'])")
    block.locator(".opblock-summary").first.click()
    block.locator("button.try-out__btn").click()
    block.locator("button.execute").click()
    live = block.locator(".live-responses-table")
    live.locator("tr.response .response-col_status").first.wait_for()
    status = live.locator("tr.response .response-col_status").first.inner_text().strip()
    assert status == "200", block.inner_text()
    return live.locator("tr.response .response-col_description").first.inner_text()


def test_docs_try_it_out_predict_and_v2_infer(browser, server):
    watched = watch(browser, server.url)
    page = watched.page
    page.goto(server.url + "/docs")
    page.locator(".opblock-summary-path[data-path='/predict']").wait_for()
    title = page.locator(".information-container .title").inner_text()
    assert "penguins" in title
    if server.keys:
        _authorize(page)
    body = _try_and_execute(page, "/predict")
    assert '"prediction"' in body and any(s in body for s in SPECIES), body
    body = _try_and_execute(page, "/v2/models/{name}/infer")
    assert '"model_name": "penguins"' in body and any(s in body for s in SPECIES), body
    watched.assert_clean()
    page.context.close()


def test_without_authorize_the_api_refuses_but_the_docs_load(browser, server):
    if not server.keys:
        pytest.skip("only meaningful with API keys configured")
    watched = watch(browser, server.url)
    page = watched.page
    page.goto(server.url + "/docs")
    page.locator(".opblock-summary-path[data-path='/predict']").wait_for()
    assert page.locator("button.authorize").is_visible()
    block = page.locator(".opblock-post:has(.opblock-summary-path[data-path='/predict'])")
    block.locator(".opblock-summary").first.click()
    block.locator("button.try-out__btn").click()
    block.locator("button.execute").click()
    status = block.locator(".live-responses-table tr.response .response-col_status").first
    status.wait_for()
    assert status.inner_text().strip() == "401"
    assert watched.external == []
    page.context.close()


def test_docs_with_a_trailing_slash_is_the_working_page(browser, server):
    """``/docs/`` loaded the page whose assets then resolved to ``/docs/docs/...`` (blank)."""
    watched = watch(browser, server.url)
    page = watched.page
    page.goto(server.url + "/docs/")
    page.locator(".opblock-summary-path[data-path='/predict']").wait_for()
    assert page.url == server.url + "/docs"
    watched.assert_clean()
    page.context.close()
