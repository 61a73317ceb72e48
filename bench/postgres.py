"""The PostgreSQL a benchmark runs on: a dedicated embedded server in a temporary directory, or the server named by
MANDATE_BENCH_DATABASE_URL (each benchmark then creates and drops its own databases there).

Nothing is tuned: the embedded server runs with PostgreSQL's defaults (fsync on, synchronous_commit on, durable
commits), which the results record.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

import psycopg
from psycopg import sql

SETTINGS = (
    "server_version",
    "fsync",
    "synchronous_commit",
    "full_page_writes",
    "wal_sync_method",
    "shared_buffers",
    "work_mem",
    "maintenance_work_mem",
    "max_wal_size",
    "checkpoint_timeout",
    "max_connections",
    "commit_delay",
)


@dataclass
class Server:
    """A PostgreSQL server the benchmarks may create databases on."""

    admin_url: str
    embedded: bool
    data_dir: Path | None = None

    def url(self, database: str) -> str:
        parts = urlsplit(self.admin_url)
        return urlunsplit(parts._replace(path="/" + database))

    def libpq_args(self, database: str) -> tuple[list[str], dict[str, str]]:
        """Command-line options (-h/-p/-U/-d) and environment for libpq tools such as pgbench and psql."""
        parts = urlsplit(self.url(database))
        query = parse_qs(parts.query)
        host = query.get("host", [parts.hostname or ""])[0]
        args = ["-h", host, "-d", database]
        if parts.port:
            args += ["-p", str(parts.port)]
        if parts.username:
            args += ["-U", parts.username]
        env = dict(os.environ)
        if parts.password:
            env["PGPASSWORD"] = parts.password
        return args, env

    def admin(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.admin_url, autocommit=True)

    def create(self, prefix: str) -> str:
        """Create a new database named `<prefix>_<random>` with Mandate's default search_path; its name."""
        name = f"bench_{prefix}_{uuid.uuid4().hex[:8]}"
        with self.admin() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return name

    def drop(self, name: str) -> None:
        with self.admin() as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    def facts(self) -> dict[str, str]:
        with self.admin() as conn:
            facts = {name: str(conn.execute(f"SHOW {name}").fetchone()[0]) for name in SETTINGS}  # type: ignore[index]
        facts["where"] = "embedded (pgserver), Unix socket" if self.embedded else "MANDATE_BENCH_DATABASE_URL"
        return facts

    def postmaster_pid(self) -> int | None:
        """The server's main process when it runs on this machine and is visible to us (for CPU accounting)."""
        import psutil

        with self.admin() as conn:
            backend = conn.execute("SELECT pg_backend_pid()").fetchone()[0]  # type: ignore[index]
            try:
                parent = psutil.Process(int(backend)).parent()
            except psutil.Error:
                return None
        return parent.pid if parent is not None else None

    @property
    def major(self) -> int:
        with self.admin() as conn:
            return conn.info.server_version // 10000


@contextmanager
def server() -> Iterator[Server]:
    """The server to benchmark on, stopped and deleted afterwards when it is our own embedded one."""
    external = os.environ.get("MANDATE_BENCH_DATABASE_URL")
    if external:
        yield Server(external, embedded=False)
        return
    base = Path(os.environ.get("MANDATE_BENCH_TMP") or tempfile.gettempdir())
    tmp = Path(tempfile.mkdtemp(prefix="mandate-bench-", dir=base))
    tmp.chmod(0o755)  # the embedded server runs as its own user when we are root
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver

        pg = pgserver.get_server(tmp / "pgdata", cleanup_mode="delete")
    try:
        yield Server(pg.get_uri("postgres"), embedded=True, data_dir=tmp / "pgdata")
    finally:
        pg.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


def database_size(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT pg_database_size(current_database())").fetchone()
    assert row is not None
    return int(row[0])
