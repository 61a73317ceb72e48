"""A real Mandate server with the demo governance applied, on a fresh database, for the SDK and the examples; and the
same with one token per person (an agent, two approvers, a reader), for approvals."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest

from mandate.apply import apply_bundle
from mandate.client import AsyncMandateClient, MandateClient
from mandate.demo import scenarios as s
from mandate.governance.bundle import load_demo_bundle
from tests.web.conftest import issue_token, start_server


@dataclass(frozen=True)
class DemoServer:
    url: str
    database_url: str

    def count(self, query: str, params: Any = None) -> int:
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            row = conn.execute(query, params).fetchone()
        assert row is not None
        return int(row[0])


@pytest.fixture
def demo_server(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[DemoServer]:
    """The demo governance behind a real server; MANDATE_API_TOKEN holds an admin token of the demo organization,
    which every client of the tests picks up, as agents configured by their environment do."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        apply_bundle(conn, load_demo_bundle())
    monkeypatch.setenv("MANDATE_API_TOKEN", issue_token(db_url))
    server, thread, url = start_server(db_url)
    try:
        yield DemoServer(url, db_url)
    finally:
        server.should_exit = True
        thread.join(timeout=15)


@dataclass
class People:
    """A server with the demo governance, and one client per person: the agent, two approvers, a reader."""

    url: str
    db_url: str
    secrets: dict[str, str]

    def client(self, who: str, **options: Any) -> MandateClient:
        return MandateClient(
            self.url, organization_id=s.ORGANIZATION_ID, domain=s.CONFIG_DOMAIN, token=self.secrets[who], **options
        )

    def aclient(self, who: str) -> AsyncMandateClient:
        return AsyncMandateClient(
            self.url, organization_id=s.ORGANIZATION_ID, domain=s.CONFIG_DOMAIN, token=self.secrets[who]
        )

    def count(self, query: str) -> int:
        with psycopg.connect(self.db_url) as conn:
            row = conn.execute(query).fetchone()
        assert row is not None
        return int(row[0])


@contextmanager
def serve_people(db_url: str) -> Iterator[People]:
    """The demo governance behind a real server, and a token for each person (their names are the tokens')."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        apply_bundle(conn, load_demo_bundle())
    domains = frozenset({s.CONFIG_DOMAIN})
    secrets = {
        "agent": issue_token(db_url, role="agent", domains=domains, name="agent-a"),
        "alice": issue_token(db_url, role="approver", domains=domains, name="dba-alice"),
        "bob": issue_token(db_url, role="approver", domains=domains, name="compliance-bob"),
        "reader": issue_token(db_url, role="reader", domains=domains, name="reader"),
    }
    server, thread, url = start_server(db_url)
    try:
        yield People(url, db_url, secrets)
    finally:
        server.should_exit = True
        thread.join(timeout=15)


@pytest.fixture
def people(db_url: str) -> Iterator[People]:
    with serve_people(db_url) as p:
        yield p
