"""Approvals end to end (docs/approvals.md): a real server, real PostgreSQL, real tokens.

A PAUSE comes with its approval request (same statement); approvers resolve it requirement by requirement; the
agent resumes and the resume is evaluated again and checked against the approved action before the approval is
consumed, once; `executed` stages nothing covered become findings; expiry is read from time and written by an
idempotent sweeper; replay stays deterministic.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from psycopg.rows import dict_row

from mandate.apply import apply_bundle
from mandate.db import approvals as aq
from mandate.governance.bundle import load_bundle, load_demo_bundle
from tests.helpers import scalar
from tests.web.conftest import bearer, issue_token, start_server

ORG = "550e8400-e29b-41d4-a716-446655440000"
DOMAIN = "config-management"


def drop(*, target: str = "production.sessions", timestamp: datetime | None = None, **extra: Any) -> dict[str, Any]:
    """A critical drop with a backup: PAUSE by policy-pause-critical-db-ops-v1 (dba-approval, compliance-review)."""
    return {
        "decision_id": str(uuid.uuid4()),
        "organization_id": ORG,
        "domain": DOMAIN,
        "intent": "database.drop_table",
        "stage": "pre_commit",
        "actor": "pause-escalation-agent",
        "target": target,
        "context": {"risk_level": "critical", "reversible": False, "backup_first": True},
        "scope": {"service": "db-admin-tool", "agent": "pause-escalation-agent", "environment": "production"},
        "timestamp": (timestamp or datetime.now(UTC)).isoformat(),
        **extra,
    }


@dataclass
class World:
    url: str
    db_url: str
    agent: httpx.Client
    other_agent: httpx.Client
    dba: httpx.Client
    compliance: httpx.Client
    reader: httpx.Client
    foreign: httpx.Client  # an approver of another domain

    def pause(self, **kwargs: Any) -> dict[str, Any]:
        r = self.agent.post("/api/decisions", json=drop(**kwargs))
        assert r.status_code == 201, r.text
        body = r.json()
        assert body["verdict"] == "PAUSE", body
        return body

    def approve_all(self, approval_id: str) -> None:
        for client, requirement in ((self.dba, "dba-approval"), (self.compliance, "compliance-review")):
            r = client.post(f"/api/approvals/{approval_id}/approve", json={"requirement": requirement})
            assert r.status_code == 201, r.text


@pytest.fixture
def world(db_url: str) -> Iterator[World]:
    with psycopg.connect(db_url, autocommit=True) as conn:
        apply_bundle(conn, load_demo_bundle())
    server, thread, url = start_server(db_url)
    secrets = {
        "agent": issue_token(db_url, role="agent", domains=frozenset({DOMAIN}), name="agent-a"),
        "other_agent": issue_token(db_url, role="agent", domains=frozenset({DOMAIN}), name="agent-b"),
        "dba": issue_token(db_url, role="approver", domains=frozenset({DOMAIN}), name="dba-alice"),
        "compliance": issue_token(db_url, role="approver", domains=frozenset({DOMAIN}), name="compliance-bob"),
        "reader": issue_token(db_url, role="reader", domains=frozenset({DOMAIN}), name="reader"),
        "foreign": issue_token(db_url, role="approver", domains=frozenset({"customer-support"}), name="foreign"),
    }
    clients = {k: httpx.Client(base_url=url, timeout=30, headers=bearer(v)) for k, v in secrets.items()}
    try:
        yield World(url, db_url, **clients)
    finally:
        for c in clients.values():
            c.close()
        server.should_exit = True
        thread.join(timeout=15)


def _count(db_url: str, sql: str, *params: Any) -> int:
    with psycopg.connect(db_url) as conn:
        return int(scalar(conn, sql, params or None))


def test_every_pause_is_stored_with_its_approval_request(world: World) -> None:
    body = world.pause()
    request = body["approval_request"]
    assert request["approval_id"] == body["verdict_id"]
    got = world.agent.get(f"/api/approvals/{request['approval_id']}").json()
    assert got["state"] == "pending"
    assert [r["requirement"] for r in got["requirements"]] == ["dba-approval", "compliance-review"]
    assert got["owning_team"] == "dba-team"
    assert got["binding"]["target"] == "production.sessions"
    assert len(got["binding_digest"]) == 64
    assert got["expires_at"] == body["pause"]["expires_at"]
    # No PAUSE without its request, and no request without its PAUSE.
    assert (
        _count(
            world.db_url,
            """SELECT count(*) FROM mandate.verdict_events v FULL JOIN mandate.approval_requests a USING (verdict_id)
           WHERE (v.verdict = 'PAUSE') IS DISTINCT FROM (a.approval_id IS NOT NULL)""",
        )
        == 0
    )
    # An ALLOW has none.
    allow = world.agent.post("/api/decisions", json=drop(context={"risk_level": "low", "reversible": True,
                                                                  "backup_first": True}))  # fmt: skip
    assert allow.json()["verdict"] != "PAUSE" and allow.json()["approval_request"] is None
    # Read back later (an agent that restarted), the verdict names the same request; the ALLOW's names none.
    stored = world.agent.get(f"/api/decisions/{body['decision_id']}/verdict").json()
    assert stored["approval_request"] == request
    assert world.agent.get(f"/api/decisions/{allow.json()['decision_id']}/verdict").json()["approval_request"] is None


def test_the_state_machine_and_its_forbidden_transitions(world: World) -> None:
    approval_id = world.pause()["approval_request"]["approval_id"]
    path = f"/api/approvals/{approval_id}"
    # Without the role, or of another domain: refused, the latter exactly like a request that does not exist.
    assert world.reader.post(path + "/approve", json={"requirement": "dba-approval"}).status_code == 403
    assert world.agent.post(path + "/approve", json={"requirement": "dba-approval"}).status_code == 403
    foreign = world.foreign.post(path + "/approve", json={"requirement": "dba-approval"})
    missing = world.foreign.post(f"/api/approvals/{uuid.uuid4()}/approve", json={"requirement": "dba-approval"})
    assert foreign.status_code == missing.status_code == 404
    assert foreign.json()["error"]["code"] == missing.json()["error"]["code"] == "not_found"
    # Two requirements: say which.
    r = world.dba.post(path + "/approve", json={})
    assert (r.status_code, r.json()["error"]["code"]) == (409, "requirement_needed")
    r = world.dba.post(path + "/approve", json={"requirement": "cfo-approval"})
    assert (r.status_code, r.json()["error"]["code"]) == (409, "unknown_requirement")
    r = world.dba.post(path + "/approve", json={"requirement": "dba-approval", "reason": "backup verified"})
    assert r.status_code == 201 and r.json()["state"] == "pending"
    # Double approve, and one approver for two requirements.
    r = world.compliance.post(path + "/approve", json={"requirement": "dba-approval"})
    assert (r.status_code, r.json()["error"]["code"]) == (409, "already_satisfied")
    r = world.dba.post(path + "/approve", json={"requirement": "compliance-review"})
    assert (r.status_code, r.json()["error"]["code"]) == (409, "same_approver")
    r = world.compliance.post(path + "/approve", json={"requirement": "compliance-review"})
    assert r.status_code == 201 and r.json()["state"] == "approved"
    by = {x["requirement"]: x["by"]["name"] for x in r.json()["requirements"]}
    assert by == {"dba-approval": "dba-alice", "compliance-review": "compliance-bob"}
    # Approved: no more approving or rejecting; the agent may still withdraw it (nobody used it).
    assert world.dba.post(path + "/reject", json={}).json()["error"]["code"] == "approved"
    assert world.other_agent.post(path + "/withdraw", json={}).status_code == 404  # not the agent that sent it
    r = world.agent.post(path + "/withdraw", json={"reason": "not needed any more"})
    assert r.status_code == 201 and r.json()["state"] == "withdrawn"
    for client, action in ((world.dba, "approve"), (world.dba, "reject"), (world.agent, "withdraw")):
        r = client.post(f"{path}/{action}", json={"requirement": "dba-approval"} if action == "approve" else {})
        assert (r.status_code, r.json()["error"]["code"]) == (409, "withdrawn")
    # Rejected is final too.
    rejected = world.pause()["approval_request"]["approval_id"]
    assert world.dba.post(f"/api/approvals/{rejected}/reject", json={"reason": "no"}).json()["state"] == "rejected"
    r = world.compliance.post(f"/api/approvals/{rejected}/approve", json={"requirement": "compliance-review"})
    assert (r.status_code, r.json()["error"]["code"]) == (409, "rejected")
    # Every resolution is on the decision's timeline.
    timeline = world.reader.get(f"/api/decisions/{r.json() and _decision_of(world, approval_id)}/timeline").json()
    assert [e["summary"] for e in timeline["entries"] if e["summary"].startswith("approval")] == [
        "approval approved: dba-approval by dba-alice",
        "approval approved: compliance-review by compliance-bob",
        "approval withdrawn by agent-a",
    ]


def _decision_of(world: World, approval_id: str) -> str:
    return str(world.reader.get(f"/api/approvals/{approval_id}").json()["decision_id"])


def test_expired_reads_as_expired_before_and_after_the_sweeper_which_is_idempotent(world: World) -> None:
    # The PAUSE's expiry is the decision's timestamp plus the spec's timeout (120 min): three hours ago is expired.
    approval_id = world.pause(timestamp=datetime.now(UTC) - timedelta(hours=3))["approval_request"]["approval_id"]
    before = world.reader.get(f"/api/approvals/{approval_id}").json()
    assert before["state"] == "expired" and before["events"] == []
    r = world.dba.post(f"/api/approvals/{approval_id}/approve", json={"requirement": "dba-approval"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "expired"
    assert "expired is not rejected" in r.json()["error"]["message"]
    assert world.reader.get("/api/approvals", params={"state": "expired"}).json()["items"][0]["approval_id"] == (
        approval_id
    )

    async def sweep_twice() -> list[int]:
        async def one() -> int:
            async with await psycopg.AsyncConnection.connect(
                world.db_url, autocommit=True, row_factory=dict_row
            ) as conn:
                return await aq.sweep(conn, datetime.now(UTC))

        return list(await asyncio.gather(one(), one()))

    written = asyncio.run(sweep_twice())
    assert sum(written) == 1
    assert asyncio.run(sweep_twice()) == [0, 0]
    after = world.reader.get(f"/api/approvals/{approval_id}").json()
    assert after["state"] == "expired"
    assert [(e["kind"], e["name"], e["at"]) for e in after["events"]] == [("expired", "sweeper", before["expires_at"])]
    assert {k: v for k, v in after.items() if k != "events"} == {k: v for k, v in before.items() if k != "events"}


def test_a_sweep_since_its_last_round_looks_only_at_what_expired_or_was_stored_since(world: World) -> None:
    # Stored now, its expiry three hours ago (the decision's timestamp is old): a bounded sweep finds it by the time
    # it was stored; a sweep whose last round came after both finds nothing; a full sweep (since None) writes it.
    approval_id = world.pause(timestamp=datetime.now(UTC) - timedelta(hours=3))["approval_request"]["approval_id"]

    async def sweep(since: datetime | None) -> int:
        async with await psycopg.AsyncConnection.connect(world.db_url, autocommit=True, row_factory=dict_row) as conn:
            return await aq.sweep(conn, datetime.now(UTC), since=since)

    assert asyncio.run(sweep(datetime.now(UTC) + timedelta(minutes=1))) == 0
    assert asyncio.run(sweep(datetime.now(UTC) - timedelta(minutes=1))) == 1
    assert asyncio.run(sweep(None)) == 0  # written once
    events = world.reader.get(f"/api/approvals/{approval_id}").json()["events"]
    assert [e["kind"] for e in events] == ["expired"]


def test_a_resume_with_the_approved_action_is_allowed_once(world: World) -> None:
    paused = world.pause()
    approval_id = paused["approval_request"]["approval_id"]
    early = world.agent.post("/api/decisions", json=drop(approval_id=approval_id))
    assert early.json()["verdict"] == "BLOCK"
    assert early.json()["approval"]["refusal"]["code"] == "pending"
    assert "still waiting for dba-approval, compliance-review" in early.json()["summary"]
    world.approve_all(approval_id)
    resumed = world.agent.post("/api/decisions", json=drop(approval_id=approval_id))
    body = resumed.json()
    assert (resumed.status_code, body["verdict"], body["reason"]) == (201, "ALLOW", "approved")
    assert body["approval"]["accepted"] is True and body["approval"]["evaluated"]["verdict"] == "PAUSE"
    assert world.reader.get(f"/api/approvals/{approval_id}").json()["state"] == "consumed"
    again = world.agent.post("/api/decisions", json=drop(approval_id=approval_id)).json()
    assert again["verdict"] == "BLOCK" and again["approval"]["refusal"]["code"] == "consumed"
    # The consumption is a row with a primary key, written with the resume.
    assert _count(world.db_url, "SELECT count(*) FROM mandate.approval_consumptions") == 1
    # Replay: the PAUSE replays as PAUSE, the resume as what it was — both identical.
    for decision_id in (paused["decision_id"], body["decision_id"], again["decision_id"]):
        replay = world.reader.get(f"/api/decisions/{decision_id}/replay").json()
        assert replay["identical"] is True, replay


def test_a_resume_with_another_action_is_refused_naming_the_difference(world: World) -> None:
    approval_id = world.pause(target="production.sessions")["approval_request"]["approval_id"]
    world.approve_all(approval_id)
    other = drop(target="production.users", approval_id=approval_id)
    other["context"]["reversible"] = True
    body = world.agent.post("/api/decisions", json=other).json()
    assert body["verdict"] == "BLOCK" and body["reason"] == "approval_refused"
    refusal = body["approval"]["refusal"]
    assert refusal["code"] == "action_differs"
    assert refusal["differences"] == [
        'target: "production.sessions" → "production.users"',
        "signals.reversible: false → true",
    ]
    # The refusal did not use the approval: the approved action still may proceed.
    assert world.agent.post("/api/decisions", json=drop(approval_id=approval_id)).json()["verdict"] == "ALLOW"


def test_a_resume_after_governance_now_blocks_is_blocked(world: World, tmp_path: Path) -> None:
    approval_id = world.pause()["approval_request"]["approval_id"]
    world.approve_all(approval_id)
    demo = (Path(__file__).parents[2] / "src/mandate/governance/demo.yaml").read_text()
    stricter = demo.replace(
        '          - {signal: risk_level, operator: "==", value: critical}\n        verdict: PAUSE',
        '          - {signal: risk_level, operator: "==", value: critical}\n        verdict: BLOCK',
    ).replace("    domain: config-management\n    version: 1\n", "    domain: config-management\n    version: 2\n")
    assert stricter != demo
    (tmp_path / "stricter.yaml").write_text(stricter)
    with psycopg.connect(world.db_url, autocommit=True) as conn:
        apply_bundle(conn, load_bundle([tmp_path / "stricter.yaml"]))
    deadline = time.monotonic() + 10
    while world.agent.post("/api/decisions", json=drop()).json()["verdict"] != "BLOCK":  # reloads on NOTIFY
        assert time.monotonic() < deadline, "the server did not load the stricter governance"
        time.sleep(0.1)
    body = world.agent.post("/api/decisions", json=drop(approval_id=approval_id)).json()
    assert body["verdict"] == "BLOCK" and body["reason"] != "approved"
    assert body["approval"]["accepted"] is False
    assert body["approval"]["refusal"]["code"] == "governance_changed"
    assert world.reader.get(f"/api/approvals/{approval_id}").json()["state"] == "approved"  # not consumed


def test_twenty_concurrent_resumes_consume_the_approval_exactly_once(world: World) -> None:
    approval_id = world.pause()["approval_request"]["approval_id"]
    world.approve_all(approval_id)
    start = threading.Barrier(20)

    def resume(_: int) -> str:
        start.wait()
        r = world.agent.post("/api/decisions", json=drop(approval_id=approval_id))
        assert r.status_code == 201, r.text
        return str(r.json()["verdict"])

    with ThreadPoolExecutor(20) as pool:
        verdicts = list(pool.map(resume, range(20)))
    assert sorted(verdicts) == ["ALLOW"] + ["BLOCK"] * 19
    assert _count(world.db_url, "SELECT count(*) FROM mandate.approval_consumptions WHERE approval_id = %s",
                  approval_id) == 1  # fmt: skip


def test_twenty_concurrent_approvals_record_each_requirement_once(world: World, db_url: str) -> None:
    approval_id = world.pause()["approval_request"]["approval_id"]
    approvers = [
        httpx.Client(base_url=world.url, timeout=30,
                     headers=bearer(issue_token(db_url, role="approver", domains=frozenset({DOMAIN}), name=f"a{i}")))
        for i in range(20)
    ]  # fmt: skip
    start = threading.Barrier(20)

    def approve(i: int) -> int:
        start.wait()
        requirement = ("dba-approval", "compliance-review")[i % 2]
        return approvers[i].post(f"/api/approvals/{approval_id}/approve", json={"requirement": requirement}).status_code

    try:
        with ThreadPoolExecutor(20) as pool:
            codes = list(pool.map(approve, range(20)))
    finally:
        for c in approvers:
            c.close()
    assert sorted(codes) == [201, 201] + [409] * 18
    assert world.reader.get(f"/api/approvals/{approval_id}").json()["state"] == "approved"


def test_executed_stages_that_nothing_covered_are_findings(world: World) -> None:
    # Executed after a PAUSE nobody approved.
    paused = world.pause()
    executed = {**drop(), "decision_id": paused["decision_id"], "stage": "executed"}
    r = world.agent.post("/api/decisions", json=executed)
    assert r.status_code == 201, r.text
    assert r.json()["approval"]["refusal"]["code"] == "pending"
    # Executed after an approved PAUSE, same action: consumes the approval, no finding.
    approved = world.pause()
    world.approve_all(approved["approval_request"]["approval_id"])
    fine = world.agent.post("/api/decisions", json={**drop(), "decision_id": approved["decision_id"],
                                                     "stage": "executed"}).json()  # fmt: skip
    assert fine["approval"]["accepted"] is True
    # Executed, never asked, although the intent is gated at pre_commit.
    world.agent.post("/api/decisions", json={**drop(), "stage": "executed"})
    # Executed after an ALLOW, but another target.
    low = {"risk_level": "low", "reversible": True, "backup_first": True}
    allowed = world.agent.post("/api/decisions", json=drop(context=low)).json()
    assert allowed["verdict"] == "ALLOW"
    world.agent.post("/api/decisions", json={**drop(context=low, target="production.users"),
                                             "decision_id": allowed["decision_id"], "stage": "executed"})  # fmt: skip
    findings = world.reader.get("/api/findings").json()["items"]
    got = sorted((f["decision_id"], f["kind"]) for f in findings)
    assert len(got) == 3
    kinds = {f["decision_id"]: f["kind"] for f in findings}
    assert kinds[paused["decision_id"]] == "unapproved_execution"
    assert kinds[allowed["decision_id"]] == "action_differs"
    assert approved["decision_id"] not in kinds
    differs = next(f for f in findings if f["kind"] == "action_differs")
    assert differs["details"]["differences"] == ['target: "production.sessions" → "production.users"']
    timeline = world.reader.get(f"/api/decisions/{paused['decision_id']}/timeline").json()["entries"]
    assert any(e["summary"].startswith("finding: ") and e["severity"] == "critical" for e in timeline)


def test_executed_stages_in_a_batch_are_judged_as_alone_on_their_stages_read_once(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stored stages of a batch's `executed` decisions are read in one query (service/stages.py; issue 20,
    item 3); each is still judged as it would be alone: the same refusal, consumption and findings as above."""
    paused = world.pause()
    approved = world.pause()
    world.approve_all(approved["approval_request"]["approval_id"])
    low = {"risk_level": "low", "reversible": True, "backup_first": True}
    allowed = world.agent.post("/api/decisions", json=drop(context=low)).json()
    assert allowed["verdict"] == "ALLOW"
    never_asked = {**drop(), "stage": "executed"}
    items = [
        {**drop(), "decision_id": paused["decision_id"], "stage": "executed"},
        {**drop(), "decision_id": approved["decision_id"], "stage": "executed"},
        never_asked,
        {**drop(context=low, target="production.users"), "decision_id": allowed["decision_id"], "stage": "executed"},
    ]
    reads: list[list[uuid.UUID]] = []
    read_many = aq.earlier_stages_of

    async def counted(conn: Any, decision_ids: list[uuid.UUID]) -> Any:
        reads.append(list(decision_ids))
        return await read_many(conn, decision_ids)

    monkeypatch.setattr(aq, "earlier_stages_of", counted)

    r = world.agent.post("/api/decisions/batch", json={"decisions": items})

    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["status"] for x in results] == [201] * 4
    assert reads == [[uuid.UUID(item["decision_id"]) for item in items]]  # one query for the four, none per stage
    assert results[0]["approval"]["refusal"]["code"] == "pending"
    assert results[1]["approval"]["accepted"] is True
    findings = world.reader.get("/api/findings").json()["items"]
    kinds = {f["decision_id"]: f["kind"] for f in findings}
    assert kinds == {
        paused["decision_id"]: "unapproved_execution",
        never_asked["decision_id"]: "unapproved_execution",  # no earlier stage was decided
        allowed["decision_id"]: "action_differs",
    }
    consumed = world.reader.get(f"/api/approvals/{approved['approval_request']['approval_id']}").json()
    assert consumed["state"] == "consumed"


