"""The approvals in the read-only UI, over plain HTTP on a real server and database: the queue of a domain (pending by
default, oldest first, time to expiry, requirements and who satisfied them, team and routing, the action, the
decision), the other states, pages; the approval history and findings on the decision page; the findings list; and
isolation: a reader of another domain sees none of it.

One server for the module: the demo governance, and PAUSEs sent now (pending, approved, used by a resume) and three
hours ago (expired, then executed anyway: a finding).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any
from uuid import UUID

import httpx
import psycopg
import pytest
from psycopg.rows import dict_row

from mandate.apply import apply_bundle
from mandate.db import approvals as aq
from mandate.db import tokens as tq
from mandate.governance.bundle import parse_bundle
from mandate.tokens import Role, digest, new_secret
from mandate.web.ui import relative
from tests.conftest import PgServer
from tests.e2e.seed import CS, scratch_database
from tests.web.conftest import bearer, issue_token, start_server
from tests.web.test_approvals import DOMAIN, ORG, drop
from tests.web.test_ui import Element, dom

Row = dict[str, Any]
PARENT_TEAM = "platform-team"
PARENT_SCOPE = f"""  - scope_id: config-management.prod
    organization_id: {ORG}
    domain: {DOMAIN}
    environment: production
    owning_team: {PARENT_TEAM}
    description: Every production agent of the domain; its team answers when the nearer team has no approver.
