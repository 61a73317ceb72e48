"""Retries are safe: a decision whose answer was lost is retried with the same decision_id and stored once; an
outcome report, which is not idempotent, is not retried once it may have arrived."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import pytest

from mandate.client import AsyncMandateClient, MandateClient, MandateUnavailable, Verdict
from mandate.demo import scenarios as s
from tests.client.conftest import DemoServer
from tests.client.proxy import DroppingProxy

DROP = s.CRITICAL_DROP_WITHOUT_BACKUP


def port_of(url: str) -> int:
    port = urlsplit(url).port
    assert port is not None
    return port


def test_a_lost_answer_is_retried_and_the_decision_stored_once(demo_server: DemoServer) -> None:
    with DroppingProxy(port_of(demo_server.url), drops=1) as proxy:
        with MandateClient(proxy.url, organization_id=s.ORGANIZATION_ID, domain=DROP.domain, backoff=0.01) as c:
            verdict = c.decide(DROP.intent, DROP.stage, **DROP.decide_args())
        assert (proxy.dropped, proxy.connections) == (1, 2)

    # The first attempt was stored; the retry got the stored verdict back, and wrote nothing.
    assert verdict.idempotent_replay
    assert demo_server.count("SELECT count(*) FROM mandate.decision_events") == 1
    assert demo_server.count("SELECT count(*) FROM mandate.verdict_events") == 1
    with MandateClient(demo_server.url) as direct:
        stored = direct.get_verdict(verdict.decision_id)
    assert stored.verdict_id == verdict.verdict_id
    assert (stored.verdict, stored.summary, stored.matched_policy_ids) == (
        verdict.verdict,
        verdict.summary,
        verdict.matched_policy_ids,
    )
    assert stored.explanation == verdict.explanation


def test_async_a_lost_answer_is_retried_and_the_decision_stored_once(demo_server: DemoServer) -> None:
    async def run(url: str) -> Verdict:
        async with AsyncMandateClient(url, organization_id=s.ORGANIZATION_ID, domain=DROP.domain, backoff=0.01) as c:
            return await c.decide(DROP.intent, DROP.stage, **DROP.decide_args())

    with DroppingProxy(port_of(demo_server.url), drops=1) as proxy:
        verdict = asyncio.run(run(proxy.url))

    assert verdict.blocked and verdict.idempotent_replay
    assert demo_server.count("SELECT count(*) FROM mandate.decision_events") == 1


def test_more_lost_answers_than_retries_is_unavailable_but_still_one_decision(demo_server: DemoServer) -> None:
    with (
        DroppingProxy(port_of(demo_server.url), drops=3) as proxy,
        MandateClient(proxy.url, organization_id=s.ORGANIZATION_ID, domain=DROP.domain, retries=2, backoff=0.01) as c,
        pytest.raises(MandateUnavailable, match="after 3 attempts"),
    ):
        c.decide(DROP.intent, DROP.stage, **DROP.decide_args())

    assert demo_server.count("SELECT count(*) FROM mandate.decision_events") == 1


def test_an_outcome_report_is_not_retried_after_it_may_have_arrived(demo_server: DemoServer) -> None:
    with MandateClient(demo_server.url, organization_id=s.ORGANIZATION_ID, domain=DROP.domain) as direct:
        verdict = direct.decide(DROP.intent, DROP.stage, **DROP.decide_args())

    with DroppingProxy(port_of(demo_server.url), drops=1) as proxy:
        with MandateClient(proxy.url, backoff=0.01) as c, pytest.raises(MandateUnavailable, match="after 1 attempt"):
            c.report_outcome(verdict.decision_id, "refused", success=False)
        assert proxy.connections == 1

    outcomes = demo_server.count(
        "SELECT count(*) FROM mandate.audit_timeline_entries WHERE decision_id = %s AND summary LIKE 'outcome%%'",
        [verdict.decision_id],
    )
    assert outcomes == 1
