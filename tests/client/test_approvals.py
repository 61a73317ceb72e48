"""Approvals from the SDK against a real server and real PostgreSQL: `decide(on_pause="wait")` waits a PAUSE out and
resumes once approved, fails closed otherwise (sync and async); `client.approvals` lists, reads and resolves
requests, with the server's 409 codes as `ApprovalConflict`."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from mandate.client import (
    Approval,
    ApprovalConflict,
    ApprovalTimeout,
    MandateAPIError,
    MandateClient,
    MandateConflict,
    MandateError,
    MandateNotFound,
    Paused,
)
from mandate.demo import scenarios as s
from tests.client.conftest import People

WRITE = s.LARGE_PRODUCTION_WRITE  # PAUSE by policy-pause-large-files-v1: compliance-review
DROP = dataclasses.replace(  # PAUSE by policy-pause-critical-db-ops-v1: dba-approval and compliance-review
    s.CRITICAL_DROP_WITHOUT_BACKUP,
    target="production.sessions",
    context={"risk_level": "critical", "reversible": False, "backup_first": True},
    expected="PAUSE",
)


def when_pending(approver: MandateClient, act: Callable[[Approval], object]) -> threading.Thread:
    """A thread that waits until a request is pending in the approver's queue, then acts on it (as a person would)."""

    def run() -> None:
        deadline = time.monotonic() + 10
        while not (queue := list(approver.approvals.list())):
            assert time.monotonic() < deadline, "no request reached the queue"
            time.sleep(0.02)
        act(queue[0])

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_wait_resumes_once_approved_and_returns_the_allow(people: People) -> None:
    with people.client("agent") as agent, people.client("bob") as bob:
        approver = when_pending(bob, lambda a: bob.approvals.approve(a.approval_id, reason="reviewed"))
        started = time.monotonic()
        verdict = agent.decide(WRITE.intent, WRITE.stage, **WRITE.decide_args(), on_pause="wait", wait_timeout=20)
        took = time.monotonic() - started
        approver.join()

        assert (verdict.verdict, verdict.reason) == ("ALLOW", "approved")
        assert took < 10, took  # woken by the approval, not by the timeout
        assert verdict.approval is not None and verdict.approval.state == "approved"
        assert [(r.requirement, r.by) for r in verdict.approval.requirements] == [
            ("compliance-review", "compliance-bob")
        ]
        # The resume is a new decision that used the approval; the PAUSE stays the PAUSE.
        assert verdict.decision_id != verdict.approval.decision_id
        assert verdict.explanation["approval"]["accepted"] is True
        after = agent.approvals.get(verdict.approval.approval_id)
        assert after.state == "consumed"
        assert after.consumed_by is not None and after.consumed_by["decision_id"] == str(verdict.decision_id)
        stored = agent.get_verdict(verdict.approval.decision_id)
        assert (stored.verdict, stored.approval_id) == ("PAUSE", verdict.approval.approval_id)


def test_decide_with_an_approval_resolved_elsewhere_resumes_the_same_action_only(people: People) -> None:
    with people.client("agent") as agent, people.client("bob") as bob:
        paused = agent.decide(WRITE.intent, WRITE.stage, **WRITE.decide_args())
        assert paused.paused and paused.approval_id is not None
        bob.approvals.approve(paused.approval_id, reason="reviewed")
        # Another action (a bigger write) with the approval: refused, the approval not used.
        bigger = {**WRITE.decide_args(), "context": {**WRITE.context, "content_length": 25_000_000}}
        other = agent.decide(WRITE.intent, WRITE.stage, approval_id=paused.approval_id, **bigger)
        assert other.blocked and other.explanation["approval"]["accepted"] is False
        # The approved action: ALLOW, and the approval is used up.
        resumed = agent.decide(WRITE.intent, WRITE.stage, approval_id=str(paused.approval_id), **WRITE.decide_args())
        assert (resumed.verdict, resumed.reason) == ("ALLOW", "approved")
        assert agent.approvals.get(paused.approval_id).state == "consumed"


def test_async_decide_with_an_approval_resolved_elsewhere_resumes(people: People) -> None:
    async def run() -> None:
        async with people.aclient("agent") as agent, people.aclient("bob") as bob:
            paused = await agent.decide(WRITE.intent, WRITE.stage, **WRITE.decide_args())
            assert paused.approval_id is not None
            await bob.approvals.approve(paused.approval_id)
            resumed = await agent.decide(
                WRITE.intent, WRITE.stage, approval_id=paused.approval_id, **WRITE.decide_args()
            )
            assert (resumed.verdict, resumed.reason) == ("ALLOW", "approved")

    asyncio.run(run())


