"""Shared fixtures: a real PostgreSQL for the whole session, template databases, and a fresh clone per test.

The server is the one named by MANDATE_TEST_DATABASE_URL when set (any database on it; the tests create and drop
their own databases, prefixed `mandate_test_<pid>_`), otherwise an embedded PostgreSQL started in a temporary
directory for this session. Templates are migrated once; each test gets `CREATE DATABASE … TEMPLATE …`, which
costs tens of milliseconds, so tests stay independent and fast.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql

from mandate.migrate.runner import Runner

PREFIX = f"mandate_test_{os.getpid()}_"


@dataclass
class PgServer:
    """A PostgreSQL server the tests may create databases on."""

    admin_url: str

    def url(self, database: str) -> str:
        parts = urlsplit(self.admin_url)
        return urlunsplit(parts._replace(path="/" + database))

    def admin(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.admin_url, autocommit=True)

    def create(self, name: str, template: str | None = None) -> str:
        with self.admin() as conn:
            query = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
            if template:
                query += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
            conn.execute(query)
            if template:
                # Database-level settings (the default search_path) are not copied by CREATE DATABASE … TEMPLATE.
                for (setting,) in conn.execute(
                    "SELECT unnest(s.setconfig) FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase "
                    "WHERE d.datname = %s AND s.setrole = 0",
                    (template,),
                ).fetchall():
                    key, _, value = setting.partition("=")
                    conn.execute(
                        sql.SQL("ALTER DATABASE {} SET {} = {}").format(
                            sql.Identifier(name), sql.Identifier(key), sql.SQL(value)
                        )
                    )
        return self.url(name)

    def drop(self, name: str) -> None:
        with self.admin() as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    @property
    def major(self) -> int:
        with self.admin() as conn:
            return conn.info.server_version // 10000


def _embedded() -> Iterator[str]:
    # Not under pytest's basetemp: pytest prunes old basetemp directories, which would pull the data directory
    # from under a server that another, concurrent pytest session is still using.
    tmp = Path(tempfile.mkdtemp(prefix="mandate-test-pg-"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver

        server = pgserver.get_server(tmp / "pgdata", cleanup_mode="stop")
    try:
        yield server.get_uri("postgres")
    finally:
        server.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="session")
def pg() -> Iterator[PgServer]:
    external = os.environ.get("MANDATE_TEST_DATABASE_URL")
    if external:
        if not external.startswith(("postgresql://", "postgres://")):
            raise pytest.UsageError("MANDATE_TEST_DATABASE_URL must be a postgresql:// URL")
        server = PgServer(external)
        yield server
        with server.admin() as conn:
            names = [
                r[0] for r in conn.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", (PREFIX + "%",))
            ]
        for name in names:
            server.drop(name)
        return
    yield from (PgServer(url) for url in _embedded())


@pytest.fixture(scope="session")
def templates(pg: PgServer) -> Callable[[int | None], str]:
    """`templates(version)` → the name of a template database migrated to `version` (None = head), built once."""
    built: dict[int | None, str] = {}

    def get(version: int | None) -> str:
        if version not in built:
            name = f"{PREFIX}tpl_{'head' if version is None else version}"
            url = pg.create(name)
            with psycopg.connect(url, autocommit=True) as conn:
                Runner(conn).up(to=version)
            built[version] = name
        return built[version]

    return get


@pytest.fixture
def fresh_db(pg: PgServer, templates: Callable[[int | None], str]) -> Iterator[Callable[..., str]]:
    """`fresh_db(version=None)` → URL of a new database cloned from the template at `version` (None = head)."""
    created: list[str] = []

    def make(version: int | None = None, *, empty: bool = False) -> str:
        name = f"{PREFIX}{uuid.uuid4().hex[:12]}"
        url = pg.create(name, template=None if empty else templates(version))
        created.append(name)
        return url

    yield make
    for name in created:
        pg.drop(name)


@pytest.fixture
def db_url(fresh_db: Callable[..., str]) -> str:
    """A fresh database at the head schema."""
    return fresh_db()


@pytest.fixture
def conn(db_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(db_url, autocommit=True) as c:
        yield c
