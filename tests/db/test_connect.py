"""JSON parameters: orjson where it can, the standard library where orjson refuses, the same documents stored."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import psycopg
from psycopg.types.json import Jsonb

from mandate.db.connect import json_dumps, use_fast_json


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
