"""The migration lock: a session-level advisory lock every migration runner takes, and the question who holds it
(the server asks it to answer 503 meanwhile)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql

#: The two-key advisory lock every runner takes ('MAND', 'MIGR'); the server reads it to answer 503 meanwhile.
LOCK_KEYS = (0x4D414E44, 0x4D494752)

#: Who holds the migration lock in this database: pid, application, user, connected since (no row: nobody).
HOLDER_QUERY = """
SELECT a.pid, coalesce(nullif(a.application_name, ''), '(no application name)') AS application, a.usename,
       a.backend_start
FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.granted AND l.classid = %s AND l.objid = %s AND l.objsubid = 2
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
LIMIT 1
"""


def acquire(conn: psycopg.Connection[Any], wait_s: float) -> None:
    """Take the lock, waiting at most `wait_s`; psycopg.errors.LockNotAvailable when it is still held then."""
    conn.execute(sql.SQL("SET lock_timeout = {}").format(sql.Literal(f"{int(wait_s * 1000)}ms")))
    try:
        conn.execute("SELECT pg_advisory_lock(%s, %s)", LOCK_KEYS)
    finally:
        conn.execute("RESET lock_timeout")


def release(conn: psycopg.Connection[Any]) -> None:
    conn.execute("SELECT pg_advisory_unlock(%s, %s)", LOCK_KEYS)


def holder(conn: psycopg.Connection[Any]) -> tuple[int, str, str, datetime] | None:
    """(pid, application, user, connected since) of the session holding the lock, if any."""
    row = conn.execute(HOLDER_QUERY, LOCK_KEYS).fetchone()
    return (row[0], row[1], row[2], row[3]) if row else None
