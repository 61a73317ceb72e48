"""The UI's login in a real browser: without a cookie every page is the login page; a reader token of one domain,
typed into the form, shows that domain and nothing of another (list, overview, the other domain asked for by name:
the answer a domain that does not exist gets; a decision's own URL: 404 as for a decision that does not exist,
docs/security.md); Log out forgets the cookie and goes back to the login page."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest

from tests.e2e.conftest import Tab, open_tab
from tests.e2e.seed import CM, CS, Seeded
from tests.web.conftest import LiveServer, issue_token

if TYPE_CHECKING:
    from playwright.sync_api import Browser

pytestmark = pytest.mark.browser

Site = tuple[LiveServer, Seeded]


@pytest.fixture
def anonymous(browser: Browser, site: Site) -> Iterator[Tab]:
    """A tab without any token: no header, no cookie."""
    t = open_tab(browser, site[0].url)
    try:
        yield t
    finally:
        t.page.context.close()


def _ids(live: LiveServer, domain: str) -> set[str]:
    """Every decision id of `domain`, as the admin token of the site sees them through the API."""
    ids: set[str] = set()
    cursor = None
    while True:
        params = {"domain": domain, "limit": "500", **({"cursor": cursor} if cursor else {})}
        body = live.client.get("/api/decisions", params=params).json()
        ids |= {item["decision_id"] for item in body["items"]}
        cursor = body["next_cursor"]
        if cursor is None:
            return ids


def _on_login_page(tab: Tab) -> None:
    assert urlsplit(tab.page.url).path == "/login", tab.page.url
    assert tab.page.get_by_role("heading", name="Log in").is_visible()
    assert tab.page.locator("form[action='/login'] input[name=token]").is_visible()
    assert tab.page.locator("form[action='/logout']").count() == 0


def _refusal(tab: Tab, path: str, domain: str) -> tuple[int, str]:
    """The status and the main text (the domain's name blanked) of `path` asked for `domain`; no decision shown."""
    response = tab.page.goto(f"{path}?domain={domain}")
    assert response is not None
    assert tab.page.locator("tr[data-decision-id]").count() == 0
    assert tab.page.locator(".counts a strong").count() == 0
    return response.status, " ".join(tab.page.locator("main").inner_text().replace(domain, "<domain>").split())


def _token_cookie(tab: Tab) -> list[dict[str, Any]]:
    return [dict(c) for c in tab.page.context.cookies() if c["name"] == "mandate_token"]


def test_login_shows_one_domain_hides_the_other_and_logout_forgets_the_token(anonymous: Tab, site: Site) -> None:
    live, seeded = site
    reader_a = issue_token(live.database_url, role="reader", domains=frozenset({CM}), name="reader of config")
    theirs, ours = _ids(live, CS), _ids(live, CM)
    assert theirs and ours and not theirs & ours
    p = anonymous.page

    # Without a cookie: the login page, for the list as for any other page (and no decision data on it).
    for path in ("/", "/overview", f"/decisions/{next(iter(ours))}"):
        response = p.goto(path)
        assert response is not None and response.status == 200
        _on_login_page(anonymous)
        asked = path.rsplit("/", 1)[-1]  # the page to go back to after logging in is in the form
        assert not any(i in p.content() for i in (ours | theirs) - {asked})
    assert _token_cookie(anonymous) == []

    # A wrong token is refused on the form; the reader token of domain A logs in and goes back to the list.
    p.goto("/")
    p.locator("input[name=token]").fill("mdt_" + "x" * 43)
    with p.expect_navigation():
        p.get_by_role("button", name="Log in").click()
    _on_login_page(anonymous)
    assert p.get_by_role("alert").is_visible() and "unknown, revoked or expired" in p.content()
    assert _token_cookie(anonymous) == []
    p.locator("input[name=token]").fill(reader_a)
    with p.expect_navigation():
        p.get_by_role("button", name="Log in").click()
    assert urlsplit(p.url).path == "/"
    (cookie,) = _token_cookie(anonymous)
    assert cookie["httpOnly"] and cookie["secure"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/"
    assert p.evaluate("document.cookie") == ""  # the page's scripts cannot read it

    # The list: domain A's decisions only, every page of them; domain B is not even offered as a filter.
    shown: set[str] = set()
    p.goto("/?limit=50")
    while True:
        rows = p.locator("tr[data-decision-id]")
        assert rows.count() > 0
        for r in rows.all():
            assert r.get_attribute("data-domain") == CM
            shown.add(r.get_attribute("data-decision-id") or "")
        following = p.locator("a[rel=next]")
        if following.count() == 0:
            break
        with p.expect_navigation():
            following.first.click()
    assert shown == ours
    p.goto("/")
    assert not p.locator(f"select[name=domain] option[value='{CS}']").count()
    assert CS not in p.content()
    # Asking for domain B by name: refused exactly as a domain that does not exist, nothing of it shown.
    for page_path in ("/", "/overview"):
        refused = _refusal(anonymous, page_path, CS)
        assert refused == _refusal(anonymous, page_path, "no-such-domain")
        assert refused[0] >= 400

    # The overview counts domain A's decision stages only.
    response = p.goto("/overview")
    assert response is not None and response.status == 200
    assert p.locator(".page-head .sub").inner_text().find(f"domain {CM}") != -1
    counted = sum(int(n) for n in p.locator(".counts a strong").all_inner_texts())
    assert counted == seeded.by_domain[CM]
    assert counted < seeded.total
    assert CS not in p.content()

    # A decision of domain B by its own URL: exactly what a decision that does not exist gets.
    response = p.goto(f"/decisions/{next(iter(theirs))}")
    assert response is not None and response.status == 404
    hidden = " ".join(p.locator("main").inner_text().replace(next(iter(theirs)), "<id>").split())
    assert CS not in p.content()
    missing = str(uuid.uuid4())
    response = p.goto(f"/decisions/{missing}")
    assert response is not None and response.status == 404
    assert " ".join(p.locator("main").inner_text().replace(missing, "<id>").split()) == hidden
    # …while one of domain A opens.
    response = p.goto(f"/decisions/{next(iter(ours))}")
    assert response is not None and response.status == 200

    # Log out: the cookie is gone, the login page is back, and the list asks for a token again.
    with p.expect_navigation():
        p.get_by_role("button", name="Log out").click()
    _on_login_page(anonymous)
    assert _token_cookie(anonymous) == []
    p.goto("/")
    _on_login_page(anonymous)
    assert p.locator("tr[data-decision-id]").count() == 0