def test_wait_returns_the_pause_when_an_approver_rejects_and_sends_no_resume(people: People) -> None:
    with people.client("agent") as agent, people.client("bob") as bob:
        approver = when_pending(bob, lambda a: bob.approvals.reject(a.approval_id, reason="not this week"))
        verdict = agent.decide(WRITE.intent, WRITE.stage, **WRITE.decide_args(), on_pause="wait", wait_timeout=20)
        approver.join()

    assert verdict.paused and not verdict.allowed
    assert verdict.approval is not None and verdict.approval.state == "rejected"
    assert [(e.kind, e.name, e.reason) for e in verdict.approval.events] == [
        ("rejected", "compliance-bob", "not this week")
    ]
    assert people.count("SELECT count(*) FROM mandate.decision_events") == 1  # nothing resumed


def test_wait_returns_the_pause_of_a_request_that_already_expired(people: People) -> None:
    three_hours_ago = datetime.now(UTC) - timedelta(hours=3)  # the spec's PAUSE timeout is shorter
    with people.client("agent") as agent:
        verdict = agent.decide(
            WRITE.intent, WRITE.stage, **WRITE.decide_args(), timestamp=three_hours_ago, on_pause="wait"
        )

    assert verdict.paused
    assert verdict.approval is not None and verdict.approval.state == "expired"
    assert verdict.approval.expires_at is not None and verdict.approval.expires_at < datetime.now(UTC)


def test_a_wait_that_times_out_raises_a_paused_that_no_mandate_error_fallback_catches(people: People) -> None:
    with people.client("agent") as agent:
        started = time.monotonic()
        with pytest.raises(ApprovalTimeout) as caught:
            try:
                agent.decide(WRITE.intent, WRITE.stage, **WRITE.decide_args(), on_pause="wait", wait_timeout=0.5)
            except MandateError:  # an agent's "act anyway when Mandate is unreachable" fallback
                pytest.fail("a PAUSE nobody resolved must not reach a fallback for an unreachable Mandate")
        took = time.monotonic() - started

        timeout = caught.value
        assert isinstance(timeout, Paused) and timeout.verdict.paused
        assert 0.5 <= took < 5, took
        assert timeout.approval is not None and timeout.approval.state == "pending"
        assert timeout.approval.approval_id == timeout.verdict.approval_id
        assert "not resolved within 0.5 s (still waiting for compliance-review), so do not act" in str(timeout)
        # The request is still pending: the agent may withdraw it.
        assert agent.approvals.withdraw(timeout.approval.approval_id, reason="gave up").state == "withdrawn"


