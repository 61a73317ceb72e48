"""The read-only UI over plain HTTP, on a real server and database with the demo governance and demo decisions.

Every page renders; filters, pagination, counts and exports agree with the JSON API (the same query functions);
bad input gets a page that says what to fix (never a 500); the UI never accepts anything but GET.
"""

from __future__ import annotations

import csv
import io
import re
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from html.parser import HTMLParser
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import psycopg
import pytest

from mandate.web import ui, ui_decision, ui_decisions, ui_exports, ui_governance
from mandate.web.app import create_app
from tests.conftest import PgServer
from tests.e2e.seed import CM, CS, ORG, Seeded, apply_demo_governance, scratch_database, seeded_server
from tests.web.conftest import LiveServer, bearer, issue_token, serving, start_server

Row = dict[str, Any]
BLOCK_POLICY = "policy-block-unbackedup-drops-v1"


# -- a small DOM for assertions ----------------------------------------------------------------------------------


class Element:
    def __init__(self, tag: str, attrs: dict[str, str | None], parent: Element | None) -> None:
        self.tag, self.attrs, self.parent = tag, attrs, parent
        self.children: list[Element | str] = []

    @property
    def text(self) -> str:
        return " ".join(" ".join((c if isinstance(c, str) else c.text).split()) for c in self.children if c).strip()

    def iter(self) -> Iterator[Element]:
        for child in self.children:
            if isinstance(child, Element):
                yield child
                yield from child.iter()

    def find_all(self, tag: str | None = None, **attrs: str | None) -> list[Element]:
        """Elements with `tag` and every attribute given (`data_x` means `data-x`; None: present at all)."""
        wanted = {name.replace("_", "-"): value for name, value in attrs.items()}
        return [
            e
            for e in self.iter()
            if (tag is None or e.tag == tag)
            and all(n in e.attrs and (v is None or e.attrs[n] == v) for n, v in wanted.items())
        ]

    def find(self, tag: str | None = None, **attrs: str | None) -> Element:
        found = self.find_all(tag, **attrs)
        assert found, f"no <{tag or '*'} {attrs}>"
        return found[0]


class _Builder(HTMLParser):
    VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = self.current = Element("#document", {}, None)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, dict(attrs), self.current)
        self.current.children.append(element)
        if tag not in self.VOID:
            self.current = element

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.current.children.append(Element(tag, dict(attrs), self.current))

    def handle_endtag(self, tag: str) -> None:
        node: Element | None = self.current
        while node is not None and node.tag != tag:
            node = node.parent
        if node is not None and node.parent is not None:
            self.current = node.parent

    def handle_data(self, data: str) -> None:
        self.current.children.append(data)


def dom(response: httpx.Response) -> Element:
    assert response.headers["content-type"].startswith("text/html"), response.headers["content-type"]
    builder = _Builder()
    builder.feed(response.text)
    return builder.root


def listed(page: Element) -> list[tuple[str, str]]:
    """(decision_id, verdict) of every row of the decisions table, in order."""
    return [
        (r.attrs["data-decision-id"] or "", r.attrs["data-verdict"] or "")
        for r in page.find_all("tr", data_decision_id=None)
    ]


def api_items(client: httpx.Client, **params: str) -> list[Row]:
    """Every item of GET /api/decisions for `params`, following next_cursor."""
    items: list[Row] = []
    cursor = None
    while True:
        query = {**params, "limit": "500", **({"cursor": cursor} if cursor else {})}
        body = client.get("/api/decisions", params=query).json()
        items += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            return items


def api_filter(ui_params: dict[str, str]) -> dict[str, str]:
    """The API parameters for a UI filter: the UI's default domain is the first one, `*` is no domain filter."""
    params = {"domain": CM, **ui_params}
    return {k: v for k, v in params.items() if not (k == "domain" and v == "*")}


def tag_of(article: Element) -> str:
    return next(s.text for s in article.find_all("span") if "tag" in (s.attrs.get("class") or "").split())


# -- fixtures ----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def seeded(pg: PgServer, templates: Callable[[int | None], str]) -> Iterator[tuple[LiveServer, Seeded]]:
    """One server for the read-only tests of this module: demo governance, 62 decision stages."""
    with scratch_database(pg, templates(None)) as url, seeded_server(url) as pair:
        yield pair


@pytest.fixture
def live_ui(seeded: tuple[LiveServer, Seeded]) -> LiveServer:
    return seeded[0]


@pytest.fixture
def data(seeded: tuple[LiveServer, Seeded]) -> Seeded:
    return seeded[1]


@pytest.fixture
def bare(db_url: str) -> Iterator[LiveServer]:
    """A server on a fresh database of its own (tests that add governance or decisions)."""
    with serving(db_url, governance=False, organization_id=ORG, timeout=30) as server:
        yield server


# -- every page --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/scopes", "/specs", "/migrations", f"/?domain={CS}", "/?domain=*"])
def test_every_page_renders_as_html_with_strict_security_headers(live_ui: LiveServer, path: str) -> None:
    r = live_ui.client.get(path)
    assert r.status_code == 200, r.text
    assert "script-src 'self'" in r.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    assert r.headers["x-content-type-options"] == "nosniff"
    page = dom(r)
    assert page.find("title").text.endswith("· Mandate")
    assert page.find("a", aria_current="page")


