"""The read methods (sync and async) against a real server: decision, verdict, timeline, lists across pages,
replay, health, and outcome reports."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from mandate.client import AsyncMandateClient, MandateClient
from mandate.demo import scenarios as s
from tests.client.conftest import DemoServer

LOGIN = s.EXECUTED_LOGIN


class CountingTransport(httpx.HTTPTransport):
    """A real transport that remembers the query of each request it sends."""

    def __init__(self) -> None:
        super().__init__()
        self.queries: list[dict[str, str]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.queries.append(dict(request.url.params))
        return super().handle_request(request)


@pytest.fixture
def client(demo_server: DemoServer) -> Iterator[MandateClient]:
    with MandateClient(demo_server.url, organization_id=s.ORGANIZATION_ID, domain=s.CONFIG_DOMAIN) as c:
        yield c


def test_get_decision_verdict_and_timeline(client: MandateClient) -> None:
    verdict = client.decide(LOGIN.intent, LOGIN.stage, **LOGIN.decide_args())
    entry = client.report_outcome(verdict.decision_id, "executed", success=True, details={"execution_success": True})

    decision = client.get_decision(verdict.decision_id)
    stored = client.get_verdict(str(verdict.decision_id))
    timeline = client.get_timeline(verdict.decision_id)

    assert decision["decision_id"] == str(verdict.decision_id)
    assert decision["context"]["execution_success"] is True  # undeclared, stored as sent
    assert [st["stage"] for st in decision["stages"]] == ["executed"]
    assert stored.verdict_id == verdict.verdict_id and stored.observed
    assert stored.matched_policy_ids == verdict.matched_policy_ids
    assert (stored.scope_id, stored.owning_team, stored.spec_id) == (
        verdict.scope_id,
        verdict.owning_team,
        verdict.spec_id,
    )
    assert stored.explanation == verdict.explanation
    assert entry["summary"] == "outcome reported: executed"
    assert entry["details"] == {"outcome": "executed", "success": True, "execution_success": True}
    assert [e["summary"] for e in timeline] == ["decision received", verdict.summary, "outcome reported: executed"]


def test_get_verdict_of_a_given_stage(client: MandateClient) -> None:
    write = s.LARGE_PRODUCTION_WRITE
    decision_id = uuid.uuid4()
    proposed = client.decide(write.intent, "proposed", **write.decide_args(), decision_id=decision_id)
    pre_commit = client.decide(write.intent, "pre_commit", **write.decide_args(), decision_id=decision_id)

    assert client.get_verdict(decision_id, stage="proposed").verdict_id == proposed.verdict_id
    assert client.get_verdict(decision_id, stage="pre_commit").verdict_id == pre_commit.verdict_id
    assert proposed.observed and proposed.reason == "gap"  # no spec for file.write at stage proposed
    assert pre_commit.paused


def test_list_decisions_follows_the_cursor_page_by_page(demo_server: DemoServer) -> None:
    transport = CountingTransport()
    with MandateClient(demo_server.url, organization_id=s.ORGANIZATION_ID, transport=transport) as c:
        made = [c.decide(LOGIN.intent, LOGIN.stage, **LOGIN.decide_args()).decision_id for _ in range(5)]
        c.decide(s.EXECUTED_EXPORT.intent, "executed", **s.EXECUTED_EXPORT.decide_args())
        transport.queries.clear()

        listed = list(c.list_decisions(page_size=2, intent="user.login", domain=s.CONFIG_DOMAIN))

    assert sorted(uuid.UUID(d["decision_id"]) for d in listed) == sorted(made)
    assert len(transport.queries) == 3  # 2 + 2 + 1
    assert "cursor" not in transport.queries[0]
    assert all("cursor" in q and q["limit"] == "2" and q["intent"] == "user.login" for q in transport.queries[1:])
    assert all(q["organization_id"] == s.ORGANIZATION_ID for q in transport.queries)


def test_list_decisions_is_lazy(demo_server: DemoServer) -> None:
    transport = CountingTransport()
    with MandateClient(demo_server.url, organization_id=s.ORGANIZATION_ID, transport=transport) as c:
        for _ in range(3):
            c.decide(LOGIN.intent, LOGIN.stage, **LOGIN.decide_args())
        transport.queries.clear()

        first = next(c.list_decisions(page_size=1, verdict="OBSERVE"))

    assert first["verdict"] == "OBSERVE"
    assert len(transport.queries) == 1


def test_replay_reproduces_the_stored_verdict(client: MandateClient) -> None:
    sc = s.REFUND_COMPLETED_FLIGHT
    verdict = client.decide(sc.intent, sc.stage, **sc.decide_args())

    replay = client.replay(verdict.decision_id)

    assert replay["identical"] is True
    assert [(r["stored_verdict"], r["replayed_verdict"]) for r in replay["stages"]] == [("BLOCK", "BLOCK")]


def test_health(client: MandateClient) -> None:
    health = client.health()

    assert (health["status"], health["database"]) == ("ok", "reachable")
    assert health["schema_version"] == health["required_schema_version"]


def test_async_reads(demo_server: DemoServer) -> None:
    async def run() -> dict[str, Any]:
        async with AsyncMandateClient(demo_server.url, organization_id=s.ORGANIZATION_ID, domain=LOGIN.domain) as c:
            made = [(await c.decide(LOGIN.intent, LOGIN.stage, **LOGIN.decide_args())).decision_id for _ in range(3)]
            entry = await c.report_outcome(made[0], "executed", success=True)
            return {
                "made": made,
                "entry": entry,
                "listed": [d async for d in c.list_decisions(page_size=2, intent=LOGIN.intent)],
                "decision": await c.get_decision(made[0]),
                "verdict": await c.get_verdict(made[0]),
                "timeline": await c.get_timeline(made[0]),
                "replay": await c.replay(made[0]),
                "health": await c.health(),
            }

    got = asyncio.run(run())

    assert sorted(uuid.UUID(d["decision_id"]) for d in got["listed"]) == sorted(got["made"])
    assert got["decision"]["intent"] == LOGIN.intent
    assert got["verdict"].observed
    assert got["timeline"][-1]["summary"] == "outcome reported: executed"
    assert got["entry"]["details"]["success"] is True
    assert got["replay"]["identical"] is True
    assert got["health"]["status"] == "ok"
