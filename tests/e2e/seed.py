"""Test data for the UI: the demo governance (`mandate apply --demo`) and the demo decisions (`mandate demo`'s
scenarios, sent through the SDK as the example agents send them), at fixed ids and times.

`seed_decisions` sends the demo scenarios round after round, 73 minutes apart over three days (so the
verdicts-over-time chart has something to draw and the list has pages), plus two cases the demo has not: a decision
for an intent without a spec (a governance gap) and one decision through two stages. Every verdict is checked
against the scenario's expected one. Decision ids come from a fixed namespace, so runs are reproducible.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import httpx
import psycopg

from mandate.apply import apply_bundle
from mandate.client import MandateClient
from mandate.demo.scenarios import (
    ALL,
    CONFIG_DOMAIN,
    LARGE_PRODUCTION_WRITE,
    ORGANIZATION_ID,
    SUPPORT_DOMAIN,
    Scenario,
)
from mandate.governance.bundle import load_demo_bundle
from tests.conftest import PREFIX, PgServer
from tests.web.conftest import LiveServer, bearer, issue_token, start_server

ORG = ORGANIZATION_ID
CM = CONFIG_DOMAIN
CS = SUPPORT_DOMAIN
START = datetime(2026, 11, 21, 6, 0, tzinfo=UTC)
_NS = uuid.UUID("6d616e64-6174-6500-0000-000000000008")

GAP = Scenario(
    agent="ui-tests",
    name="an intent no spec governs",
    domain=CM,
    intent="dns.update",
    stage="proposed",
    actor="netops-agent",
    target="api.example.com",
    context={"ttl": 60},
    scope={"service": "dns-tool", "agent": "netops-agent", "environment": "production"},
    expected="OBSERVE",
)
SCENARIOS = (*ALL, GAP)


def apply_demo_governance(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        apply_bundle(conn, load_demo_bundle())


def decision_id(n: int) -> uuid.UUID:
    return uuid.uuid5(_NS, f"decision-{n}")


@dataclass
class Seeded:
    """What was sent: decision ids by verdict, stages per domain, a BLOCK and the multi-stage decision."""

    ids: dict[str, list[str]]
    by_domain: dict[str, int]
    block_drop: str  # the critical drop without a backup: BLOCK by policy-block-unbackedup-drops-v1
    multi_stage: str
    total: int


def _send(mandate: MandateClient, n: int, scenario: Scenario, when: datetime) -> str:
    verdict = mandate.decide(
        scenario.intent, scenario.stage, **scenario.decide_args(), decision_id=decision_id(n), timestamp=when
    )
    assert verdict.verdict == scenario.expected, (scenario.name, verdict.summary)
    if scenario.stage == "executed":
        mandate.report_outcome(verdict.decision_id, "executed", success=True, details={"execution_success": True})
    return str(verdict.decision_id)


def seed_decisions(base_url: str, count: int = 60, token: str | None = None) -> Seeded:
    """Send `count` decisions (cycling through SCENARIOS, oldest first) and one decision through two stages."""
    ids: dict[str, list[str]] = {}
    by_domain: dict[str, int] = {}
    block_drop = ""
    with MandateClient(base_url, organization_id=ORG, timeout=30, token=token) as mandate:
        for n in range(count):
            scenario = SCENARIOS[n % len(SCENARIOS)]
            sent = _send(mandate, n, scenario, START + timedelta(minutes=73 * n))
            ids.setdefault(scenario.expected, []).append(sent)
            by_domain[scenario.domain] = by_domain.get(scenario.domain, 0) + 1
            if scenario.intent == "database.drop_table" and not block_drop:
                block_drop = sent
        # A file write proposed (no spec governs that stage: a gap), then checked before commit (PAUSE).
        multi = 10_000
        _send(mandate, multi, replace(LARGE_PRODUCTION_WRITE, stage="proposed", expected="OBSERVE"), START)
        _send(mandate, multi, LARGE_PRODUCTION_WRITE, START + timedelta(minutes=1))
        mandate.report_outcome(decision_id(multi), "held for review", success=True)
    ids["PAUSE"].append(str(decision_id(multi)))
    by_domain[CM] += 2
    return Seeded(ids, by_domain, block_drop, str(decision_id(multi)), count + 2)


@contextmanager
def seeded_server(db_url: str, *, decisions: int = 60) -> Iterator[tuple[LiveServer, Seeded]]:
    """A real server on `db_url` with the demo governance applied and `decisions` demo decisions sent to it."""
    apply_demo_governance(db_url)
    server, thread, url = start_server(db_url)
    token = issue_token(db_url, organization_id=ORG)  # an admin of the demo organization: every domain
    try:
        with httpx.Client(base_url=url, timeout=30, headers=bearer(token)) as client:
            yield LiveServer(url, db_url, client, token), seed_decisions(url, decisions, token)
    finally:
        server.should_exit = True
        thread.join(timeout=15)


@contextmanager
def scratch_database(pg: PgServer, template: str) -> Iterator[str]:
    """A database of its own for a module's tests (cloned from `template`), dropped afterwards."""
    name = f"{PREFIX}{uuid.uuid4().hex[:12]}"
    url = pg.create(name, template=template)
    try:
        yield url
    finally:
        pg.drop(name)
