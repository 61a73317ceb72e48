"""The approvals queue in a real browser (Debian's Chromium through Playwright), on a desktop and on a phone: the
pending request is on screen with its requirement, expiry and decision, nothing overflows sideways — the page, the
table, the decision page's approval history — and axe finds no serious accessibility violation."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import httpx
import pytest

from tests.conftest import PgServer
from tests.e2e.conftest import open_tab
from tests.e2e.seed import apply_demo_governance, scratch_database
from tests.e2e.test_browser import axe_violations
from tests.web.conftest import bearer, issue_token, start_server
from tests.web.test_approvals import DOMAIN, drop

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = pytest.mark.browser


@dataclass
class Queue:
    url: str
    token: str  # a reader of DOMAIN
    decision_id: str
    approval_id: str


@pytest.fixture(scope="module")
def queue(pg: PgServer, templates: Callable[[int | None], str]) -> Iterator[Queue]:
    """The demo governance and one PAUSE sent now (pending), with one of its two requirements satisfied."""
    with scratch_database(pg, templates(None)) as db_url:
        apply_demo_governance(db_url)
        server, thread, url = start_server(db_url)
        agent = issue_token(db_url, role="agent", domains=frozenset({DOMAIN}), name="agent-a")
        dba = issue_token(db_url, role="approver", domains=frozenset({DOMAIN}), name="dba-alice")
        reader = issue_token(db_url, role="reader", domains=frozenset({DOMAIN}), name="reader")
        try:
            with httpx.Client(base_url=url, timeout=30) as client:
                answer = client.post("/api/decisions", json=drop(timestamp=datetime.now(UTC)), headers=bearer(agent))
                assert answer.json()["verdict"] == "PAUSE", answer.text
                approval_id = answer.json()["approval_request"]["approval_id"]
                approved = client.post(
                    f"/api/approvals/{approval_id}/approve",
                    json={"requirement": "dba-approval", "reason": "backup verified"},
                    headers=bearer(dba),
                )
                assert approved.status_code == 201, approved.text
            yield Queue(url, reader, answer.json()["decision_id"], approval_id)
        finally:
            server.should_exit = True
            thread.join(timeout=15)


def overflow(page: Page, width: int, within: str = "main") -> list[str]:
    """What sticks out sideways: the document wider than the viewport, a table wider than the box it scrolls in, or
    an element of `within` whose right edge lies past the viewport. Inside a box that scrolls or clips (a table's
    wrapper, the visually hidden header of phone cards), the box is what counts."""
    found: list[str] = page.evaluate(
        """([width, within]) => {
             const out = [];
             const root = document.documentElement;
             if (root.scrollWidth > width) out.push('document ' + root.scrollWidth);
             const held = (el) => {
               for (let box = el.parentElement; box && box !== document.body; box = box.parentElement) {
                 const style = getComputedStyle(box);
                 if (style.overflowX !== 'visible' || style.clip !== 'auto') return true;
               }
               return false;
             };
             for (const el of document.querySelectorAll(within + ', ' + within + ' *')) {
               if (el.matches('.table-wrap') && el.scrollWidth > el.clientWidth + 1) {
                 out.push('table ' + el.firstElementChild.className + ' ' + el.scrollWidth + ' > ' + el.clientWidth);
               }
               const r = el.getBoundingClientRect();
               if (!held(el) && r.width && r.right > width + 1) {
                 out.push(el.tagName + '.' + el.className + ' ' + Math.round(r.right));
               }
             }
             return out.slice(0, 5);
           }""",
        [width, within],
    )
    return found


@pytest.mark.parametrize(("width", "height"), [(1440, 900), (390, 844)], ids=["desktop", "phone"])
def test_the_pending_queue_shows_the_request_and_nothing_overflows(
    browser: Browser, queue: Queue, width: int, height: int
) -> None:
    tab = open_tab(browser, queue.url, width, height, token=queue.token)
    p = tab.page
    try:
        p.goto("/approvals")
        row = p.locator(f"tr[data-approval-id='{queue.approval_id}']")
        assert row.is_visible()
        assert row.get_attribute("data-state") == "pending"
        satisfied = row.locator("li[data-requirement=dba-approval]")
        assert satisfied.is_visible() and "satisfied by dba-alice" in satisfied.inner_text()
        waiting = row.locator("li[data-requirement=compliance-review]")
        assert waiting.is_visible() and "not yet satisfied" in waiting.inner_text()
        assert row.locator("[data-field=expires-in]").inner_text().startswith("(in 1 h ")
        for selector in ("[data-field=expires-in]", "[data-field=requirements]", "a[data-link=decision]"):
            box = row.locator(selector).first.bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width, selector
        assert overflow(p, width) == []
        assert axe_violations(tab) == []
        # The link opens the decision, whose page shows the request's history, on screen too.
        with p.expect_navigation():
            row.locator("a[data-link=decision]").click()
        history = p.locator(f"article[data-approval-id='{queue.approval_id}'] table[data-section=approval-history]")
        history.scroll_into_view_if_needed()
        assert history.locator("tr[data-event=approved]").is_visible()
        assert p.url.split("?")[0].endswith(queue.decision_id)
        assert overflow(p, width, "#approvals") == []  # the spec panel's tables scroll by design (mandate.css)
        p.goto("/findings")
        assert p.get_by_role("heading", name="No finding in config-management").is_visible()
        assert overflow(p, width) == []
    finally:
        p.context.close()