def test_the_stylesheet_and_script_are_served(live_ui: LiveServer) -> None:
    assert live_ui.client.get("/static/mandate.css").headers["content-type"].startswith("text/css")
    assert live_ui.client.get("/static/mandate.js").status_code == 200
    assert live_ui.client.get("/static/favicon.svg").status_code == 200


def test_the_decision_page_of_every_listed_decision_renders(live_ui: LiveServer) -> None:
    for item in api_items(live_ui.client):
        r = live_ui.client.get(f"/decisions/{item['decision_id']}")
        assert r.status_code == 200, (item["decision_id"], r.text[:500])


# -- decisions list: domain boundary, filters, pagination, counts, chart -----------------------------------------


def test_the_list_shows_the_first_domain_by_default_and_never_another(live_ui: LiveServer, data: Seeded) -> None:
    page = dom(live_ui.client.get("/"))
    rows = page.find_all("tr", data_decision_id=None)
    assert {r.attrs["data-domain"] for r in rows} == {CM}
    assert page.find("select", name="domain").find("option", selected=None).attrs["value"] == CM
    cs = dom(live_ui.client.get("/", params={"domain": CS, "limit": "500"}))
    assert {r.attrs["data-domain"] for r in cs.find_all("tr", data_decision_id=None)} == {CS}
    assert len(cs.find_all("tr", data_decision_id=None)) == data.by_domain[CS]


def test_all_domains_is_an_explicit_choice_that_adds_a_domain_column(live_ui: LiveServer, data: Seeded) -> None:
    page = dom(live_ui.client.get("/", params={"domain": "*", "limit": "500"}))
    assert {r.attrs["data-domain"] for r in page.find_all("tr", data_decision_id=None)} == {CM, CS}
    assert "Domain" in [th.text for th in page.find("table").find_all("th")]
    assert len(page.find_all("tr", data_decision_id=None)) == data.total


FILTERS: list[dict[str, str]] = [
    {"verdict": "BLOCK"},
    {"verdict": "PAUSE", "domain": CS},
    {"intent": "database.drop_table"},
    {"stage": "executed"},
    {"agent": "pre-commit-agent"},
    {"service": "chat-api", "verdict": "ALLOW", "domain": CS},
    {"target": "production.users"},
    {"actor": "observe-agent", "stage": "executed"},
    {"domain": "*", "verdict": "BLOCK"},
]


@pytest.mark.parametrize("params", FILTERS, ids=lambda p: "&".join(f"{k}={v}" for k, v in p.items()))
def test_filters_list_exactly_what_the_api_lists(live_ui: LiveServer, params: dict[str, str]) -> None:
    page = dom(live_ui.client.get("/", params={**params, "limit": "500"}))
    api_params = api_filter(params)
    expected = [(i["decision_id"], i["verdict"]) for i in api_items(live_ui.client, **api_params)]
    assert expected, "the filter must match something"
    assert listed(page) == expected


def test_the_time_range_is_read_in_the_chosen_time_zone(live_ui: LiveServer) -> None:
    # 07:00 in Paris (UTC+1 in November) is 06:00 UTC.
    paris = {"since": "2026-11-21T07:00", "until": "2026-11-22T07:00", "tz": "Europe/Paris", "limit": "500"}
    page = dom(live_ui.client.get("/", params=paris))
    utc = api_items(live_ui.client, domain=CM, since="2026-11-21T06:00:00Z", until="2026-11-22T06:00:00Z")
    assert listed(page) == [(i["decision_id"], i["verdict"]) for i in utc]
    assert 0 < len(utc) < len(api_items(live_ui.client, domain=CM))
    first = page.find("tr", data_decision_id=None).find("time")
    newest = datetime.fromisoformat(utc[0]["timestamp"])
    assert first.attrs["datetime"] == newest.isoformat()  # the instant, in UTC, in the attribute...
    assert first.text == newest.astimezone(ZoneInfo("Europe/Paris")).strftime(
        "%Y-%m-%d %H:%M:%S"
    )  # ...Paris time shown
    assert first.text != newest.strftime("%Y-%m-%d %H:%M:%S")
    assert page.find("input", name="since").attrs["value"] == "2026-11-21T07:00"
    assert "Time (Europe/Paris)" in page.find("table").text


def test_an_until_before_since_is_refused_with_a_sentence(live_ui: LiveServer) -> None:
    r = live_ui.client.get("/", params={"since": "2026-11-22T00:00", "until": "2026-11-21T00:00"})
    assert r.status_code == 400
    assert "until must be later than since" in r.text


