"""A live Mandate server with the demo governance and an agent token, for the framework guards."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import psycopg
import pytest

from mandate.apply import apply_bundle
from mandate.governance.bundle import load_demo_bundle
from tests.web.conftest import issue_token, start_server

ORG = "550e8400-e29b-41d4-a716-446655440000"
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@dataclass(frozen=True)
class Mandate:
    url: str
    database_url: str
    token: str

    def stored(self, decision_id: Any = None) -> list[dict[str, Any]]:
        """The stored decisions (oldest first), with their verdicts: what Mandate recorded, from PostgreSQL."""
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            cur = conn.execute(
                """SELECT d.decision_id::text, d.intent, d.target, d.actor, d.context, d.scope, v.verdict::text
                   FROM mandate.decision_events d JOIN mandate.verdict_events v USING (decision_id, stage)
                   WHERE %(id)s::uuid IS NULL OR d.decision_id = %(id)s::uuid
                   ORDER BY v."timestamp", d.decision_id""",
                {"id": None if decision_id is None else str(decision_id)},
            )
            names = [c.name for c in cur.description or ()]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def outcomes(self, decision_id: Any) -> list[str]:
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            rows = conn.execute(
                """SELECT summary FROM mandate.audit_timeline_entries
                   WHERE decision_id = %s AND summary LIKE 'outcome reported:%%' ORDER BY "timestamp" """,
                (str(decision_id),),
            ).fetchall()
        return [r[0] for r in rows]


@pytest.fixture
def mandate(db_url: str) -> Iterator[Mandate]:
    with psycopg.connect(db_url, autocommit=True) as conn:
        apply_bundle(conn, load_demo_bundle())
    token = issue_token(db_url, organization_id=ORG, role="agent", domains=frozenset({"config-management"}))
    server, thread, url = start_server(db_url)
    try:
        yield Mandate(url, db_url, token)
    finally:
        server.should_exit = True
        thread.join(timeout=15)


def load_example(name: str) -> ModuleType:
    """An example script as a module (its `main` is not run)."""
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
