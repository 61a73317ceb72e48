"""The embedded PostgreSQL: a complete server shipped by the `pgserver` package, kept in MANDATE_DATA_DIR.

It is started on first use and left running, so later commands reuse it (start-up costs about a second; a
running server costs nothing). It listens on a Unix socket only, inside the data directory, never on a TCP port.
`mandate db status` says whether it runs, `mandate db stop` stops it (the data stays), and `mandate db start` (or
any command that needs the database) starts it again.
"""

from __future__ import annotations

import importlib
import os
import signal
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from mandate.errors import DatabaseUnavailable

DATABASE_NAME = "mandate"
STOP_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Status:
    """What `mandate db status` shows: where the data lives, and the server process when it runs."""

    data_dir: Path
    pgdata: Path
    initialised: bool  # the data directory holds a database cluster
    pid: int | None  # the postmaster's, when it runs
    url: str | None  # of database `mandate`, when it runs

    @property
    def running(self) -> bool:
        return self.pid is not None


def _pgserver() -> Any:
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); the fallback it picks is fine.
        warnings.simplefilter("ignore")
        import pgserver
        import pgserver.utils

        return pgserver


def bin_dir() -> Path:
    """Directory holding the embedded distribution's binaries (postgres, psql, pg_dump, pg_restore, pgbench)."""
    return Path(_pgserver().__file__).parent / "pginstall" / "bin"


def start(data_dir: Path, database: str = DATABASE_NAME) -> str:
    """Start (or reuse) the embedded server under `data_dir` and return a URL of `database`, creating it if needed."""
    pgdata = data_dir / "pgdata"
    try:
        pgdata.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DatabaseUnavailable(
            f"cannot use {data_dir} as the data directory: {exc.strerror or exc}. "
            "Set MANDATE_DATA_DIR to a directory you can write, or DATABASE_URL to your own PostgreSQL."
        ) from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            server = _pgserver().get_server(pgdata, cleanup_mode=None)
            admin_url: str = server.get_uri("postgres")
    except Exception as exc:  # pgserver raises plain exceptions from initdb/pg_ctl
        raise DatabaseUnavailable(
            f"could not start the embedded PostgreSQL in {pgdata}: {exc}. Its log is {pgdata / 'log'}."
        ) from exc
    try:
        ensure_database(admin_url, database)
    except psycopg.Error as exc:
        raise DatabaseUnavailable(f"the embedded PostgreSQL in {pgdata} does not answer: {exc}") from exc
    url: str = server.get_uri(database)
    return url


def ensure_database(admin_url: str, database: str) -> None:
    """Create `database` on the server behind `admin_url` unless it exists."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone()
        if exists is None:
            conn.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(database)))


def status(data_dir: Path, database: str = DATABASE_NAME) -> Status:
    """Whether the embedded server of `data_dir` runs, read from its postmaster.pid; starts nothing."""
    pgdata = data_dir / "pgdata"
    info = _postmaster(pgdata)
    return Status(
        data_dir=data_dir,
        pgdata=pgdata,
        initialised=(pgdata / "PG_VERSION").is_file(),
        pid=info.pid if info is not None else None,
        url=info.get_uri(database=database) if info is not None else None,
    )


def stop(data_dir: Path, timeout_s: float = STOP_TIMEOUT_S) -> int | None:
    """Stop the embedded server of `data_dir` (a fast shutdown: open sessions are ended, the data is kept) and wait
    until its process has exited. Returns the pid it stopped; None when it was not running."""
    info = _postmaster(data_dir / "pgdata")
    if info is None:
        return None
    pid: int = info.pid
    try:
        os.kill(pid, signal.SIGINT)  # SIGINT is PostgreSQL's fast shutdown
    except ProcessLookupError:
        return None
    except PermissionError:
        raise DatabaseUnavailable(
            f"the embedded PostgreSQL (pid {pid}) belongs to another user; stop it as that user"
        ) from None
    deadline = time.monotonic() + timeout_s
    while _alive(info.process):
        if time.monotonic() > deadline:
            raise DatabaseUnavailable(
                f"the embedded PostgreSQL (pid {pid}) did not stop within {timeout_s:g} s; "
                f"see its log {data_dir / 'pgdata' / 'log'}"
            )
        time.sleep(0.05)
    return pid


def _psutil() -> Any:
    return importlib.import_module("psutil")  # pgserver's dependency, without type stubs


def _postmaster(pgdata: Path) -> Any:
    """pgserver's reading of `pgdata/postmaster.pid` when a PostgreSQL process of that pid runs; None otherwise."""
    try:
        info = _pgserver().utils.PostmasterInfo.read_from_pgdata(pgdata)
    except (OSError, ValueError, AssertionError):  # unreadable, or a file PostgreSQL is still writing
        return None
    if info is None or not _alive(info.process):
        return None
    try:
        if "postgres" not in info.process.name():  # a stale pid file whose pid was reused
            return None
    except _psutil().Error:  # the process ended meanwhile
        return None
    return info


def _alive(process: Any) -> bool:
    """Whether a psutil process runs. A zombie does not: in a container nobody may ever reap the postmaster."""
    if process is None:
        return False
    try:
        return bool(process.is_running()) and process.status() != _psutil().STATUS_ZOMBIE
    except _psutil().Error:
        return False