def test_keyset_pages_visit_every_row_once_with_next_and_first_links(live_ui: LiveServer) -> None:
    expected = [(i["decision_id"], i["verdict"]) for i in api_items(live_ui.client, domain=CM)]
    seen: list[tuple[str, str]] = []
    url: str | None = "/?limit=7"
    pages = 0
    while url:
        page = dom(live_ui.client.get(url))
        seen += listed(page)
        pages += 1
        nxt = page.find_all("a", rel="next")
        if pages > 1:
            first = next(a for a in page.find_all("a") if "First page" in a.text)
            assert "cursor=" not in (first.attrs["href"] or "")
        url = nxt[0].attrs["href"] if nxt else None
        if url:
            assert "cursor=" in url and "limit=7" in url
    assert seen == expected
    assert pages == -(-len(expected) // 7)


def test_counts_per_verdict_cover_the_filter_whatever_the_verdict_filter(live_ui: LiveServer) -> None:
    items = api_items(live_ui.client, domain=CM)
    for params in ({}, {"verdict": "BLOCK"}):
        page = dom(live_ui.client.get("/", params=params))
        counts = {a.attrs["data-verdict"]: int(a.find("strong").text) for a in page.find_all("a", data_verdict=None)}
        assert counts == {v: sum(1 for i in items if i["verdict"] == v) for v in ui.VERDICTS}
        total = next(a for a in page.find_all("a") if "All verdicts" in a.text)
        assert int(total.find("strong").text) == len(items)


def test_the_chart_draws_every_decision_of_the_filter_in_buckets(live_ui: LiveServer) -> None:
    page = dom(live_ui.client.get("/", params={"domain": "*"}))
    svg = page.find("svg", role="group")  # a group of links (one per bar), described by its title
    titles = [g.find("title").text for g in svg.find_all("a", **{"class": "bar"})]
    assert titles and svg.find("title").text == "Verdicts per hour"
    totals = [int(t.split(": ")[1].split(" ")[0]) for t in titles]
    assert sum(totals) == len(api_items(live_ui.client))
    assert any("BLOCK" in t for t in titles) and any(" 0 decisions" in t for t in titles)  # empty hours too


def test_a_page_with_no_matching_row_says_so_and_offers_to_clear(live_ui: LiveServer) -> None:
    page = dom(live_ui.client.get("/", params={"intent": "no.such.intent"}))
    assert not page.find_all("tr", data_decision_id=None)
    assert "No decisions match these filters" in page.text
    assert any("Clear all filters" in a.text for a in page.find_all("a"))


# -- bad input: a sentence and a 400, never a 500 ----------------------------------------------------------------


BAD = [
    ({"verdict": "MAYBE"}, "is not one of BLOCK, PAUSE, ALLOW, OBSERVE"),
    ({"stage": "later"}, "is not one of proposed, pre_commit, executed"),
    ({"since": "yesterday"}, "is not a date and time"),
    ({"until": "2026-13-45T99:00"}, "is not a date and time"),
    ({"tz": "Mars/Olympus_Mons"}, "time zone 'Mars/Olympus_Mons' is unknown"),
    ({"tz": "../../etc/passwd"}, "is unknown"),
    ({"limit": "0"}, "limit must be a number from 1 to 500"),
    ({"limit": "many"}, "limit must be a number from 1 to 500"),
    ({"cursor": "not-a-cursor"}, "start again from the first page"),
    ({"domain": "payroll"}, "domain 'payroll' does not exist here"),
    ({"domain": "Not A Slug"}, "does not exist here"),
    ({"organization_id": "acme"}, "is not a UUID"),
    ({"organization_id": str(uuid.UUID(int=1))}, "does not exist"),
    ({"intent": "x" * 3000}, "longer than 2048 characters"),
]


@pytest.mark.parametrize(("params", "message"), BAD, ids=[next(iter(p)) + "-" + str(i) for i, (p, _) in enumerate(BAD)])
def test_bad_filter_values_get_a_friendly_400_page(live_ui: LiveServer, params: dict[str, str], message: str) -> None:
    r = live_ui.client.get("/", params=params)
    assert r.status_code == 400, r.text[:300]
    alert = dom(r).find("section", role="alert")
    assert message in alert.text
    export = live_ui.client.get("/export.json", params=params)
    if next(iter(params)) in ("limit", "cursor"):  # an export holds every row: paging does not apply
        assert export.status_code == 200
    else:
        assert export.status_code == 400
        assert message in export.json()["error"]["problems"][0]["message"]


@pytest.mark.parametrize("path", ["/scopes", "/specs"])
def test_governance_pages_refuse_an_unknown_domain_politely(live_ui: LiveServer, path: str) -> None:
    r = live_ui.client.get(path, params={"domain": "payroll"})
    assert r.status_code == 400
    assert "choose one of: config-management, customer-support" in r.text


def test_unknown_query_parameters_are_ignored(live_ui: LiveServer) -> None:
    assert live_ui.client.get("/", params={"utm_source": "mail"}).status_code == 200


# -- decision detail ---------------------------------------------------------------------------------------------


def test_a_block_decision_shows_the_blocking_policy_the_team_and_the_values_without_raw_json(
    live_ui: LiveServer, data: Seeded
) -> None:
    page = dom(live_ui.client.get(f"/decisions/{data.block_drop}"))
    verdict = page.find(data_section="verdict")
    assert verdict.find(data_field="winning-policy").text == BLOCK_POLICY
    assert verdict.find(data_field="authority-team").text == "dba-team"
    condition = verdict.find("tr", data_signal="backup_first")
    cells = [td.text for td in condition.find_all("td")]
    assert cells[:4] == ["backup_first", "==", "false", "false"] and "holds" in cells[4]
    assert "most severe verdict wins" in verdict.find(data_field="why").text
    # Not inside a <details>: visible without clicking through raw JSON.
    node: Element | None = verdict
    while node is not None:
        assert node.tag != "details"
        node = node.parent
    head = page.find("dl", **{"class": "facts"})
    assert "config-management.prod.db-admin-tool" in head.text and "dba-team" in head.text
    assert "spec-pre-commit-database-drop-table-v1@1" in head.text


def test_every_candidate_policy_is_listed_with_each_condition(live_ui: LiveServer, data: Seeded) -> None:
    stored = live_ui.client.get(f"/api/decisions/{data.block_drop}/verdict").json()["explanation"]
    page = dom(live_ui.client.get(f"/decisions/{data.block_drop}"))
    articles = {a.attrs["data-policy-id"]: a for a in page.find_all("article", data_policy_id=None)}
    assert set(articles) == {p["policy_id"] for p in stored["policies"]}
    for policy in stored["policies"]:
        rows = articles[policy["policy_id"]].find_all("tr", data_signal=None)
        assert [r.attrs["data-signal"] for r in rows] == [c["signal"] for c in policy["conditions"]]
        if policy["policy_id"] == stored["winning_policy_id"]:
            expected = "decided the verdict"
        elif policy["matched"]:
            expected = "matched, outranked"
        else:
            expected = "did not match"
        assert tag_of(articles[policy["policy_id"]]) == expected


def test_a_pause_decision_shows_what_it_requires_and_when_it_expires(live_ui: LiveServer, data: Seeded) -> None:
    pause_id = next(i for i in data.ids["PAUSE"] if i != data.multi_stage)
    stored = live_ui.client.get(f"/api/decisions/{pause_id}/verdict").json()
    page = dom(live_ui.client.get(f"/decisions/{pause_id}", params={"tz": "Asia/Tokyo"}))
    pause = page.find(data_section="pause")
    assert [c.text for c in pause.find_all("span", **{"class": "chip"})] == stored["pause_requires"]
    expires = pause.find("time")
    assert expires.attrs["datetime"] == stored["explanation"]["pause"]["expires_at"]
    assert "Expires (Asia/Tokyo)" in pause.text


def test_a_governance_gap_says_why_nothing_was_evaluated(live_ui: LiveServer, data: Seeded) -> None:
    gap = next(i["decision_id"] for i in api_items(live_ui.client, domain=CM, intent="dns.update"))
    page = dom(live_ui.client.get(f"/decisions/{gap}"))
    why = page.find(data_field="why").text
    assert "governance gap" in why and "no active spec" in why
    assert "No active spec governed this intent" in page.find(data_section="spec").text


def test_a_default_verdict_says_no_candidate_matched(live_ui: LiveServer) -> None:
    allow = next(i for i in api_items(live_ui.client, domain=CS, verdict="ALLOW"))
    page = dom(live_ui.client.get(f"/decisions/{allow['decision_id']}"))
    why = page.find(data_field="why").text
    assert "none of the 2 candidate policies matched, so the spec's default verdict ALLOW applies" in why
    assert not page.find(data_section="verdict").find_all(data_field="winning-policy")


def test_values_read_from_free_text_show_their_provenance(live_ui: LiveServer) -> None:
    block = next(i for i in api_items(live_ui.client, domain=CS, verdict="BLOCK"))
    stored = live_ui.client.get(f"/api/decisions/{block['decision_id']}/verdict").json()["explanation"]["observe"]
    page = dom(live_ui.client.get(f"/decisions/{block['decision_id']}"))
    observed = page.find(data_section="observe")
    signals = [r.find("td").text for r in observed.find("tbody").find_all("tr")]
    assert signals == [p["signal"] for p in stored["provenance"]] and "flight_status" in signals
    assert "The text itself is not stored" in observed.text


def test_the_spec_and_policy_panels_show_the_stored_governance(live_ui: LiveServer, data: Seeded) -> None:
    page = dom(live_ui.client.get(f"/decisions/{data.block_drop}"))
    spec = page.find(data_section="spec")
    assert "risk_level" in spec.text and "low, medium, high, critical" in spec.text
    assert "dba-approval" in spec.text and "compliance-review" in spec.text and "120 min" in spec.text
    policies = page.find(data_section="policies")
    assert "backup_first == false" in policies.text and "risk_level == critical" in policies.text
    assert "policy-pause-large-files-v1" not in policies.text  # another spec's policy


def test_a_multi_stage_decision_shows_each_stage_and_the_timeline_in_order(live_ui: LiveServer, data: Seeded) -> None:
    page = dom(live_ui.client.get(f"/decisions/{data.multi_stage}"))
    assert [s.attrs["id"] for s in page.find_all("section", **{"class": "stage"})] == [
        "stage-pre_commit",
        "stage-proposed",
    ]
    entries = page.find("ol", **{"class": "timeline"}).find_all("li")
    api = live_ui.client.get(f"/api/decisions/{data.multi_stage}/timeline").json()["entries"]
    assert [e.find("strong").text for e in entries] == [e["summary"] for e in api]
    assert entries[-1].find("details") and "held for review" in entries[-1].text


def test_a_decision_of_another_domain_is_not_found_there(live_ui: LiveServer, data: Seeded) -> None:
    cs_block = next(i["decision_id"] for i in api_items(live_ui.client, domain=CS, verdict="BLOCK"))
    assert live_ui.client.get(f"/decisions/{cs_block}", params={"domain": CS}).status_code == 200
    r = live_ui.client.get(f"/decisions/{cs_block}", params={"domain": CM})
    assert r.status_code == 404
    assert f"does not exist in domain {CM}" in r.text


def test_an_unknown_decision_is_a_404_page_that_says_what_to_do(live_ui: LiveServer) -> None:
    r = live_ui.client.get(f"/decisions/{uuid.uuid4()}")
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")
    assert "does not exist" in r.text and "decisions page" in r.text


def test_a_malformed_decision_id_is_a_404_page(live_ui: LiveServer) -> None:
    r = live_ui.client.get("/decisions/drop-table-42")
    assert r.status_code == 404
    assert "is not a decision id" in r.text and "UUIDs" in r.text


def test_list_links_open_the_decision_in_its_own_domain_and_time_zone(live_ui: LiveServer) -> None:
    page = dom(live_ui.client.get("/", params={"domain": "*", "tz": "Europe/Paris"}))
    for row in page.find_all("tr", data_decision_id=None)[:5]:
        href = row.find("a").attrs["href"] or ""
        assert f"domain={row.attrs['data-domain']}" in href and "tz=Europe%2FParis" in href
        assert live_ui.client.get(href).status_code == 200


# -- governance pages --------------------------------------------------------------------------------------------


def test_the_scopes_page_lists_owning_teams(live_ui: LiveServer) -> None:
    page = dom(live_ui.client.get("/scopes"))
    rows = {r.attrs["data-scope-id"]: r for r in page.find_all("tr", data_scope_id=None)}
    assert set(rows) == {
        s["scope_id"] for s in live_ui.client.get("/api/scopes", params={"domain": CM}).json()["items"]
    }
    assert "dba-team" in rows["config-management.prod.db-admin-tool"].text


def test_the_specs_page_lists_every_version_with_its_status(live_ui: LiveServer) -> None:
    page = dom(live_ui.client.get("/specs", params={"domain": CS}))
    spec = page.find("section", data_spec_id="spec-refund-v1")
    versions = {r.attrs["data-version"]: r.text for r in spec.find_all("tr", data_version=None)}
    assert "deprecated" in versions["1.0.0"] and "active" in versions["1.1.0"]
    assert "Status history" in spec.text


def test_the_migrations_page_lists_the_log(live_ui: LiveServer) -> None:
    page = dom(live_ui.client.get("/migrations"))
    rows = page.find_all("tr", data_version=None)
    with psycopg.connect(live_ui.database_url) as conn:
        log = conn.execute(
            "SELECT migration_version, checksum, applied_by FROM mandate.migration_log ORDER BY 1"
        ).fetchall()
    assert [int(r.attrs["data-version"] or 0) for r in rows] == [v for v, _, _ in log]
    for row, (_, checksum, applied_by) in zip(rows, log, strict=True):
        assert row.find("td", **{"class": "mono small checksum"}).attrs["title"] == checksum
        assert applied_by in row.text


# -- exports -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("params", [{}, {"verdict": "PAUSE"}, {"domain": "*"}, {"domain": CS, "stage": "pre_commit"}])
def test_the_json_export_holds_exactly_the_api_items(live_ui: LiveServer, params: dict[str, str]) -> None:
    r = live_ui.client.get("/export.json", params=params)
    assert r.status_code == 200
    assert r.headers["content-disposition"].startswith('attachment; filename="mandate-decisions-')
    body = r.json()
    expected = api_items(live_ui.client, **api_filter(params))
    assert body["items"] == expected and body["count"] == len(expected)
    assert body["filter"]["organization_id"] == ORG


def test_the_csv_export_holds_the_api_items_column_by_column(live_ui: LiveServer) -> None:
    r = live_ui.client.get("/export.csv", params={"domain": "*"})
    assert r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    expected = api_items(live_ui.client)
    assert len(rows) == len(expected)
    for row, item in zip(rows, expected, strict=True):
        assert row["decision_id"] == item["decision_id"] and row["timestamp"] == item["timestamp"]
        assert row["verdict"] == item["verdict"] and row["summary"] == (item["summary"] or "")
        assert row["agent"] == item["attribution"].get("agent", "")
        assert row["matched_policy_ids"].split(";") == (item["matched_policy_ids"] or [""])
        assert row["snapshot_version"] == ("" if item["snapshot_version"] is None else str(item["snapshot_version"]))


def test_the_export_links_carry_the_current_filter(live_ui: LiveServer) -> None:
    page = dom(live_ui.client.get("/", params={"verdict": "BLOCK", "tz": "Asia/Tokyo", "limit": "5"}))
    hrefs = {a.text: a.attrs["href"] or "" for a in page.find("p", **{"class": "exports"}).find_all("a")}
    for href in hrefs.values():
        assert "verdict=BLOCK" in href and f"domain={CM}" in href and "cursor" not in href
    assert set(hrefs) == {"CSV", "JSON"}


# -- read-only ---------------------------------------------------------------------------------------------------


def test_no_ui_route_accepts_anything_but_get() -> None:
    app = create_app("postgresql://unused@127.0.0.1:1/unused")
    pages = (ui_decisions, ui_decision, ui_exports, ui_governance)
    ui_paths = {route.path for m in pages for route in m.router.routes}  # type: ignore[attr-defined]  # APIRoute
    assert ui_paths == {
        "/",
        "/decisions/{decision_id}",
        "/scopes",
        "/specs",
        "/migrations",
        "/export.csv",
        "/export.json",
    }
    for route in app.routes:
        if getattr(route, "path", None) in ui_paths:
            assert set(route.methods) <= {"GET", "HEAD"}, route  # type: ignore[attr-defined]


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_writing_methods_are_refused_on_ui_paths(live_ui: LiveServer, data: Seeded, method: str) -> None:
    for path in ("/", f"/decisions/{data.block_drop}", "/scopes", "/export.csv"):
        assert live_ui.client.request(method, path).status_code == 405


@pytest.mark.parametrize("path", ["/", "/scopes", "/specs", "/migrations", "decision"])
def test_every_form_is_a_get_form_and_no_button_posts(live_ui: LiveServer, data: Seeded, path: str) -> None:
    page = dom(live_ui.client.get(f"/decisions/{data.block_drop}" if path == "decision" else path))
    for form in page.find_all("form"):  # Log out (it forgets the browser's cookie, nothing stored) is the only POST
        assert (form.attrs.get("method") or "get").lower() == "get" or form.attrs.get("action") == "/logout"
    for button in page.find_all("button"):
        assert "formmethod" not in button.attrs and "formaction" not in button.attrs


# -- empty states and other organizations ------------------------------------------------------------------------


def test_without_governance_every_page_says_how_to_start(bare: LiveServer) -> None:
    for path in ("/", "/scopes", "/specs"):
        r = bare.client.get(path)
        assert r.status_code == 200 and "No organization exists yet" in r.text and "mandate apply --demo" in r.text
    assert bare.client.get("/migrations").status_code == 200


def test_without_decisions_the_list_shows_a_curl_example_for_this_domain(db_url: str) -> None:
    apply_demo_governance(db_url)
    server, thread, url = start_server(db_url)
    try:
        with httpx.Client(base_url=url, headers=bearer(issue_token(db_url, organization_id=ORG))) as client:
            page = dom(client.get("/", params={"domain": CS}))
    finally:
        server.should_exit = True
        thread.join(timeout=15)
    empty = page.find("section", **{"class": "empty"})
    assert "No decisions in customer-support yet" in empty.text
    example = empty.find("pre").text
    assert f"curl -s -X POST {url}/api/decisions" in example and ORG in example and f'"domain": "{CS}"' in example
    assert "mandate demo" in empty.text


def test_with_several_organizations_one_must_be_chosen(db_url: str) -> None:
    apply_demo_governance(db_url)
    other = uuid.uuid4()
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("INSERT INTO mandate.organizations (organization_id, name) VALUES (%s, 'zz-other')", [other])
    server, thread, url = start_server(db_url, auth=False)  # a token fixes the organization: no choice to make
    try:
        with httpx.Client(base_url=url) as client:
            page = dom(client.get("/"))
            assert "Choose an organization" in page.text and not page.find_all("tr", data_decision_id=None)
            options = page.find("select", name="organization_id").find_all("option")
            assert [o.text for o in options] == ["Choose an organization…", "example-org", "zz-other"]
            chosen = client.get("/", params={"organization_id": ORG})
            assert chosen.status_code == 200 and "No decisions in config-management yet" in chosen.text
            assert client.get("/export.json").status_code == 400
    finally:
        server.should_exit = True
        thread.join(timeout=15)


def test_the_scope_tree_nests_a_scope_under_its_most_specific_ancestor(db_url: str) -> None:
    apply_demo_governance(db_url)
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            """INSERT INTO mandate.scopes (scope_id, organization_id, domain, environment, owning_team)
               VALUES ('config-management.prod', %s, %s, 'production', 'platform-team'),
                      ('config-management.all', %s, %s, NULL, 'governance-office')""",
            [ORG, CM, ORG, CM],
        )
    server, thread, url = start_server(db_url)
    try:
        with httpx.Client(base_url=url, headers=bearer(issue_token(db_url, organization_id=ORG))) as client:
            page = dom(client.get("/scopes"))
    finally:
        server.should_exit = True
        thread.join(timeout=15)
    rows = [(r.attrs["data-scope-id"], r.attrs["data-depth"]) for r in page.find_all("tr", data_scope_id=None)]
    assert rows == [
        ("config-management.all", "0"),
        ("config-management.prod", "1"),
        ("config-management.prod.audit-logger", "2"),
        ("config-management.prod.config-writer", "2"),
        ("config-management.prod.db-admin-tool", "2"),
    ]


