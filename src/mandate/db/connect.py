"""Connections. Every connection names itself (application_name) so other sessions can see who holds what."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import dict_row

from mandate.errors import DatabaseUnavailable


def connect(url: str, *, application: str = "mandate", autocommit: bool = True) -> psycopg.Connection[Any]:
    try:
        return psycopg.connect(url, autocommit=autocommit, application_name=application, connect_timeout=10)
    except psycopg.OperationalError as exc:
        raise DatabaseUnavailable(f"cannot connect to the database: {str(exc).strip()}") from exc


def connect_dict(url: str, *, application: str = "mandate") -> psycopg.Connection[dict[str, Any]]:
    try:
        return psycopg.connect(
            url, autocommit=True, application_name=application, connect_timeout=10, row_factory=dict_row
        )
    except psycopg.OperationalError as exc:
        raise DatabaseUnavailable(f"cannot connect to the database: {str(exc).strip()}") from exc


def server_major(conn: psycopg.Connection[Any]) -> int:
    return conn.info.server_version // 10000