class _NoApprovals(httpx.HTTPTransport):
    """Decisions reach the server; every approval read is refused at the connection (Mandate went away)."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.startswith("/api/approvals/"):
            raise httpx.ConnectError("connection refused", request=request)
        return super().handle_request(request)


def test_mandate_unreachable_while_waiting_is_a_timeout_not_a_mandate_error(people: People) -> None:
    with (
        people.client("agent", transport=_NoApprovals(), backoff=0.01) as agent,
        pytest.raises(ApprovalTimeout) as caught,
    ):
        agent.decide(WRITE.intent, WRITE.stage, **WRITE.decide_args(), on_pause="wait", wait_timeout=0.3)

    assert caught.value.approval is None
    assert caught.value.verdict.paused
    assert isinstance(caught.value.__cause__, MandateError) and "could not be reached" in str(caught.value.__cause__)


def test_on_pause_and_wait_timeout_are_checked_before_anything_is_sent(people: People) -> None:
    with people.client("agent") as agent:
        for bad in ({"on_pause": "later"}, {"on_pause": "wait", "wait_timeout": 0}, {"wait_timeout": 86_401}):
            with pytest.raises(ValueError, match=r"^(on_pause|wait_timeout) must be"):
                agent.decide(WRITE.intent, WRITE.stage, **WRITE.decide_args(), **bad)
        assert people.count("SELECT count(*) FROM mandate.decision_events") == 0
        # The default returns the PAUSE at once, naming its approval request.
        verdict = agent.decide(WRITE.intent, WRITE.stage, **WRITE.decide_args())
        assert verdict.paused and verdict.approval is None and verdict.approval_id is not None
        assert agent.approvals.get(verdict.approval_id).decision_id == verdict.decision_id


def test_async_wait_resumes_once_approved(people: People) -> None:
    async def scenario() -> tuple[str, str | None]:
        async with people.aclient("agent") as agent, people.aclient("bob") as bob:

            async def approve_when_pending() -> None:
                while not (queue := [a async for a in bob.approvals.list()]):
                    await asyncio.sleep(0.02)
                await bob.approvals.approve(queue[0].approval_id)

            verdict, _ = await asyncio.wait_for(
                asyncio.gather(
                    agent.decide(WRITE.intent, WRITE.stage, **WRITE.decide_args(), on_pause="wait", wait_timeout=20),
                    approve_when_pending(),
                ),
                timeout=15,
            )
            return verdict.verdict, None if verdict.approval is None else verdict.approval.state

    assert asyncio.run(scenario()) == ("ALLOW", "approved")


def test_async_wait_times_out_fail_closed(people: People) -> None:
    async def scenario() -> ApprovalTimeout:
        async with people.aclient("agent") as agent:
            try:
                await agent.decide(WRITE.intent, WRITE.stage, **WRITE.decide_args(), on_pause="wait", wait_timeout=0.3)
            except ApprovalTimeout as exc:
                return exc
        raise AssertionError("the wait did not time out")

    timeout = asyncio.run(scenario())
    assert timeout.verdict.paused and timeout.approval is not None and timeout.approval.pending


def test_approvals_round_trip_with_the_servers_conflict_codes(people: People) -> None:
    with (
        people.client("agent") as agent,
        people.client("alice") as alice,
        people.client("bob") as bob,
        people.client("reader") as reader,
    ):
        paused = agent.decide(DROP.intent, DROP.stage, **DROP.decide_args())
        assert paused.paused and paused.approval_id is not None
        queue = list(alice.approvals.list())
        assert [a.approval_id for a in queue] == [paused.approval_id]
        got = reader.approvals.get(paused.approval_id)
        assert got == queue[0]
        assert (got.state, got.missing, got.owning_team) == (
            "pending",
            ("dba-approval", "compliance-review"),
            "dba-team",
        )
        assert got.binding["target"] == "production.sessions" and len(got.binding_digest) == 64
        assert got.expires_at == paused.pause_expires_at

        with pytest.raises(ApprovalConflict) as needed:
            alice.approvals.approve(paused.approval_id)
        assert (needed.value.status_code, needed.value.code) == (409, "requirement_needed")
        assert isinstance(needed.value, MandateConflict)
        half = alice.approvals.approve(paused.approval_id, requirement="dba-approval", reason="backup verified")
        assert (half.state, half.missing) == ("pending", ("compliance-review",))
        with pytest.raises(ApprovalConflict) as same:
            alice.approvals.approve(paused.approval_id, requirement="compliance-review")
        assert same.value.code == "same_approver"
        done = bob.approvals.approve(paused.approval_id, requirement="compliance-review")
        assert done.state == "approved"
        assert {r.requirement: r.by for r in done.requirements} == {
            "dba-approval": "dba-alice",
            "compliance-review": "compliance-bob",
        }
        with pytest.raises(ApprovalConflict) as late:
            bob.approvals.reject(paused.approval_id)
        assert late.value.code == "approved"
        withdrawn = agent.approvals.withdraw(paused.approval_id, reason="not needed any more")
        assert withdrawn.state == "withdrawn"
        assert [e.kind for e in withdrawn.events] == ["approved", "approved", "withdrawn"]
        assert [a.approval_id for a in alice.approvals.list(state="withdrawn")] == [paused.approval_id]
        assert list(alice.approvals.list()) == []

        # Without the role: the server's 403, not a conflict; another id: not found.
        with pytest.raises(MandateAPIError) as forbidden:
            reader.approvals.reject(paused.approval_id)
        assert forbidden.value.status_code == 403
        with pytest.raises(MandateNotFound):
            alice.approvals.get(uuid.uuid4())


def test_async_approvals_list_get_reject_and_conflict(people: People) -> None:
    with people.client("agent") as agent:
        approval_id = agent.decide(WRITE.intent, WRITE.stage, **WRITE.decide_args()).approval_id
    assert approval_id is not None

    async def scenario() -> tuple[list[str], str, str | None]:
        async with people.aclient("alice") as alice:
            listed = [str(a.approval_id) async for a in alice.approvals.list(page_size=1)]
            rejected = await alice.approvals.reject(approval_id, reason="no")
            try:
                await alice.approvals.approve(approval_id)
            except ApprovalConflict as exc:
                return listed, rejected.state, exc.code
        raise AssertionError("approving a rejected request was not refused")

    assert asyncio.run(scenario()) == ([str(approval_id)], "rejected", "rejected")