def test_stored_text_is_escaped_never_executed(db_url: str) -> None:
    apply_demo_governance(db_url)
    server, thread, url = start_server(db_url)
    try:
        with httpx.Client(base_url=url, headers=bearer(issue_token(db_url, organization_id=ORG))) as client:
            r = client.post(
                "/api/decisions",
                json={
                    "organization_id": ORG,
                    "domain": CM,
                    "intent": "<img src=x onerror=alert(1)>",
                    "stage": "proposed",
                    "actor": "agent",
                    "target": "<script>alert('t')</script>",
                },
            )
            assert r.status_code == 201, r.text
            listing = client.get("/").text
            detail = client.get(f"/decisions/{r.json()['decision_id']}").text
    finally:
        server.should_exit = True
        thread.join(timeout=15)
    for html in (listing, detail):
        assert "<script>alert" not in html and "<img src=x" not in html
        assert "&lt;script&gt;alert(" in html


# -- finding decisions: ids, partial text, names (issue 21) ------------------------------------------------------


def test_an_eight_character_id_opens_the_decision(live_ui: LiveServer, data: Seeded) -> None:
    r = live_ui.client.get(f"/decisions/{data.block_drop[:8]}", follow_redirects=False)
    assert r.status_code == 307
    assert r.headers["location"].startswith(f"/decisions/{data.block_drop}?")
    page = dom(live_ui.client.get(r.headers["location"]))
    assert page.find("a", data_field="winning-policy").text == BLOCK_POLICY


