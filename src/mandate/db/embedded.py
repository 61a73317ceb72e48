"""The embedded PostgreSQL: a complete server shipped by the `pgserver` package, kept in MANDATE_DATA_DIR.

It is started on first use and left running, so later commands reuse it (start-up costs about a second; a
running server costs nothing). It listens on a Unix socket only, inside the data directory, never on a TCP port.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import psycopg

from mandate.errors import DatabaseUnavailable

DATABASE_NAME = "mandate"


def _pgserver() -> Any:
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); the fallback it picks is fine.
        warnings.simplefilter("ignore")
        import pgserver

        return pgserver


def bin_dir() -> Path:
    """Directory holding the embedded distribution's binaries (postgres, psql, pg_dump, pg_restore, pgbench)."""
    return Path(_pgserver().__file__).parent / "pginstall" / "bin"


def start(data_dir: Path, database: str = DATABASE_NAME) -> str:
    """Start (or reuse) the embedded server under `data_dir` and return a URL of `database`, creating it if needed."""
    pgdata = data_dir / "pgdata"
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            server = _pgserver().get_server(pgdata, cleanup_mode=None)
            admin_url: str = server.get_uri("postgres")
    except Exception as exc:  # pgserver raises plain exceptions from initdb/pg_ctl
        raise DatabaseUnavailable(f"could not start the embedded PostgreSQL in {pgdata}: {exc}") from exc
    ensure_database(admin_url, database)
    url: str = server.get_uri(database)
    return url


def ensure_database(admin_url: str, database: str) -> None:
    """Create `database` on the server behind `admin_url` unless it exists."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone()
        if exists is None:
            conn.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(database)))
