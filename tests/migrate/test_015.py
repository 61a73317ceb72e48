"""Migration 015: the server's own list by domain and agent is answered from idx_decision_events_agent (the index's
expression is the one the list tests), and a filter by part of an agent name still works without it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import sql

from mandate.db import decisions as q
from tests.web.test_api import ORG
from tests.web.test_rollups import CM


class _Explained:
    """Stands in for the connection in `mandate.db.decisions`: EXPLAINs the statement the list would run."""

    def __init__(self, conn: psycopg.AsyncConnection[Any]) -> None:
        self.conn = conn
        self.plan = ""

    async def execute(self, query: Any, params: Any = None) -> _Explained:
        statement = query if isinstance(query, sql.Composable) else sql.SQL(query)
        cursor = await self.conn.execute(sql.SQL("EXPLAIN ") + statement, params)
        self.plan = "\n".join(str(r[0]) for r in await cursor.fetchall())
        return self

    async def fetchall(self) -> list[Any]:
        return []


def _plan(url: str, f: q.DecisionFilter) -> str:
    async def run() -> str:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            # An empty table: the planner would rather scan and sort it; told not to, it must find an index that
            # gives the rows of the filter in the list's order.
            await conn.execute("SET enable_seqscan = off; SET enable_bitmapscan = off; SET enable_sort = off")
            explained = _Explained(conn)
            await q.list_decisions(explained, f, limit=51)  # type: ignore[arg-type]
            return explained.plan

    return asyncio.run(run())


def test_a_list_by_domain_and_agent_reads_the_agent_index(fresh_db: Callable[..., str]) -> None:
    url = fresh_db()
    exact = _plan(url, q.DecisionFilter(organization_id=uuid.UUID(ORG), domain=CM, agent="pre-commit-agent"))
    lines = exact.splitlines()
    at = next(
        i for i, line in enumerate(lines) if "Index Scan using idx_decision_events_agent on decision_events d" in line
    )
    assert "Index Cond:" in lines[at + 1] and "((scope ->> 'agent'::text) = 'pre-commit-agent'::text)" in lines[at + 1]
    assert lines[0].startswith("Limit") and "Sort" not in lines[1], exact  # in the list's order, no sort of the page
    partial = _plan(url, q.DecisionFilter(organization_id=uuid.UUID(ORG), domain=CM, agent="commit", partial=True))
    assert "idx_decision_events_agent" not in partial, partial  # an ILIKE on the value cannot use it