def test_a_prefix_that_matches_nothing_is_a_404_page_and_a_short_one_is_refused(live_ui: LiveServer) -> None:
    r = live_ui.client.get("/decisions/ffffff0f")
    assert r.status_code == 404 and "No decision id starts with 'ffffff0f'" in dom(r).text
    r = live_ui.client.get("/decisions/abc")  # fewer than 6 hex digits
    assert r.status_code == 404 and "6 or more characters" in dom(r).text
    r = live_ui.client.get("/decisions/not-hex!")
    assert r.status_code == 404


def test_the_id_search_box_redirects_to_the_one_decision(live_ui: LiveServer, data: Seeded) -> None:
    r = live_ui.client.get("/", params={"id": data.block_drop[:10].upper()}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith(f"/decisions/{data.block_drop}")
    r = live_ui.client.get("/", params={"id": "12"})
    assert r.status_code == 400 and "type its first 6 or more hex digits" in dom(r).text


def test_an_ambiguous_prefix_lists_every_match(db_url: str) -> None:
    apply_demo_governance(db_url)
    server, thread, url = start_server(db_url)
    ids = [uuid.UUID(f"abcdef{n:02x}-0000-4000-8000-000000000000") for n in range(3)]
    try:
        with httpx.Client(base_url=url, headers=bearer(issue_token(db_url, organization_id=ORG))) as client:
            for key in ids:
                r = client.post(
                    "/api/decisions",
                    json={
                        "decision_id": str(key),
                        "organization_id": ORG,
                        "domain": CM,
                        "intent": "config.update",
                        "stage": "executed",
                        "actor": "a",
                        "target": "t",
                        "context": {"key": "k", "old_value": "1", "new_value": "2"},
                        "scope": {"service": "audit-logger", "agent": "observe-agent", "environment": "production"},
                    },
                )
                assert r.status_code in (200, 201), r.text
            page = dom(client.get("/decisions/abcdef"))
            single = client.get(f"/decisions/{str(ids[1])[:8]}", follow_redirects=False)
    finally:
        server.should_exit = True
        thread.join(timeout=15)
    links = [a.attrs["href"] or "" for a in page.find("ul", **{"class": "plain matches"}).find_all("a")]
    assert [h.split("?")[0] for h in links] == [f"/decisions/{k}" for k in ids]
    assert single.status_code == 307


def test_text_filters_find_part_of_a_value_in_any_case(live_ui: LiveServer) -> None:
    exact = api_items(live_ui.client, domain=CS, agent="chatbot-v3")
    assert exact
    for typed in ("chatbot", "CHATBOT-V", "bot-v3"):
        page = dom(live_ui.client.get("/", params={"domain": CS, "agent": typed, "limit": "500"}))
        assert listed(page) == [(i["decision_id"], i["verdict"]) for i in exact], typed
    # LIKE's own wildcards are taken literally
    assert not listed(dom(live_ui.client.get("/", params={"domain": CS, "agent": "%"})))


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("policy_id", BLOCK_POLICY),
        ("owning_team", "dba-team"),
        ("scope_id", "config-management.prod.db-admin-tool"),
        ("spec_id", "spec-pre-commit-database-drop-table-v1"),
    ],
)
def test_name_filters_list_exactly_the_matching_decisions(live_ui: LiveServer, name: str, value: str) -> None:
    everything = api_items(live_ui.client, domain=CM)
    if name == "policy_id":
        expected = [i for i in everything if value in (i["matched_policy_ids"] or [])]
    else:
        expected = [i for i in everything if i[name] == value]
    assert expected, "the demo data has such decisions"
    r = live_ui.client.get("/", params={name: value, "limit": "500"})
    page = dom(r)
    assert listed(page) == [(i["decision_id"], i["verdict"]) for i in expected]
    assert page.find("input", name=name).attrs["value"] == value  # the form shows it, so the URL holds it
    exported = live_ui.client.get("/export.json", params={name: value}).json()
    assert [i["decision_id"] for i in exported["items"]] == [i["decision_id"] for i in expected]
    export_link = page.find("a", download=None).attrs["href"] or ""
    assert f"{name}=" in export_link


