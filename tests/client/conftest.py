"""A real Mandate server with the demo governance applied, on a fresh database, for the SDK and the examples."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest

from mandate.governance.apply import apply_bundle
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
