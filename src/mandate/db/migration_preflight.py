"""What the migration pre-flight asks the server: who and where it is, its settings, the other sessions on the
database and its activity counters. Read only."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import psycopg

#: The statement that ends a session, as the operator is told to run it.
TERMINATE_SESSION = "SELECT pg_terminate_backend(pid)"
#: The checklist's plain psql statements, which find their tables only through the database's search_path.
UNQUALIFIED_EXAMPLE = "INSERT INTO domains …"

_IDENTITY = (
    "SELECT current_database(), current_setting('server_version'), current_setting('server_version_num')::int, "
    "pg_database_size(current_database()), (SELECT system_identifier::text FROM pg_control_system()), "
    "inet_server_addr()::text, current_user"
)

_SESSIONS = """
SELECT pid, coalesce(usename, ''), coalesce(nullif(application_name, ''), '(no application name)'),
       coalesce(client_addr::text, 'local'), coalesce(state, ''),
       extract(epoch FROM now() - xact_start), extract(epoch FROM now() - backend_start), coalesce(wait_event, '')
FROM pg_stat_activity
WHERE datname = current_database() AND backend_type = 'client backend' AND pid <> pg_backend_pid()
  AND NOT (pid = ANY(%s))
ORDER BY backend_start
"""

_DB_STATS = """
SELECT numbackends, xact_commit, xact_rollback, blks_read, blks_hit, deadlocks, temp_bytes, conflicts,
       stats_reset
FROM pg_stat_database WHERE datname = current_database()
"""

_DATABASE_SEARCH_PATH = (
    "SELECT (SELECT string_agg(c, ', ') FROM pg_db_role_setting s, unnest(s.setconfig) c "
    "        WHERE s.setdatabase = d.oid AND s.setrole = 0 AND c LIKE 'search_path=%%') "
    "FROM pg_database d WHERE d.datname = current_database()"
)


def identity(conn: psycopg.Connection[Any]) -> tuple[str, str, int, int, str, str | None, str]:
    """(database, server_version, server_version_num, database bytes, system identifier, server address or None
    on a Unix socket, user)."""
    row = conn.execute(_IDENTITY).fetchone()
    assert row is not None
    database, version, version_num, db_bytes, system_identifier, address, user = row
    return database, version, version_num, db_bytes, system_identifier, address, user


def server_version(conn: psycopg.Connection[Any]) -> str:
    """The server's version as it names it (`server_version`, e.g. '16.4')."""
    row = conn.execute("SELECT current_setting('server_version')").fetchone()
    assert row is not None
    return str(row[0])


def data_directory(conn: psycopg.Connection[Any]) -> str | None:
    """The server's data directory; None when this role may not read it."""
    try:
        with conn.transaction():
            row = conn.execute("SELECT current_setting('data_directory')").fetchone()
    except psycopg.Error:
        return None
    return None if row is None else str(row[0])


def database_search_path(conn: psycopg.Connection[Any]) -> str | None:
    """The database-level default `search_path=…` setting (ALTER DATABASE … SET), if any."""
    row = conn.execute(_DATABASE_SEARCH_PATH).fetchone()
    return row[0] if row else None


def other_sessions(conn: psycopg.Connection[Any], exclude: Collection[int] = ()) -> list[tuple[Any, ...]]:
    """(pid, user, application, client, state, transaction age s, connected s, wait event) of the client sessions
    on this database other than ours and `exclude`, oldest first."""
    return conn.execute(_SESSIONS, (list(exclude),)).fetchall()


def database_stats(conn: psycopg.Connection[Any]) -> tuple[Any, ...] | None:
    """(numbackends, xact_commit, xact_rollback, blks_read, blks_hit, deadlocks, temp_bytes, conflicts, stats_reset)
    of this database."""
    return conn.execute(_DB_STATS).fetchone()
