"""The UI in a real browser (Debian's Chromium through Playwright) on a fresh database with the demo governance and
demo decisions: filter, paginate, read a BLOCK's explanation, export, stay read-only, work on a phone.

They write nothing into the work tree: the screenshots of docs/ui.md come from `scripts/screenshots.py`.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.e2e.conftest import Tab
from tests.e2e.seed import CM, CS, Seeded
from tests.web.conftest import LiveServer

pytestmark = pytest.mark.browser

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


def test_filter_by_domain_and_verdict_through_the_form(tab: Tab, site: Site) -> None:
    live, _ = site
    tab.page.goto("/?limit=12")
    assert {d for _, _, d in rows(tab)} == {CM}

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
        # Log out (it forgets the browser's cookie, nothing stored) is the only POST
        forms = p.eval_on_selector_all("form:not([action='/logout'])", "fs => fs.map(f => f.method)")
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
    tab.page.goto(f"/specs?domain={CS}")
    assert tab.page.locator("section[data-spec-id=spec-refund-v1] tr[data-version]").count() == 2
    tab.page.locator("details.signals summary").last.click()
    tab.page.goto("/migrations")
    assert tab.page.locator("tr[data-version]").count() >= 9


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


# -- issue 21: find any decision fast, see trends, work offline, work on a phone -------------------------------


def axe_violations(tab: Tab) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the current page (axe.min.js from axe-playwright-python)."""
    import axe_playwright_python

    script = Path(axe_playwright_python.__file__).with_name("axe.min.js").read_text(encoding="utf-8")
    tab.page.evaluate(script + ";0")  # through DevTools, so the page's CSP (no inline script) does not apply
    result = tab.page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]][:3]}
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def test_api_docs_render_with_the_network_cut_off(tab: Tab, site: Site) -> None:
    live, _ = site
    outside: list[str] = []

    def only_this_server(route: Any) -> None:
        if route.request.url.startswith(live.url):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    tab.page.route("**/*", only_this_server)
    errors: list[str] = []
    tab.page.on("pageerror", lambda e: errors.append(str(e)))
    tab.page.goto("/docs")
    tab.page.locator("#swagger-ui .info .title").wait_for()
    assert "Mandate" in tab.page.locator("#swagger-ui .info .title").inner_text()
    assert tab.page.locator(".opblock").count() > 5  # the operations are listed
    tab.page.goto("/redoc")
    tab.page.get_by_role("heading", name=re.compile("Mandate")).first.wait_for()
    assert not outside and not errors, (outside, errors)


def test_a_short_id_typed_in_the_search_box_opens_the_decision(tab: Tab, site: Site) -> None:
    _, data = site
    p = tab.page
    p.goto("/")
    p.get_by_label("Decision id").fill(data.block_drop[:8])
    with p.expect_navigation():
        p.get_by_role("button", name="Find").click()
    assert urlsplit(p.url).path == f"/decisions/{data.block_drop}"
    p.goto(f"/decisions/{data.block_drop[:8]}")  # the short id the list and the demo show, in the address bar
    assert urlsplit(p.url).path == f"/decisions/{data.block_drop}"
    assert p.locator("[data-field=winning-policy]").first.inner_text() == "policy-block-unbackedup-drops-v1"


def test_partial_text_and_name_filters_through_the_form(tab: Tab, site: Site) -> None:
    live, _ = site
    p = tab.page
    p.goto(f"/?domain={CS}&limit=500")
    p.get_by_label("Agent contains").fill("chatbot")
    with p.expect_navigation():
        p.get_by_role("button", name="Apply filters").click()
    expected = [i["decision_id"] for i in api_items(live, domain=CS, agent="chatbot-v3")]
    assert [d for d, _, _ in rows(tab)] == expected and expected
    assert query(tab)["agent"] == ["chatbot"]

    p.goto("/?limit=500")
    p.get_by_label("Owning team").fill("dba-team")
    with p.expect_navigation():
        p.get_by_role("button", name="Apply filters").click()
    expected = [i["decision_id"] for i in api_items(live, domain=CM) if i["owning_team"] == "dba-team"]
    assert [d for d, _, _ in rows(tab)] == expected and expected
    assert "owning_team=dba-team" in (p.get_by_role("link", name="CSV").get_attribute("href") or "")


def test_the_reason_is_readable_in_the_list_without_hovering(tab: Tab, phone: Tab, site: Site) -> None:
    live, _ = site
    first = api_items(live, domain=CM)[0]
    for t in (tab, phone):
        t.page.goto("/?limit=5")
        why = t.page.locator("tr[data-decision-id] td[data-field=summary]").first
        assert why.is_visible() and why.inner_text() == first["summary"]
        box = why.bounding_box()
        assert box is not None and box["x"] + box["width"] <= t.page.viewport_size["width"]  # type: ignore[index]


