"""The SQL around a verified backup: the databases a restore creates, drops and sets up, and the statements the
restore command hands to psql (which replaces schema `mandate` in one transaction)."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

#: What psql runs before the archive's SQL when restoring into the same database.
DROP_SCHEMA = "DROP SCHEMA IF EXISTS mandate CASCADE"


def quote_ident(name: str) -> str:
    """`name` as a double-quoted SQL identifier (for statements shown to, or run by, psql)."""
    return '"' + name.replace('"', '""') + '"'


def set_search_path_statement(database: str) -> str:
    """The statement that gives `database` the default search_path Mandate's plain psql commands rely on."""
    return f"ALTER DATABASE {quote_ident(database)} SET search_path = mandate, public"


def database_exists(conn: psycopg.Connection[Any], name: str) -> bool:
    return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None


def create_database(conn: psycopg.Connection[Any], name: str) -> None:
    """CREATE DATABASE `name` (`conn` in autocommit mode)."""
    conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def drop_database(conn: psycopg.Connection[Any], name: str) -> None:
    """DROP DATABASE IF EXISTS `name` (`conn` in autocommit mode)."""
    conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))


def set_search_path(conn: psycopg.Connection[Any], name: str) -> None:
    """Give database `name` the default search_path `mandate, public`."""
    conn.execute(sql.SQL("ALTER DATABASE {} SET search_path = mandate, public").format(sql.Identifier(name)))
