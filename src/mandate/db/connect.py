"""Connections. Every connection names itself (application_name) so other sessions can see who holds what."""

from __future__ import annotations

import json
from typing import Any

import orjson
import psycopg
from psycopg.abc import AdaptContext
from psycopg.types.json import set_json_dumps

from mandate.errors import DatabaseUnavailable


def connect(url: str, *, application: str = "mandate", autocommit: bool = True) -> psycopg.Connection[Any]:
    try:
        return psycopg.connect(url, autocommit=autocommit, application_name=application, connect_timeout=10)
    except psycopg.OperationalError as exc:
        raise DatabaseUnavailable(f"cannot connect to the database: {str(exc).strip()}") from exc


def connection_lost(exc: BaseException) -> bool:
    """Whether `exc`, or what caused it, is about the connection or the server rather than about one statement:
    no SQLSTATE (the server never answered: a closed socket, a refused connection) or class 08 / 57P (connection
    exception, operator intervention). Decided by SQLSTATE, never by class alone: `ProgramLimitExceeded` is an
    `OperationalError` and says nothing about the connection."""
    current: BaseException | None = exc
    while current is not None:
        if isinstance(current, psycopg.Error):
            state = current.sqlstate
            if state is None:
                if isinstance(current, psycopg.OperationalError | psycopg.InterfaceError):
                    return True
            elif state.startswith(("08", "57P")):
                return True
        current = current.__cause__
    return False


def server_major(conn: psycopg.Connection[Any]) -> int:
    return conn.info.server_version // 10000


def json_dumps(obj: Any) -> bytes:
    """JSON for json/jsonb parameters: orjson (several times faster than the standard library, the same JSON for
    the values Mandate stores); the standard library for what orjson refuses (integers beyond 64 bits)."""
    try:
        return orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:
        return json.dumps(obj).encode()


def use_fast_json(context: AdaptContext) -> None:
    """Serialise json/jsonb parameters of `context` (a connection) with `json_dumps`."""
    set_json_dumps(json_dumps, context)