def test_the_list_shows_each_reason_as_text(live_ui: LiveServer) -> None:
    items = api_items(live_ui.client, domain=CM)[:50]
    page = dom(live_ui.client.get("/"))
    reasons = [td.text for td in page.find_all("td", data_field="summary")]
    assert reasons == [i["summary"] for i in items]
    assert all(reasons)


def test_previous_page_goes_back_to_exactly_the_page_before(live_ui: LiveServer) -> None:
    expected = [i["decision_id"] for i in api_items(live_ui.client, domain=CM)]
    first = dom(live_ui.client.get("/", params={"limit": "7"}))
    assert not first.find_all("a", rel="prev")
    second = dom(live_ui.client.get(first.find("a", rel="next").attrs["href"] or ""))
    third = dom(live_ui.client.get(second.find("a", rel="next").attrs["href"] or ""))
    assert [d for d, _ in listed(third)] == expected[14:21]
    back = dom(live_ui.client.get(third.find("a", rel="prev").attrs["href"] or ""))
    assert [d for d, _ in listed(back)] == expected[7:14]
    back = dom(live_ui.client.get(back.find("a", rel="prev").attrs["href"] or ""))
    assert [d for d, _ in listed(back)] == expected[:7]
    assert not back.find_all("a", rel="prev")


