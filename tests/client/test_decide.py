"""`decide` against a real server with the demo governance: typed verdicts, idempotent re-sends (sync and async)."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from mandate.client import AsyncMandateClient, MandateClient, MandateError, MandateValidationError, Verdict
from mandate.demo import scenarios as s
from tests.client.conftest import DemoServer

SMALL_WRITE = dataclasses.replace(
    s.LARGE_PRODUCTION_WRITE, context={"content_length": 1000, "content_type": "yaml"}, expected="ALLOW"
)


@pytest.fixture
def client(demo_server: DemoServer) -> Iterator[MandateClient]:
    with MandateClient(demo_server.url, organization_id=s.ORGANIZATION_ID, domain=s.CONFIG_DOMAIN) as c:
        yield c


@pytest.mark.parametrize("scenario", s.ALL, ids=lambda sc: f"{sc.agent}-{sc.intent}-{sc.expected}")
def test_every_demo_scenario_gets_its_verdict(client: MandateClient, scenario: s.Scenario) -> None:
    verdict = client.decide(scenario.intent, scenario.stage, **scenario.decide_args())

    assert verdict.verdict == scenario.expected
    assert verdict.matched_policy_ids == scenario.expected_policies
    assert verdict.domain == scenario.domain
    assert verdict.organization_id == s.ORGANIZATION_ID
    assert verdict.summary.startswith(scenario.expected)
    assert verdict.explanation["summary"] == verdict.summary
    assert not verdict.idempotent_replay


def test_pause_carries_requirements_expiry_and_authority(client: MandateClient) -> None:
    sc = s.LARGE_PRODUCTION_WRITE
    before = datetime.now(UTC)

    verdict = client.decide(sc.intent, sc.stage, **sc.decide_args())

    assert (verdict.paused, verdict.allowed, verdict.blocked, verdict.observed) == (True, False, False, False)
    assert verdict.pause_requires == ("compliance-review",)
    assert verdict.pause_expires_at is not None and verdict.pause_expires_at.tzinfo is not None
    assert verdict.pause_expires_at > before
    assert (verdict.spec_id, verdict.spec_version) == ("spec-pre-commit-file-write-v1", "1")
    assert (verdict.scope_id, verdict.owning_team) == ("config-management.prod.config-writer", "config-team")
    assert verdict.snapshot_version == 1 and verdict.snapshot_id
    assert verdict.winning_policy_id == "policy-pause-large-files-v1"
    assert verdict.reason == "policy"
    assert isinstance(verdict.verdict_id, uuid.UUID)


def test_the_verdict_is_frozen(client: MandateClient) -> None:
    verdict = client.decide(SMALL_WRITE.intent, SMALL_WRITE.stage, **SMALL_WRITE.decide_args())

    assert verdict.allowed
    with pytest.raises(dataclasses.FrozenInstanceError):
        verdict.verdict = "BLOCK"  # type: ignore[misc]  # the point of the test


def test_given_decision_id_and_timestamp_are_sent(client: MandateClient, demo_server: DemoServer) -> None:
    decision_id = uuid.uuid4()
    at = datetime(2026, 1, 31, 12, 0, tzinfo=UTC)

    verdict = client.decide(
        SMALL_WRITE.intent, SMALL_WRITE.stage, **SMALL_WRITE.decide_args(), decision_id=str(decision_id), timestamp=at
    )

    assert verdict.decision_id == decision_id
    stored = client.get_decision(decision_id)
    assert datetime.fromisoformat(stored["timestamp"]) == at


def test_identical_resend_is_an_idempotent_replay(client: MandateClient, demo_server: DemoServer) -> None:
    sc = s.CRITICAL_DROP_WITHOUT_BACKUP
    decision_id = uuid.uuid4()

    first = client.decide(sc.intent, sc.stage, **sc.decide_args(), decision_id=decision_id)
    again = client.decide(sc.intent, sc.stage, **sc.decide_args(), decision_id=decision_id)

    assert again.idempotent_replay and not first.idempotent_replay
    assert again.verdict_id == first.verdict_id
    assert again.explanation == first.explanation
    assert demo_server.count("SELECT count(*) FROM mandate.decision_events WHERE decision_id = %s", [decision_id]) == 1


def test_each_call_without_decision_id_is_a_new_decision(client: MandateClient) -> None:
    sc = s.EXECUTED_LOGIN
    one = client.decide(sc.intent, sc.stage, **sc.decide_args())
    two = client.decide(sc.intent, sc.stage, **sc.decide_args())

    assert one.decision_id != two.decision_id


def test_organization_and_domain_can_be_given_per_call(demo_server: DemoServer) -> None:
    sc = s.SEAT_INFORMATION
    with MandateClient(demo_server.url) as bare:
        with pytest.raises(ValueError, match="organization_id is required"):
            bare.decide(sc.intent, sc.stage, **sc.decide_args())
        args = {**sc.decide_args(), "domain": None}
        with pytest.raises(ValueError, match="domain is required"):
            bare.decide(sc.intent, sc.stage, **args, organization_id=s.ORGANIZATION_ID)
        verdict = bare.decide(sc.intent, sc.stage, **sc.decide_args(), organization_id=uuid.UUID(s.ORGANIZATION_ID))

    assert verdict.allowed


def test_a_bad_base_url_is_refused_at_construction() -> None:
    with pytest.raises(ValueError, match="http:// or https://"):
        MandateClient("ftp://example.org")


def test_async_decide_and_replay(demo_server: DemoServer) -> None:
    async def run() -> tuple[Verdict, Verdict]:
        sc = s.REFUND_250_DEPARTED
        async with AsyncMandateClient(demo_server.url, organization_id=s.ORGANIZATION_ID, domain=sc.domain) as c:
            decision_id = uuid.uuid4()
            first = await c.decide(sc.intent, sc.stage, **sc.decide_args(), decision_id=decision_id)
            again = await c.decide(sc.intent, sc.stage, **sc.decide_args(), decision_id=decision_id)
            return first, again

    first, again = asyncio.run(run())

    assert first.paused and first.pause_requires == ("compliance-team",)
    assert first.explanation["observe"]["values"]["monetary_amount"] == 250
    assert again.idempotent_replay and again.verdict_id == first.verdict_id


def test_decide_many_answers_each_decision_in_order_and_a_bad_one_alone(client: MandateClient) -> None:
    resent = uuid.uuid4()
    first = client.decide(s.LARGE_PRODUCTION_WRITE.intent, "pre_commit", decision_id=resent,
                          **s.LARGE_PRODUCTION_WRITE.decide_args())  # fmt: skip
    good = [{"intent": sc.intent, "stage": sc.stage, **sc.decide_args()} for sc in s.ALL]
    bad_signal = {**good[0], "context": {"content_length": "large", "content_type": "yaml"}}
    again = {**good[0], "decision_id": resent}

    results = client.decide_many([*good, bad_signal, again])

    verdicts = results[: len(good)]
    assert [v.verdict for v in verdicts if isinstance(v, Verdict)] == [sc.expected for sc in s.ALL]
    assert isinstance(results[-2], MandateValidationError) and results[-2].code == "invalid_signals"
    replay = results[-1]
    assert isinstance(replay, Verdict) and replay.idempotent_replay and replay.verdict_id == first.verdict_id
    with pytest.raises(TypeError, match="colour"):
        client.decide_many([{**good[0], "colour": "red"}])
    with pytest.raises(ValueError, match="1 to 1000"):
        client.decide_many([])


def test_async_decide_many(demo_server: DemoServer) -> None:
    async def run() -> list[Verdict | MandateError]:
        async with AsyncMandateClient(demo_server.url, organization_id=s.ORGANIZATION_ID) as c:
            return await c.decide_many([{"intent": sc.intent, "stage": sc.stage, **sc.decide_args()} for sc in s.ALL])

    results = asyncio.run(run())
    assert [r.verdict for r in results if isinstance(r, Verdict)] == [sc.expected for sc in s.ALL]
