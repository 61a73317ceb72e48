"""The calibration copy of the runtime estimate: a sample of decision_events copied into a temporary table (which
goes with the caller's savepoint), and what it holds."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql


def raise_temp_buffers(conn: psycopg.Connection[Any], size: str) -> bool:
    """Raise the session's temp_buffers to `size` unless it is larger already; False when the session has used a
    temporary table (PostgreSQL then refuses any change) and it stays as it is."""
    try:
        with conn.transaction():
            conn.execute(
                "SELECT set_config('temp_buffers', %s, false)"
                " WHERE pg_size_bytes(%s) > (SELECT setting::bigint * 8192 FROM pg_settings WHERE name = 'temp_buffers')",
                [size, size],
            )
    except psycopg.errors.InvalidParameterValue:
        return False
    return True


def copy_sample(conn: psycopg.Connection[Any], rows: int) -> None:
    """Copy up to `rows` decision events into the temporary table m008_calibration (dropped at COMMIT; the caller
    rolls its savepoint back)."""
    conn.execute(
        sql.SQL(
            "CREATE TEMP TABLE m008_calibration ON COMMIT DROP AS SELECT * FROM mandate.decision_events LIMIT {}"
        ).format(sql.Literal(int(rows)))
    )


def sample_size(conn: psycopg.Connection[Any]) -> tuple[int, int]:
    """(rows, bytes) of the copy."""
    row = conn.execute(
        "SELECT count(*), pg_relation_size('pg_temp.m008_calibration') FROM pg_temp.m008_calibration"
    ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])
