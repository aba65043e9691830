"""A real browser for the pages people use: Debian's Chromium driven by Playwright.

Chromium comes from the distribution (``apt-get install chromium``; ``.ci/run`` installs it),
never from ``playwright install`` (which downloads a browser build: no internet here). Without
it the browser tests skip and say how to install it, unless ``CI`` is set: there they fail
(``tests/tools.py``, as for every optional tool).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests import tools

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One headless Chromium (Debian's) for the session; skip without it, fail in CI."""
    chromium = tools.find_tool("chromium")
    if chromium is None:
        tools.missing("chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        tools.missing(
            "chromium", "Playwright for Python is not installed (make .venv/.installed-test)"
        )
    with sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@dataclass
class Watched:
    """A page plus what it did: requests to other origins, console errors, failed requests."""

    page: Any
    origin: str
    external: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def assert_clean(self) -> None:
        assert self.external == [], f"requests outside the server: {self.external}"
        assert self.console_errors == [], f"console errors: {self.console_errors}"
        assert self.failed == [], f"failed requests: {self.failed}"


def watch(browser: Any, origin: str) -> Watched:
    """Open a page in a fresh context that records what leaves ``origin`` and what goes wrong.

    Requests to any other origin are recorded and aborted (nothing leaves the machine).
    """
    context = browser.new_context()
    page = context.new_page()
    watched = Watched(page, origin)

    def route(r: Any) -> None:
        url = r.request.url
        if url.startswith(origin + "/") or url.startswith("data:"):
            r.continue_()
        else:
            watched.external.append(url)
            r.abort()

    context.route("**/*", route)
    page.on(
        "console",
        lambda m: m.type == "error" and watched.console_errors.append(f"{m.text} ({m.location})"),
    )
    page.on("pageerror", lambda e: watched.console_errors.append(f"uncaught: {e}"))
    page.on("requestfailed", lambda r: watched.failed.append(f"{r.url}: {r.failure}"))
    return watched
