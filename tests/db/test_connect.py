"""JSON parameters: orjson where it can, the standard library where orjson refuses, the same documents stored;
which errors are a lost connection."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import psycopg
import pytest
from psycopg.types.json import Jsonb

from mandate.db.connect import connection_lost, json_dumps, use_fast_json
from mandate.errors import CheckFailed


def test_json_dumps_matches_the_standard_library_for_stored_values() -> None:
    doc = {"a": [1, 2.5, None, True], "b": {"c": "é ✓"}, "n": -(2**63)}
    assert json.loads(json_dumps(doc)) == doc
    assert json.loads(json_dumps({"huge": 2**70})) == {"huge": 2**70}  # beyond orjson: the standard library


def test_a_connection_with_fast_json_stores_the_same_jsonb(db_url: str) -> None:
    doc = {"when": datetime(2026, 11, 24, tzinfo=UTC).isoformat(), "id": str(uuid.uuid4()), "big": 2**70, "x": [1.5]}
    with psycopg.connect(db_url) as plain, psycopg.connect(db_url) as fast:
        use_fast_json(fast)
        a = plain.execute("SELECT %s::jsonb", [Jsonb(doc)]).fetchone()
        b = fast.execute("SELECT %s::jsonb", [Jsonb(doc)]).fetchone()
    assert a == b == (doc,)


def test_a_lost_connection_is_told_from_a_statement_error_whatever_the_client_learned(db_url: str) -> None:
    # The server's FATAL (57P01) when it was read; a closed socket (no SQLSTATE) when the client never read it.
    with psycopg.connect(db_url, autocommit=True) as victim, psycopg.connect(db_url, autocommit=True) as killer:
        killer.execute("SELECT pg_terminate_backend(%s)", [victim.info.backend_pid])
        with pytest.raises(psycopg.OperationalError) as terminated:
            victim.execute("SELECT 1")
    assert terminated.value.sqlstate in (None, "57P01")
    closed = psycopg.OperationalError("consuming input failed: server closed the connection unexpectedly")
    assert closed.sqlstate is None
    wrapped = CheckFailed("the post-migration checks failed")
    wrapped.__cause__ = closed
    with psycopg.connect(db_url, autocommit=True) as conn, pytest.raises(psycopg.Error) as statement_error:
        conn.execute("SELECT 1 / 0")
    assert statement_error.value.sqlstate == "22012"
    judged = (terminated.value, closed, wrapped, statement_error.value, ValueError("x"))
    assert [connection_lost(e) for e in judged] == [True, True, True, False, False]
