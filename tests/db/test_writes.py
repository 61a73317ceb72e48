"""The write path's statements stay within what psycopg caches: its named parameters are converted once per
process, not once per decision (db/writes.py `compact`)."""

from __future__ import annotations

import re

import pytest
from psycopg import _queries

from mandate.db import writes


@pytest.mark.parametrize("name", ["INSERT_DECISION", "INSERT_GOVERNED_DECISION"])
def test_each_write_statement_is_one_psycopg_caches(name: str) -> None:
    statement = getattr(writes, name)
    assert len(statement) <= _queries.MAX_CACHED_STATEMENT_LENGTH
    assert len(set(re.findall(r"%\((\w+)\)s", statement))) <= _queries.MAX_CACHED_STATEMENT_PARAMS


def test_compact_keeps_string_literals_whole() -> None:
    assert writes.compact("SELECT  'a  b',\n   x\tFROM t ") == "SELECT 'a  b', x FROM t"