def test_names_on_the_decision_page_lead_to_policy_scope_and_filtered_lists(tab: Tab, site: Site) -> None:
    live, data = site
    p = tab.page
    p.goto(f"/decisions/{data.block_drop}")
    with p.expect_navigation():
        p.locator("a[data-link=policy]").first.click()
    assert urlsplit(p.url).path == "/policies/policy-block-unbackedup-drops-v1"
    assert p.locator("[data-section=versions] tr[data-version]").count() >= 1
    assert p.locator("tr[data-decision-id]").count() >= 1
    p.go_back()
    with p.expect_navigation():
        p.locator("a[data-link=scope]").first.click()
    assert urlsplit(p.url).path == "/scopes/config-management.prod.db-admin-tool"
    assert p.locator("[data-field=owning-team]").inner_text() == "dba-team"
    p.go_back()
    with p.expect_navigation():
        p.locator("a[data-link=team]").first.click()
    expected = [i["decision_id"] for i in api_items(live, domain=CM) if i["owning_team"] == "dba-team"]
    assert [d for d, _, _ in rows(tab)] == expected[:50]


@pytest.mark.parametrize("width", [1440, 390])
def test_the_overview_presets_zoom_and_clickable_bars(browser: Any, site: Site, width: int) -> None:
    from tests.e2e.conftest import open_tab

    live, _ = site
    t = open_tab(browser, live.url, width, 900 if width > 800 else 844, token=live.token)
    try:
        p = t.page
        p.goto("/overview")
        bars = p.locator("svg a.bar")
        assert bars.count() > 1
        assert p.evaluate("document.documentElement.scrollWidth") <= width
        for name in ("policy", "agent", "scope", "owning_team"):
            assert p.locator(f"section[data-breakdown={name}] li").count() >= 1
        with p.expect_navigation():
            p.get_by_role("link", name="7d", exact=True).click()
        assert "range" in query(t) or "since" in query(t)
        with p.expect_navigation():
            p.get_by_role("link", name="all time", exact=True).click()
        # a bar zooms in: its range, fewer bars or one
        with p.expect_navigation():
            p.locator("svg a.bar").nth(1).click(force=True)
        assert "since" in query(t) and "until" in query(t)
        assert p.locator("a[data-link=zoom-out]").count() == 1
        # a breakdown row opens the decisions it counts
        p.goto("/overview")
        with p.expect_navigation():
            p.locator("section[data-breakdown=agent] li a").first.click()
        assert urlsplit(p.url).path == "/" and "agent" in query(t)
        assert t.page.locator("tr[data-decision-id]").count() >= 1
    finally:
        t.page.context.close()


@pytest.mark.parametrize("width", [761, 850, 950])
def test_the_verdict_column_stays_on_screen_between_phone_and_desktop(browser: Any, site: Site, width: int) -> None:
    from tests.e2e.conftest import open_tab

    live, _ = site
    t = open_tab(browser, live.url, width, 900, token=live.token)
    try:
        t.page.goto("/")
        for selector in ("td[data-label=Verdict]", "td[data-field=summary]"):
            box = t.page.locator(f"tr[data-decision-id] {selector}").first.bounding_box()
            assert box is not None and box["x"] + box["width"] <= width, (selector, box)
    finally:
        t.page.context.close()


def test_phone_cards_labels_do_not_overlap_and_scopes_keep_the_team_on_screen(phone: Tab) -> None:
    p = phone.page
    p.goto("/?limit=10")
    overlaps = p.evaluate(
        """() => Array.from(document.querySelectorAll('tr[data-decision-id] td')).filter(td => {
             return td.scrollHeight > td.clientHeight + 1;  // content (label included) spills out of its cell
           }).length"""
    )
    assert overlaps == 0
    p.goto(f"/scopes?domain={CS}")
    team = p.locator("td[data-field=owning-team]").first
    box = team.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390
    words = p.evaluate(  # no selector broken letter by letter: each chip is at least a few characters wide
        "() => Math.min(...Array.from(document.querySelectorAll('.chip')).map(c => c.getBoundingClientRect().width))"
    )
    assert words > 40


def test_conditions_show_their_result_column_on_a_phone(phone: Tab, site: Site) -> None:
    p = phone.page
    p.goto(f"/decisions/{site[1].block_drop}")
    for table in p.locator("table.conditions").all()[:3]:
        cell = table.locator("tbody tr td").last
        box = cell.bounding_box()
        assert box is not None and box["x"] + box["width"] <= 390


def test_a_keyboard_user_skips_to_the_content_with_one_tab(tab: Tab) -> None:
    tab.page.goto("/")
    tab.page.keyboard.press("Tab")
    assert tab.page.evaluate("document.activeElement.textContent") == "Skip to content"
    tab.page.keyboard.press("Enter")
    assert tab.page.evaluate("document.activeElement.id") == "main"


@pytest.mark.parametrize(
    "path",
    ["/", "/overview", "decision", "/scopes", "/specs", "/migrations", "/policies/policy-block-unbackedup-drops-v1"],
)
def test_no_serious_accessibility_violation(tab: Tab, site: Site, path: str) -> None:
    tab.page.goto(f"/decisions/{site[1].block_drop}" if path == "decision" else path)
    assert axe_violations(tab) == []