def test_a_batch_whose_shared_read_fails_answers_503_stores_nothing_and_stores_on_resend(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    paused = world.pause()
    items = [{**drop(), "decision_id": paused["decision_id"], "stage": "executed"}, {**drop(), "stage": "executed"}]
    calls: list[int] = []
    read_many = aq.earlier_stages_of

    async def first_fails(conn: Any, decision_ids: list[uuid.UUID]) -> Any:
        calls.append(len(decision_ids))
        if len(calls) == 1:
            raise psycopg.OperationalError("the shared read failed")
        return await read_many(conn, decision_ids)

    monkeypatch.setattr(aq, "earlier_stages_of", first_fails)

    failed = world.agent.post("/api/decisions/batch", json={"decisions": items}).json()["results"]
    again = world.agent.post("/api/decisions/batch", json={"decisions": items}).json()["results"]

    assert [x["status"] for x in failed] == [503, 503]  # fail closed: the stages were not judged, so not stored
    assert all(x["error"]["code"] == "unavailable" for x in failed)
    assert calls == [2, 2]  # one query each time
    assert [x["status"] for x in again] == [201, 201]  # nothing of the first try was stored
    assert again[0]["approval"]["refusal"]["code"] == "pending"  # judged on its PAUSEd stage


def test_long_poll_answers_when_the_request_is_resolved(world: World) -> None:
    approval_id = world.pause()["approval_request"]["approval_id"]
    quick = world.agent.get(f"/api/approvals/{approval_id}", params={"wait": 0.2})
    assert quick.json()["state"] == "pending"

    rejected: list[int] = []

    def resolve_soon() -> None:
        time.sleep(0.5)
        rejected.append(
            world.dba.post(f"/api/approvals/{approval_id}/reject", json={"reason": "not today"}).status_code
        )

    resolver = threading.Thread(target=resolve_soon)
    resolver.start()
    started = time.monotonic()
    r = world.agent.get(f"/api/approvals/{approval_id}", params={"wait": 20})
    took = time.monotonic() - started
    # The long poll may be answered before the rejection's own answer arrives: wait for it, so that the clients are
    # not closed under it when the test ends.
    resolver.join(timeout=30)
    assert not resolver.is_alive() and rejected == [201]
    assert r.json()["state"] == "rejected"
    assert 0.3 < took < 10, took  # woken by the change, not by the 20 s bound
    assert world.agent.get(f"/api/approvals/{approval_id}", params={"wait": 61}).status_code == 422


def test_an_agent_sees_only_its_own_approvals(world: World) -> None:
    approval_id = world.pause()["approval_request"]["approval_id"]
    assert world.other_agent.get(f"/api/approvals/{approval_id}").status_code == 404
    assert world.other_agent.get("/api/approvals").json()["items"] == []
    assert [a["approval_id"] for a in world.agent.get("/api/approvals").json()["items"]] == [approval_id]
    assert [a["approval_id"] for a in world.dba.get("/api/approvals").json()["items"]] == [approval_id]
    assert world.foreign.get("/api/approvals").json()["items"] == []
