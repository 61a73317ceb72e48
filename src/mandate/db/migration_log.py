"""`mandate.migration_log`: one row per applied migration (or adopted baseline), written by the runner in the
migration's own transaction, and the transaction-local settings it applies a migration with."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import psycopg

DDL = """
CREATE SCHEMA IF NOT EXISTS mandate;
CREATE TABLE IF NOT EXISTS mandate.migration_log (
    migration_version integer PRIMARY KEY,
    name text NOT NULL,
    description text NOT NULL DEFAULT '',
    checksum text,
    started_at timestamptz NOT NULL,
    finished_at timestamptz NOT NULL,
    duration_ms numeric(12, 3) NOT NULL,
    applied_by text NOT NULL DEFAULT current_user,
    tool_version text NOT NULL,
    baseline boolean NOT NULL DEFAULT false,
    details jsonb NOT NULL DEFAULT '{}'::jsonb
);
"""


def create(conn: psycopg.Connection[Any]) -> None:
    """Create schema mandate and migration_log when they do not exist."""
    conn.execute(DDL)


def record_baseline(
    conn: psycopg.Connection[Any], version: int, name: str, description: str, tool: str, details: Mapping[str, Any]
) -> None:
    """Record `version` as adopted from a legacy database (never run here)."""
    conn.execute(
        "INSERT INTO mandate.migration_log (migration_version, name, description, checksum, "
        "started_at, finished_at, duration_ms, tool_version, baseline, details) "
        "VALUES (%s, %s, %s, NULL, now(), now(), 0, %s, true, %s)",
        (version, name, description, tool, json.dumps(dict(details))),
    )


def record_applied(
    conn: psycopg.Connection[Any],
    *,
    version: int,
    name: str,
    description: str,
    checksum: str,
    started_at: datetime,
    duration_ms: float,
    tool: str,
    details: Mapping[str, Any],
) -> None:
    """Record `version` as applied now, in the migration's transaction (finished_at: the clock at this insert)."""
    conn.execute(
        "INSERT INTO mandate.migration_log (migration_version, name, description, checksum, "
        "started_at, finished_at, duration_ms, tool_version, details) "
        "VALUES (%s, %s, %s, %s, %s, clock_timestamp(), %s, %s, %s)",
        (version, name, description, checksum, started_at, round(duration_ms, 3), tool, json.dumps(dict(details))),
    )


def applied(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    """(version, name, checksum, started_at, duration_ms, applied_by, tool_version, baseline) per row, by version."""
    return conn.execute(
        "SELECT migration_version, name, checksum, started_at, duration_ms, applied_by, tool_version, baseline "
        "FROM mandate.migration_log ORDER BY migration_version"
    ).fetchall()


def details(conn: psycopg.Connection[Any], version: int) -> dict[str, Any] | None:
    """The `details` recorded with `version`; None when it is not applied."""
    row = conn.execute("SELECT details FROM mandate.migration_log WHERE migration_version = %s", (version,)).fetchone()
    return row[0] if row else None


def entry(conn: psycopg.Connection[Any], version: int) -> dict[str, Any] | None:
    """The whole row of `version` as JSON; None when it is not applied."""
    row = conn.execute(
        "SELECT row_to_json(l) FROM mandate.migration_log l WHERE migration_version = %s", (version,)
    ).fetchone()
    return row[0] if row else None


def clock(conn: psycopg.Connection[Any]) -> datetime:
    """The server's clock now (clock_timestamp(), not the transaction's start)."""
    row = conn.execute("SELECT clock_timestamp()").fetchone()
    assert row is not None
    started: datetime = row[0]
    return started


def apply_settings(conn: psycopg.Connection[Any], lock_timeout: str, statement_timeout: str) -> None:
    """Transaction-local settings for a migration: timeouts, and the marker that the runner records it."""
    for name, value in (("lock_timeout", lock_timeout), ("statement_timeout", statement_timeout)):
        conn.execute("SELECT set_config(%s, %s, true)", (name, value))
    conn.execute("SELECT set_config('mandate.runner', 'on', true)")
