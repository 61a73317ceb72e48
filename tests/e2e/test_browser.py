"""The UI in a real browser (Debian's Chromium through Playwright) on a fresh database with the demo governance and
demo decisions: filter, paginate, read a BLOCK's explanation, export, stay read-only, work on a phone.

Screenshots of each page at 1280 px are written to docs/images/ by these tests (decisions.png, decision-block.png,
scopes.png, specs.png, migrations.png).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.e2e.conftest import Tab
from tests.e2e.seed import CM, CS, Seeded
from tests.web.conftest import LiveServer

pytestmark = pytest.mark.browser

IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"
Site = tuple[LiveServer, Seeded]


def api_items(live: LiveServer, **params: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        body = live.client.get(
            "/api/decisions", params={**params, "limit": "500", **({"cursor": cursor} if cursor else {})}
        ).json()
        items += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            return items


def rows(tab: Tab) -> list[tuple[str, str, str]]:
    """(decision_id, verdict, domain) of the rows of the decisions table."""
    return [
        (
            r.get_attribute("data-decision-id") or "",
            r.get_attribute("data-verdict") or "",
            r.get_attribute("data-domain") or "",
        )
        for r in tab.page.locator("tr[data-decision-id]").all()
    ]


def query(tab: Tab) -> dict[str, list[str]]:
    return parse_qs(urlsplit(tab.page.url).query)


def shoot(tab: Tab, name: str) -> None:
    IMAGES.mkdir(parents=True, exist_ok=True)
    tab.page.screenshot(path=str(IMAGES / name), full_page=True)


def test_filter_by_domain_and_verdict_through_the_form(tab: Tab, site: Site) -> None:
    live, _ = site
    tab.page.goto("/?limit=12")
    assert {d for _, _, d in rows(tab)} == {CM}
    shoot(tab, "decisions.png")

    # Changing the domain submits the GET form (progressive enhancement); the URL is the shareable filter.
    with tab.page.expect_navigation():
        tab.page.select_option("select[name=domain]", CS)
    assert query(tab)["domain"] == [CS]
    assert {d for _, _, d in rows(tab)} == {CS}

    tab.page.select_option("select[name=verdict]", "BLOCK")
    tab.page.select_option("select[name=limit]", "500")
    with tab.page.expect_navigation():
        tab.page.get_by_role("button", name="Apply filters").click()
    q = query(tab)
    assert q["verdict"] == ["BLOCK"] and q["domain"] == [CS]
    assert "intent" not in q and "since" not in q  # empty fields stay out of the URL
    expected = [(i["decision_id"], "BLOCK", CS) for i in api_items(live, domain=CS, verdict="BLOCK")]
    assert rows(tab) == expected and expected
    assert tab.page.locator("a.count.active").inner_text().split() == ["BLOCK", str(len(expected))]

    # The shared link reproduces the view.
    other = tab.page.context.new_page()
    other.goto(tab.page.url)
    assert other.locator("tr[data-decision-id]").count() == len(expected)


def test_paginate_with_next_and_first_links(tab: Tab, site: Site) -> None:
    live, _ = site
    expected = [i["decision_id"] for i in api_items(live, domain=CM)]
    tab.page.goto("/?limit=10")
    seen = [d for d, _, _ in rows(tab)]
    while tab.page.locator("a[rel=next]").count():
        with tab.page.expect_navigation():
            tab.page.locator("a[rel=next]").click()
        assert "cursor" in query(tab)
        seen += [d for d, _, _ in rows(tab)]
    assert seen == expected
    with tab.page.expect_navigation():
        tab.page.get_by_role("link", name="« First page").click()
    assert "cursor" not in query(tab)
    assert [d for d, _, _ in rows(tab)] == expected[:10]


def test_a_block_decision_names_its_policy_team_and_values_on_the_page(tab: Tab, site: Site) -> None:
    tab.page.goto("/?verdict=BLOCK")
    first = tab.page.locator("tr[data-verdict=BLOCK]").first
    with tab.page.expect_navigation():
        first.locator("a").first.click()
    verdict = tab.page.locator("[data-section=verdict]").first
    # Visible without opening any raw JSON.
    assert verdict.is_visible()
    assert verdict.locator("[data-field=winning-policy]").inner_text() == "policy-block-unbackedup-drops-v1"
    assert verdict.locator("[data-field=authority-team]").inner_text() == "dba-team"
    decisive = verdict.locator("tr[data-signal=backup_first]")
    assert decisive.is_visible()
    assert decisive.locator("td.actual").inner_text() == "false"
    assert "holds" in decisive.inner_text()
    # The candidate that did not match shows the condition that failed and its actual value.
    allow = tab.page.locator("article[data-policy-id=policy-allow-low-risk-drops-v1]").first
    failing = allow.locator("tr.fails[data-signal=risk_level]")
    assert failing.is_visible()
    assert failing.locator("td.actual").inner_text() == "critical"
    assert "fails" in failing.inner_text()
    assert "did not match" in allow.inner_text()
    # The raw JSON is there, folded, for whoever wants it.
    raw = tab.page.locator("details.raw").last
    assert not raw.locator("pre").is_visible()
    raw.locator("summary").click()
    assert '"winning_policy_id": "policy-block-unbackedup-drops-v1"' in raw.locator("pre").inner_text()
    raw.locator("summary").click()
    shoot(tab, "decision-block.png")


def test_export_csv_downloads_what_the_api_lists(tab: Tab, site: Site) -> None:
    live, _ = site
    tab.page.goto(f"/?domain={CS}&verdict=PAUSE")
    with tab.page.expect_download() as info:
        tab.page.get_by_role("link", name="CSV").click()
    download = info.value
    assert download.suggested_filename.startswith(f"mandate-decisions-{CS}-")
    path = download.path()
    assert path is not None
    exported = list(csv.DictReader(io.StringIO(Path(path).read_text(encoding="utf-8"))))
    expected = api_items(live, domain=CS, verdict="PAUSE")
    assert [(r["decision_id"], r["stage"], r["verdict"], r["timestamp"]) for r in exported] == [
        (i["decision_id"], i["stage"], i["verdict"], i["timestamp"]) for i in expected
    ]
    assert expected


def test_forms_are_get_and_clicking_through_sends_only_get(tab: Tab, site: Site) -> None:
    _, data = site
    p = tab.page
    p.goto("/")
    p.select_option("select[name=verdict]", "PAUSE")
    with p.expect_navigation():
        p.get_by_role("button", name="Apply filters").click()
    with p.expect_navigation():
        p.locator("tr[data-decision-id] a").first.click()
    for details in p.locator("details > summary").all():
        details.click()
    p.goto(f"/decisions/{data.multi_stage}")
    with p.expect_navigation():
        p.get_by_role("link", name="Scopes", exact=True).click()
    with p.expect_navigation():
        p.get_by_role("button", name="Show").click()
    with p.expect_navigation():
        p.get_by_role("link", name="Specs", exact=True).click()
    for details in p.locator("details > summary").all():
        details.click()
    with p.expect_navigation():
        p.get_by_role("link", name="Migrations", exact=True).click()
    p.go_back()
    p.go_back()
    for path in ("/", "/scopes", "/specs", "/migrations", f"/decisions/{data.block_drop}", "/?verdict=NOPE"):
        p.goto(path)
        forms = p.eval_on_selector_all("form", "fs => fs.map(f => f.method)")
        assert all(m == "get" for m in forms), (path, forms)
        buttons = p.eval_on_selector_all(
            "button, input[type=submit], input[type=image]",
            "bs => bs.map(b => [b.type, b.formMethod || '', b.getAttribute('formmethod')])",
        )
        assert all(fm in ("", "get") and attr is None for _, fm, attr in buttons), (path, buttons)
    assert tab.requests and {m for m, _ in tab.requests} == {"GET"}, sorted({m for m, _ in tab.requests})


def test_the_governance_pages_render(tab: Tab) -> None:
    tab.page.goto("/scopes")
    assert tab.page.locator("tr[data-scope-id]").count() == 3
    assert tab.page.locator("tr[data-scope-id='config-management.prod.db-admin-tool']").inner_text().count("dba-team")
    shoot(tab, "scopes.png")
    tab.page.goto(f"/specs?domain={CS}")
    assert tab.page.locator("section[data-spec-id=spec-refund-v1] tr[data-version]").count() == 2
    tab.page.locator("details.signals summary").last.click()
    shoot(tab, "specs.png")
    tab.page.goto("/migrations")
    assert tab.page.locator("tr[data-version]").count() >= 9
    shoot(tab, "migrations.png")


def test_a_390px_phone_gets_cards_no_sideways_scroll_and_working_filters(phone: Tab, site: Site) -> None:
    p = phone.page
    for path in ("/", f"/decisions/{site[1].block_drop}", "/scopes", "/specs", "/migrations"):
        p.goto(path)
        assert p.evaluate("document.documentElement.scrollWidth") <= 390, path
    p.goto("/?limit=5")
    header = p.locator("table.decisions thead")
    assert header.bounding_box() is None or header.bounding_box()["width"] <= 1  # type: ignore[index]
    card = p.locator("tr[data-decision-id]").first
    box = card.bounding_box()
    assert box is not None and box["width"] <= 390 and box["height"] > 150  # a stacked card, not a table row
    assert p.locator("tr[data-decision-id] td[data-label=Verdict]").first.is_visible()
    p.select_option("select[name=verdict]", "PAUSE")
    p.get_by_role("button", name="Apply filters").scroll_into_view_if_needed()
    with p.expect_navigation():
        p.get_by_role("button", name="Apply filters").click()
    assert {v for _, v, _ in rows(phone)} == {"PAUSE"}
    with p.expect_navigation():
        p.locator("tr[data-decision-id] a").first.click()
    assert p.locator("[data-section=verdict]").first.is_visible()
    assert p.evaluate("document.documentElement.scrollWidth") <= 390