def test_names_on_the_decision_page_are_links_that_resolve(live_ui: LiveServer, data: Seeded) -> None:
    page = dom(live_ui.client.get(f"/decisions/{data.block_drop}"))
    for kind in ("spec", "scope", "team", "snapshot", "policy"):
        href = page.find("a", data_link=kind).attrs["href"] or ""
        r = live_ui.client.get(href.split("#")[0])
        assert r.status_code == 200, (kind, href)


def test_the_policy_page_shows_its_versions_a_diff_and_its_decisions(live_ui: LiveServer) -> None:
    r = live_ui.client.get(f"/policies/{BLOCK_POLICY}")
    page = dom(r)
    assert r.status_code == 200
    assert page.find(data_section="versions").find_all("tr", data_version=None)
    assert page.find(data_section="diff").find("pre").text  # first stored: every line is an addition
    expected = [i for i in api_items(live_ui.client, domain=CM) if BLOCK_POLICY in (i["matched_policy_ids"] or [])]
    assert [d for d, _ in listed(page)] == [i["decision_id"] for i in expected][:20]
    assert live_ui.client.get("/policies/no-such-policy").status_code == 404


def test_the_scope_page_shows_its_team_policies_and_decisions(live_ui: LiveServer) -> None:
    scope = "config-management.prod.db-admin-tool"
    page = dom(live_ui.client.get(f"/scopes/{scope}"))
    assert page.find(data_field="owning-team").text == "dba-team"
    assert BLOCK_POLICY in [p.attrs["data-policy-id"] for p in page.find_all(data_policy_id=None)]
    expected = [i["decision_id"] for i in api_items(live_ui.client, domain=CM) if i["scope_id"] == scope]
    assert [d for d, _ in listed(page)] == expected[:20] and expected
    assert live_ui.client.get("/scopes/no.such-scope").status_code == 404


