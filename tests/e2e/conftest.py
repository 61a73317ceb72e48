"""Browser fixtures: Debian's Chromium driven by Playwright, against a real server with the demo data.

The browser tests never skip: without Chromium (or Playwright) they fail and say how to install it — CI installs
both (`apt-get install -y chromium`, `pip install -e '.[dev]'`). Playwright's own browser download is not used.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pytest

from tests.conftest import PgServer
from tests.e2e.seed import Seeded, scratch_database, seeded_server
from tests.web.conftest import LiveServer

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.fixture(scope="package")  # not session: Playwright's sync API holds an event loop on the main thread, which
def browser() -> Iterator[Browser]:  # the asyncio-based tests after this package need free (asyncio.run)
    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail(
            "Chromium is not installed, and the browser tests need it: apt-get install -y chromium "
            "(Debian's package; CI installs it). They fail rather than skip, so the UI is never silently untested.",
            pytrace=False,
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("Playwright is not installed: pip install -e '.[dev]' (do not run `playwright install`)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def site(pg: PgServer, templates: Callable[[int | None], str]) -> Iterator[tuple[LiveServer, Seeded]]:
    """A fresh database with the demo governance and the demo decisions, behind a real server."""
    with scratch_database(pg, templates(None)) as url, seeded_server(url) as pair:
        yield pair


@dataclass
class Tab:
    """A browser page on the site, and every request it made (method, URL), in order."""

    page: Page
    requests: list[tuple[str, str]] = field(default_factory=list)


def open_tab(browser: Browser, base_url: str, width: int = 1280, height: int = 900, token: str = "") -> Tab:
    """A tab; with `token`, every request it makes carries it (as a logged-in browser carries its cookie)."""
    context = browser.new_context(
        base_url=base_url,
        viewport={"width": width, "height": height},
        accept_downloads=True,
        extra_http_headers={"authorization": f"Bearer {token}"} if token else None,
    )
    if token:  # downloads do not carry extra headers: the UI's login cookie does (web/auth.py)
        context.add_cookies([{"name": "mandate_token", "value": token, "url": base_url}])
    context.set_default_timeout(10_000)
    tab = Tab(context.new_page())
    tab.page.on("request", lambda r: tab.requests.append((r.method, r.url)))
    return tab


@pytest.fixture
def tab(browser: Browser, site: tuple[LiveServer, Seeded]) -> Iterator[Tab]:
    """A 1280 px wide tab whose relative URLs go to the site."""
    t = open_tab(browser, site[0].url, token=site[0].token)
    try:
        yield t
    finally:
        t.page.context.close()


@pytest.fixture
def phone(browser: Browser, site: tuple[LiveServer, Seeded]) -> Iterator[Tab]:
    """A 390 px wide tab (a phone)."""
    t = open_tab(browser, site[0].url, 390, 844, token=site[0].token)
    try:
        yield t
    finally:
        t.page.context.close()
