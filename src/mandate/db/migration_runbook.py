"""The statements the 008 runbook runs around the migration itself: its session and transaction settings, the lock
on the eight historical tables (and who holds locks on them), ANALYZE of the rebuilt tables, and the plan of the
domain-scoped decisions query after the migration."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from mandate.db.migration_baseline import TABLES


def check_client_connection(conn: psycopg.Connection[Any]) -> None:
    """Have the server notice a vanished client within a second (and roll its transaction back); PostgreSQL 14+."""
    if conn.info.server_version >= 140000:
        conn.execute("SET client_connection_check_interval = '1s'")


def set_timeouts(conn: psycopg.Connection[Any], lock_timeout: str, statement_timeout: str) -> None:
    """lock_timeout and statement_timeout for the rest of the caller's transaction."""
    conn.execute(
        "SELECT set_config('lock_timeout', %s, true), set_config('statement_timeout', %s, true)",
        (lock_timeout, statement_timeout),
    )


def lock_tables(conn: psycopg.Connection[Any]) -> None:
    """ACCESS EXCLUSIVE locks on the eight tables, in a savepoint of the caller's transaction (so that a
    psycopg.errors.LockNotAvailable leaves the transaction usable for the rollback)."""
    tables = sql.SQL(", ").join(sql.Identifier("mandate", t) for t in TABLES)
    with conn.transaction():
        conn.execute(sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(tables))


def lock_holders(conn: psycopg.Connection[Any]) -> list[tuple[int, str, str, str]]:
    """(pid, application, state, lock mode) of the other sessions holding locks on the eight tables."""
    rows = conn.execute(
        "SELECT DISTINCT a.pid, coalesce(nullif(a.application_name, ''), '?'), a.state, l.mode "
        "FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
        "WHERE l.granted AND l.relation = ANY(%s::regclass[]) AND a.pid <> pg_backend_pid()",
        ([f"mandate.{t}" for t in TABLES],),
    ).fetchall()
    return [(r[0], r[1], r[2], r[3]) for r in rows]


def analyze(conn: psycopg.Connection[Any]) -> None:
    """ANALYZE the eight tables (freshly rebuilt tables have no statistics)."""
    for table in TABLES:
        conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier("mandate", table)))


def explain_domain_query(conn: psycopg.Connection[Any], organization_id: str, domain: str) -> list[str]:
    """The plan lines of the API's domain-scoped decisions query (newest 50)."""
    rows = conn.execute(
        "EXPLAIN SELECT * FROM mandate.decision_events WHERE organization_id = %s AND domain = %s "
        'ORDER BY "timestamp" DESC LIMIT 50',
        (organization_id, domain),
    ).fetchall()
    return [r[0] for r in rows]