def test_the_overview_breaks_decisions_down_and_every_bar_links_to_them(live_ui: LiveServer) -> None:
    everything = api_items(live_ui.client, domain=CM)
    page = dom(live_ui.client.get("/overview"))
    table = page.find("table", data_section="over-time")
    totals = [int(tr.find_all("td")[-2].text) for tr in table.find("tbody").find_all("tr")]
    assert sum(totals) == len(everything)
    assert len(totals) > 1  # hours over two days: not one bar
    agents = page.find("section", data_breakdown="agent")
    counts: dict[str, int] = {}
    for i in everything:
        counts[i["attribution"].get("agent")] = counts.get(i["attribution"].get("agent"), 0) + 1
    shown = {
        li.find("a").text: int(li.find("span", **{"class": "num"}).text.split()[0]) for li in agents.find_all("li")
    }
    assert shown == counts
    for section in ("policy", "scope", "owning_team"):
        assert page.find("section", data_breakdown=section).find_all("li")
    # a bar zooms into its bucket: the overview of that bucket counts exactly its decisions
    bar = page.find("a", **{"class": "bar"})
    zoomed = dom(live_ui.client.get(bar.attrs["href"] or ""))
    rows = zoomed.find("table", data_section="over-time").find("tbody").find_all("tr")
    assert sum(int(tr.find_all("td")[-2].text) for tr in rows) == totals[0]


def test_overview_presets_set_the_range_and_a_wrong_one_is_a_400(live_ui: LiveServer) -> None:
    r = live_ui.client.get("/overview", params={"range": "7d"})
    assert r.status_code == 200
    assert dom(r).find("input", name="since").attrs["value"]
    assert live_ui.client.get("/overview", params={"range": "5y"}).status_code == 400


def test_head_is_answered_on_ui_pages(live_ui: LiveServer) -> None:
    for path in ("/", "/overview", "/scopes", "/specs"):
        r = live_ui.client.head(path)
        assert r.status_code == 200 and r.content == b"", path


def test_pages_are_compressed_for_browsers_that_accept_it(live_ui: LiveServer) -> None:
    r = live_ui.client.get("/", headers={"accept-encoding": "gzip"})
    assert r.headers["content-encoding"] == "gzip"


def test_api_docs_are_served_from_the_package_without_any_other_host(live_ui: LiveServer) -> None:
    for path in ("/docs", "/redoc"):
        r = live_ui.client.get(path)
        assert r.status_code == 200
        assert "http://" not in r.text and "https://" not in r.text and "//cdn" not in r.text
        for src in re.findall(r'(?:src|href)="([^"]+)"', r.text):
            assert src.startswith("/"), src
            assert live_ui.client.get(src).status_code == 200, src
        assert "script-src 'self';" in r.headers["content-security-policy"]


def test_a_skip_link_leads_to_the_content(live_ui: LiveServer) -> None:
    page = dom(live_ui.client.get("/"))
    first_link = page.find("a")
    assert first_link.attrs["href"] == "#main" and page.find("main", id="main")


def test_an_unknown_page_is_a_page_for_browsers_and_json_for_programs(live_ui: LiveServer) -> None:
    page = live_ui.client.get("/no-such-page/<b>", headers={"accept": "text/html,application/xhtml+xml"})
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert "There is no page at /no-such-page/" in page.text and "<b>" not in page.text
    assert 'href="/' in page.text  # a way back
    program = live_ui.client.get("/no-such-page", headers={"accept": "application/json"})
    api = live_ui.client.get("/api/no-such-route", headers={"accept": "text/html"})
    for r in (program, api):
        assert (r.status_code, r.json()["error"]["code"]) == (404, "not_found")