"""


@dataclass
class Queue:
    url: str
    db_url: str
    reader: httpx.Client  # a reader of DOMAIN
    foreign: httpx.Client  # a reader of customer-support only
    pending: list[Row]  # the PAUSE answers, oldest first; the first has dba-approval satisfied
    approved: Row
    expired: Row
    consumed: Row
    resume: Row  # the decision that used `consumed`'s approval
    finding_decision: str  # `expired`'s decision, executed anyway


def approval_id(answer: Row) -> str:
    return str(answer["approval_request"]["approval_id"])


@pytest.fixture(scope="module")
def queue(pg: PgServer, templates: Callable[[int | None], str]) -> Iterator[Queue]:
    with scratch_database(pg, templates(None)) as db_url:
        demo = resources.files("mandate.governance").joinpath("demo.yaml").read_text(encoding="utf-8")
        with_parent = demo.replace("\nscopes:\n", "\nscopes:\n" + PARENT_SCOPE, 1)
        assert with_parent != demo
        with psycopg.connect(db_url, autocommit=True) as conn:
            apply_bundle(conn, parse_bundle(with_parent, "demo-with-a-parent-scope.yaml"))
        server, thread, url = start_server(db_url)
        secrets = {
            "agent": issue_token(db_url, role="agent", domains=frozenset({DOMAIN}), name="agent-a"),
            "dba": issue_token(db_url, role="approver", domains=frozenset({DOMAIN}), name="dba-alice"),
            "compliance": issue_token(db_url, role="approver", domains=frozenset({DOMAIN}), name="compliance-bob"),
            "reader": issue_token(db_url, role="reader", domains=frozenset({DOMAIN}), name="reader"),
            "foreign": issue_token(db_url, role="reader", domains=frozenset({CS}), name="support-reader"),
        }
        c = {k: httpx.Client(base_url=url, timeout=30, headers=bearer(v)) for k, v in secrets.items()}
        try:

            def pause(**kwargs: Any) -> Row:
                r = c["agent"].post("/api/decisions", json=drop(**kwargs))
                assert r.status_code == 201 and r.json()["verdict"] == "PAUSE", r.text
                return dict(r.json())

            def approve(answer: Row, *which: str) -> None:
                for name, requirement in (("dba", "dba-approval"), ("compliance", "compliance-review")):
                    if requirement in which:
                        body = {"requirement": requirement, "reason": f"{requirement} checked"}
                        r = c[name].post(f"/api/approvals/{approval_id(answer)}/approve", json=body)
                        assert r.status_code == 201, r.text

            expired = pause(timestamp=datetime.now(UTC) - timedelta(hours=3), target="production.audit")
            executed = {**drop(target="production.audit"), "decision_id": expired["decision_id"], "stage": "executed"}
            assert c["agent"].post("/api/decisions", json=executed).status_code == 201
            consumed = pause(target="production.cache")
            approve(consumed, "dba-approval", "compliance-review")
            resume = c["agent"].post("/api/decisions", json=drop(target="production.cache",
                                                                 approval_id=approval_id(consumed))).json()  # fmt: skip
            assert resume["verdict"] == "ALLOW", resume
            approved = pause(target="production.logs")
            approve(approved, "dba-approval", "compliance-review")
            first = pause(target="production.sessions")
            approve(first, "dba-approval")
            second = pause(target="production.users")
            yield Queue(
                url,
                db_url,
                c["reader"],
                c["foreign"],
                [first, second],
                approved,
                expired,
                consumed,
                resume,
                str(expired["decision_id"]),
            )
        finally:
            for client in c.values():
                client.close()
            server.should_exit = True
            thread.join(timeout=15)


def rows(page: Element) -> list[Element]:
    return page.find_all("tr", data_approval_id=None)


def cell(row: Element, label: str) -> Element:
    return row.find("td", data_label=label)


def joined(element: Element) -> str:
    """The text as a browser shows it: no space where a `<wbr>` offers a line break."""
    raw = "".join(c if isinstance(c, str) else joined(c) for c in element.children)
    return " ".join(raw.split())


# -- the queue ---------------------------------------------------------------------------------------------------


def test_the_queue_lists_pending_requests_oldest_first_with_expiry_requirements_team_and_action(queue: Queue) -> None:
    r = queue.reader.get("/approvals")
    assert r.status_code == 200
    page = dom(r)
    assert page.find("a", aria_current="page").text == "Approvals"  # in the navigation, as the current page
    listed = rows(page)
    assert [e.attrs["data-approval-id"] for e in listed] == [approval_id(a) for a in queue.pending]
    assert {e.attrs["data-state"] for e in listed} == {"pending"}
    first = listed[0]
    answer = queue.pending[0]
    expires = datetime.fromisoformat(answer["pause"]["expires_at"])
    when = cell(first, "Expires")
    assert when.find("time").attrs["datetime"] == expires.astimezone(UTC).isoformat()
    assert when.find("time").text == expires.astimezone(UTC).strftime("%Y-%m-%d %H:%M")
    assert re.fullmatch(r"\(in 1 h \d{1,2} min\)", when.find("span", data_field="expires-in").text)  # 120 min timeout
    assert joined(cell(first, "Intent")) == "database.drop_table"
    assert joined(cell(first, "Target")) == "production.sessions"
    assert cell(first, "Agent").text == "pause-escalation-agent"
    requirements = {
        li.attrs["data-requirement"]: (li.attrs["data-satisfied"], joined(li))
        for li in cell(first, "Requirements").find_all("li")
    }
    assert requirements["dba-approval"] == ("yes", "✓ dba-approval satisfied by dba-alice")
    assert requirements["compliance-review"] == ("no", "○ compliance-review not yet satisfied")
    team = cell(first, "Owning team")
    assert team.find("strong").text == "dba-team"
    assert "answered by any approver of config-management" in team.text  # no approver token names a team
    link = cell(first, "Decision").find("a", data_link="decision").attrs["href"] or ""
    assert link.startswith(f"/decisions/{answer['decision_id']}?") and link.endswith("#stage-pre_commit")
    assert queue.reader.get(link.split("#")[0]).status_code == 200
    assert cell(first, "Decision").find("span", data_field="approval-id").text == approval_id(answer)
    assert cell(first, "State").text == "pending"


def test_the_queue_counts_every_state_and_says_how_to_resolve_without_offering_to(queue: Queue) -> None:
    page = dom(queue.reader.get("/approvals"))
    counts = {a.attrs["data-state"]: int(a.find("strong").text) for a in page.find_all("a", data_state=None)}
    assert counts == {"pending": 2, "approved": 1, "rejected": 0, "withdrawn": 0, "expired": 1, "consumed": 1}
    assert page.find("a", data_state="pending").attrs.get("aria-current") == "page"
    how = page.find("section", data_section="how-to-resolve")
    assert "mandate approvals approve" in how.text and "/api/approvals/APPROVAL_ID/approve" in how.text
    for form in page.find_all("form"):  # read-only: GET filters, and Log out
        assert (form.attrs.get("method") or "get").lower() == "get" or form.attrs.get("action") == "/logout"
    assert [b.text for b in page.find_all("button")] == ["Log out", "Show"]


def test_each_state_is_counted_up_to_a_cap_and_the_queue_says_when_there_are_more(
    queue: Queue, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def counts(cap: int) -> dict[str, int]:
        async with await psycopg.AsyncConnection.connect(queue.db_url, row_factory=dict_row) as conn:
            return await aq.count_requests(
                conn, organization_id=UUID(ORG), domains=None, domain=DOMAIN, now=datetime.now(UTC), cap=cap
            )

    exact = {"pending": 2, "approved": 1, "rejected": 0, "withdrawn": 0, "expired": 1, "consumed": 1}
    assert asyncio.run(counts(1000)) == exact
    assert asyncio.run(counts(1)) == {**exact, "pending": 2}  # 2 = "more than 1"
    assert asyncio.run(counts(0)) == {**exact, "pending": 1}
    monkeypatch.setattr(aq, "COUNT_CAP", 1)
    page = dom(queue.reader.get("/approvals"))
    shown = {a.attrs["data-state"]: a.find("strong").text for a in page.find_all("a", data_state=None)}
    assert shown == {
        "pending": "1+",
        "approved": "1",
        "rejected": "0",
        "withdrawn": "0",
        "expired": "1",
        "consumed": "1",
    }


def test_the_state_filter_shows_approved_expired_and_consumed_requests(queue: Queue) -> None:
    approved = rows(dom(queue.reader.get("/approvals", params={"state": "approved"})))
    assert [e.attrs["data-approval-id"] for e in approved] == [approval_id(queue.approved)]
    satisfied = cell(approved[0], "Requirements").find_all("li", data_satisfied="yes")
    assert [joined(li) for li in satisfied] == [
        "✓ dba-approval satisfied by dba-alice",
        "✓ compliance-review satisfied by compliance-bob",
    ]
    expired = rows(dom(queue.reader.get("/approvals", params={"state": "expired"})))
    assert [e.attrs["data-approval-id"] for e in expired] == [approval_id(queue.expired)]
    ago = expired[0].find("span", data_field="expires-in").text
    assert re.fullmatch(r"\(1 h( \d{1,2} min)? ago\)", ago)  # sent 3 h ago, 120 min timeout
    assert cell(expired[0], "State").text == "expired"
    consumed = rows(dom(queue.reader.get("/approvals", params={"state": "consumed"})))
    assert [e.attrs["data-approval-id"] for e in consumed] == [approval_id(queue.consumed)]
    empty = dom(queue.reader.get("/approvals", params={"state": "rejected"}))
    assert rows(empty) == [] and "No rejected approval request in config-management" in empty.text


def test_a_wrong_state_or_limit_is_a_400_page_that_says_what_to_fix(queue: Queue) -> None:
    for params, message in (({"state": "done"}, "is not one of pending, approved"), ({"limit": "0"}, "limit must")):
        r = queue.reader.get("/approvals", params=params)
        assert r.status_code == 400 and message in r.text
        assert rows(dom(r)) == []


def test_pages_of_one_request_visit_the_queue_in_order(queue: Queue) -> None:
    page = dom(queue.reader.get("/approvals", params={"limit": "1"}))
    seen = [e.attrs["data-approval-id"] for e in rows(page)]
    next_link = page.find("a", rel="next").attrs["href"] or ""
    second = dom(queue.reader.get(next_link))
    seen += [e.attrs["data-approval-id"] for e in rows(second)]
    assert seen == [approval_id(a) for a in queue.pending]
    assert second.find_all("a", rel="next") == []
    assert second.find("nav", aria_label="Pagination").find("a").text == "« First page"


# -- the decision page -------------------------------------------------------------------------------------------


def test_the_decision_page_shows_the_request_its_history_and_the_resume_that_used_it(queue: Queue) -> None:
    page = dom(queue.reader.get(f"/decisions/{queue.consumed['decision_id']}"))
    article = page.find("article", data_approval_id=approval_id(queue.consumed))
    assert article.attrs["data-state"] == "consumed"
    history = article.find("table", data_section="approval-history")
    events = [(tr.attrs["data-event"], [td.text for td in tr.find_all("td")]) for tr in history.find_all("tr")[1:]]
    assert [kind for kind, _ in events] == ["requested", "approved", "approved", "consumed"]
    assert events[1][1][1:] == ["approved", "dba-approval", events[1][1][3], "dba-approval checked"]
    assert events[1][1][3].startswith("dba-alice") and events[2][1][3].startswith("compliance-bob")
    used = history.find("a", data_link="consumed-by")
    assert (used.attrs["href"] or "").startswith(f"/decisions/{queue.resume['decision_id']}?")
    assert "stage pre_commit" in events[3][1][4]
    # The resume's page: the approval it presented, accepted, and the same request with its history.
    resume = dom(queue.reader.get(f"/decisions/{queue.resume['decision_id']}"))
    section = resume.find("div", data_section="resume")
    assert f"Resumed with approval {approval_id(queue.consumed)[:8]}: accepted" in joined(section)
    requested = resume.find("article", data_approval_id=approval_id(queue.consumed))
    assert requested.find("a", data_link="requested-by").text == str(queue.consumed["decision_id"])[:8]


def test_a_pending_decision_page_links_its_request_and_lists_who_approved(queue: Queue) -> None:
    answer = queue.pending[0]
    page = dom(queue.reader.get(f"/decisions/{answer['decision_id']}"))
    link = page.find("div", data_section="pause").find("p", data_field="approval-request")
    assert link.find("a").attrs["href"] == f"#approval-{approval_id(answer)}" and "pending" in link.text
    article = page.find("article", data_approval_id=approval_id(answer))
    assert [tr.attrs["data-event"] for tr in article.find_all("tr", data_event=None)] == ["requested", "approved"]
    assert "read-only" in page.find("section", id="approvals").text.lower()


def test_a_finding_is_listed_and_shown_on_its_decision(queue: Queue) -> None:
    page = dom(queue.reader.get("/findings"))
    assert page.find("a", aria_current="page").text == "Findings"
    listed = page.find_all("tr", data_finding_id=None)
    assert [(tr.attrs["data-decision-id"], tr.attrs["data-kind"]) for tr in listed] == [
        (queue.finding_decision, "unapproved_execution")
    ]
    assert "Executed without approval" in cell(listed[0], "Kind").text
    assert "expired" in cell(listed[0], "Summary").text
    link = cell(listed[0], "Decision").find("a").attrs["href"] or ""
    assert link.startswith(f"/decisions/{queue.finding_decision}?") and link.endswith("#stage-executed")
    decision = dom(queue.reader.get(link.split("#")[0]))
    shown = decision.find("section", id="findings").find_all("li", data_kind="unapproved_execution")
    assert len(shown) == 1 and "executed without a valid approval" in shown[0].text
    expired_history = decision.find("article", data_approval_id=approval_id(queue.expired))
    assert expired_history.attrs["data-state"] == "expired"
    assert expired_history.find("tr", data_event="expired")  # read from time even before the sweeper writes it


# -- isolation ---------------------------------------------------------------------------------------------------


def test_a_reader_of_another_domain_sees_no_request_and_no_finding(queue: Queue) -> None:
    theirs = dom(queue.foreign.get("/approvals"))  # its only domain, customer-support
    assert rows(theirs) == []
    counts = {a.attrs["data-state"]: a.find("strong").text for a in theirs.find_all("a", data_state=None)}
    assert set(counts.values()) == {"0"}
    for state in ("approved", "expired", "consumed"):
        assert rows(dom(queue.foreign.get("/approvals", params={"state": state}))) == []
    asked = queue.foreign.get("/approvals", params={"domain": DOMAIN})
    assert asked.status_code == 400 and rows(dom(asked)) == [] and "does not exist here" in asked.text
    assert dom(queue.foreign.get("/findings")).find_all("tr", data_finding_id=None) == []
    assert queue.foreign.get("/findings", params={"domain": DOMAIN}).status_code == 400
    assert queue.foreign.get(f"/decisions/{queue.pending[0]['decision_id']}").status_code == 404
    for path in ("/approvals", "/approvals?state=consumed", "/findings"):
        text = queue.foreign.get(path).text
        assert not any(approval_id(a) in text for a in (*queue.pending, queue.approved, queue.consumed)), path


def test_an_approver_of_an_ancestor_team_shows_the_request_as_escalated(queue: Queue) -> None:
    page = dom(queue.reader.get("/approvals"))
    path = cell(rows(page)[0], "Owning team").find("span", data_field="escalation").text
    assert path == f"escalation path: {PARENT_TEAM}"
    secret = new_secret()
    with psycopg.connect(queue.db_url, autocommit=True) as conn:
        token_id = tq.issue(conn, secret_sha256=digest(secret), name="escalation", organization_id=UUID(ORG),
                            domains=frozenset({DOMAIN}), role=Role.APPROVER, expires_at=None,
                            teams=frozenset({PARENT_TEAM}))  # fmt: skip
        try:
            routed = cell(rows(dom(queue.reader.get("/approvals")))[0], "Owning team")
        finally:
            tq.revoke(conn, token_id, "the other tests of this module route to any approver")
    assert routed.find("span", data_field="routed-to").text == (
        f"escalated to {PARENT_TEAM} (no approver answers for dba-team)"
    )


# -- time to expiry, as people say it ----------------------------------------------------------------------------

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("moment", "said"),
    [
        (NOW + timedelta(hours=1, minutes=12, seconds=59), "in 1 h 12 min"),
        (NOW + timedelta(seconds=30), "in less than 1 min"),
        (NOW, "in less than 1 min"),
        (NOW - timedelta(minutes=5), "5 min ago"),
        (NOW + timedelta(days=2, hours=3, minutes=40), "in 2 d 3 h"),
        (NOW + timedelta(hours=2), "in 2 h"),
        ((NOW - timedelta(days=1, minutes=7)).isoformat(), "1 d ago"),
    ],
)
def test_time_to_expiry_reads_as_people_say_it(moment: datetime | str, said: str) -> None:
    assert relative(moment, NOW) == said
