"""The stored history that shadow evaluation reads: every decision stage of a window with what it was decided as.

One query, streamed with a server-side cursor in key order (decision_id, stage), so memory stays flat whatever the
size of the window. Rows are plain tuples (`HistoryRow`): they cross process boundaries to the evaluation workers.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg import Connection, sql

from mandate.db.decisions import VERDICT_STAGE

HistoryRow = tuple[Any, ...]
"""(decision_id, stage, organization_id, domain, intent, context, attribution, timestamp, stored verdict,
stored scope_id, values the Observe phase filled or None)"""


@dataclass(frozen=True)
class Window:
    """Which stored decisions: since a time, of one organization/domain, under one scope (or its descendants)."""

    since: datetime | None = None
    organization_id: str | None = None
    domain: str | None = None
    scope: str | None = None
    domains: tuple[str, ...] | None = None  # besides `domain`: only these (what an access token may read)


KeyRange = tuple[UUID | None, UUID | None]
"""[low, high) bounds on decision_id (None: unbounded): how a window is cut into chunks read in parallel."""


def query(window: Window, keys: KeyRange = (None, None)) -> tuple[sql.Composed, list[Any]]:
    clauses: list[sql.Composable] = []
    params: list[Any] = []
    low, high = keys
    if low is not None:
        clauses.append(sql.SQL("d.decision_id >= %s"))
        params.append(low)
    if high is not None:
        clauses.append(sql.SQL("d.decision_id < %s"))
        params.append(high)
    if window.since is not None:
        clauses.append(sql.SQL('d."timestamp" >= %s'))
        params.append(window.since)
    if window.organization_id is not None:
        clauses.append(sql.SQL("d.organization_id = %s::uuid"))
        params.append(window.organization_id)
    if window.domain is not None:
        clauses.append(sql.SQL("d.domain = %s"))
        params.append(window.domain)
    if window.domains is not None:
        clauses.append(sql.SQL("d.domain = ANY(%s)"))
        params.append(list(window.domains))
    if window.scope is not None:  # the scope or a descendant (not LIKE: `_` is a legal slug character)
        clauses.append(sql.SQL("(v.scope_id = %s OR left(v.scope_id, length(%s) + 1) = %s || '.')"))
        params += [window.scope, window.scope, window.scope]
    where = sql.SQL("WHERE ") + sql.SQL(" AND ").join(clauses) if clauses else sql.SQL("")
    statement = sql.SQL(
        """SELECT d.decision_id::text, d.stage::text, d.organization_id::text, d.domain, d.intent, d.context,
                  d.scope, d."timestamp", v.verdict::text, v.scope_id, v.explanation -> 'observe' -> 'values'
           FROM mandate.decision_events d
           LEFT JOIN LATERAL (
               SELECT v.verdict, v.scope_id, v.explanation FROM mandate.verdict_events v
               WHERE v.decision_id = d.decision_id AND {stage} = d.stage
               ORDER BY v."timestamp" DESC, v.verdict_id DESC LIMIT 1) v ON true
           {where}
           ORDER BY d.decision_id, d.stage"""
    ).format(stage=sql.SQL(VERDICT_STAGE), where=where)
    return statement, params


def stream(
    conn: Connection[Any], window: Window, keys: KeyRange = (None, None), *, batch: int = 2000
) -> Iterator[list[HistoryRow]]:
    """The window's decision stages (within `keys`) in key order, `batch` rows at a time, from a server-side cursor.

    `conn` must be in a transaction (server-side cursors live in one); the caller chooses its isolation."""
    statement, params = query(window, keys)
    with conn.cursor(name="mandate_shadow_history") as cur:
        cur.itersize = batch
        cur.execute(statement, params)
        while rows := cur.fetchmany(batch):
            yield [tuple(row) for row in rows]


def count(conn: Connection[Any], window: Window, *, limit: int | None = None) -> int:
    """How many decision stages the window holds, or `limit` when it holds at least that many."""
    statement, params = query(window)
    bounded = sql.SQL("{} LIMIT %s").format(statement) if limit is not None else statement
    row = conn.execute(
        sql.SQL("SELECT count(*) FROM ({}) AS h").format(bounded), [*params, *([limit] if limit else [])]
    )
    found = row.fetchone()
    return int(found[0]) if found else 0


def read_consistently(conn: Connection[Any], snapshot: str | None = None) -> None:
    """Make the transaction `conn` is starting repeatable-read and read-only — in the exported `snapshot` when
    given (`export_snapshot`), so that several connections read one history."""
    conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
    if snapshot is not None:
        conn.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(snapshot)))


def export_snapshot(conn: Connection[Any]) -> str:
    """The id of the snapshot `conn`'s transaction reads, for other connections to read it too."""
    row = conn.execute("SELECT pg_export_snapshot()").fetchone()
    assert row is not None
    return str(row[0])
