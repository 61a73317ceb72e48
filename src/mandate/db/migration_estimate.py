"""The calibration copy of the runtime estimate: a sample of decision_events read once into a temporary table, then
copied into another (both go with the caller's savepoint), and what the copy holds."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql


def raise_temp_buffers(conn: psycopg.Connection[Any], size: str) -> None:
    """Raise the session's temp_buffers to `size` unless it is larger already. A session that has used a temporary
    table keeps what it has (PostgreSQL refuses any change then)."""
    try:
        with conn.transaction():
            conn.execute(
                "SELECT set_config('temp_buffers', %s, false)"
                " WHERE pg_size_bytes(%s) > (SELECT setting::bigint * 8192 FROM pg_settings WHERE name = 'temp_buffers')",
                [size, size],
            )
    except psycopg.errors.InvalidParameterValue:
        pass


def read_sample(conn: psycopg.Connection[Any], rows: int) -> None:
    """Read the first `rows` decision events into the temporary table m008_sample (dropped at COMMIT; the caller rolls
    its savepoint back), once per calibration, so that every timed copy reads the same rows from the backend's memory.

    Timed straight from the table, a copy of a table larger than a quarter of shared_buffers read through a small ring
    of buffers, every page from the operating system, and (synchronize_seqscans) started where the table's last scan
    had stopped: the 150 copies of one calibration walked 1.8 GB of a 1 M-decision database, each at what the kernel's
    cache made its pages cost (bench/findings.md, "The calibration's source")."""
    conn.execute("SET LOCAL synchronize_seqscans = off")
    conn.execute(
        sql.SQL(
            "CREATE TEMP TABLE m008_sample ON COMMIT DROP AS SELECT * FROM mandate.decision_events LIMIT {}"
        ).format(sql.Literal(int(rows)))
    )


def read_through_ring(conn: psycopg.Connection[Any]) -> bool:
    """Whether a sequential scan of decision_events reads through a ring of buffers: PostgreSQL's rule for a table of
    more than a quarter of shared_buffers."""
    row = conn.execute(
        "SELECT pg_relation_size('mandate.decision_events') / current_setting('block_size')::bigint"
        " > (SELECT setting::bigint FROM pg_settings WHERE name = 'shared_buffers') / 4"
    ).fetchone()
    assert row is not None
    return bool(row[0])


def copy_sample(conn: psycopg.Connection[Any]) -> None:
    """Copy the sample (`read_sample`) into the temporary table m008_calibration (dropped at COMMIT)."""
    conn.execute("CREATE TEMP TABLE m008_calibration ON COMMIT DROP AS SELECT * FROM pg_temp.m008_sample")


def sample_size(conn: psycopg.Connection[Any]) -> tuple[int, int]:
    """(rows, bytes) of the copy."""
    row = conn.execute(
        "SELECT count(*), pg_relation_size('pg_temp.m008_calibration') FROM pg_temp.m008_calibration"
    ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])
