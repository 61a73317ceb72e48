"""The write path's statements: sent with PostgreSQL's own placeholders (`writes.raw`, `insert_decisions`), so
psycopg converts none of them per decision, whatever their length; the multi-row form numbers its rows' parameters
as `decision_rows` lays them out."""

from __future__ import annotations

import re

import pytest

from mandate.db import writes


@pytest.mark.parametrize("name", ["INSERT_DECISION", "INSERT_GOVERNED_DECISION"])
def test_each_write_statement_has_a_raw_form_with_every_parameter_numbered_once(name: str) -> None:
    statement = getattr(writes, name)
    raw, names = writes.raw(statement)
    assert names == tuple(dict.fromkeys(re.findall(r"%\((\w+)\)s", statement)))  # first appearance, once each
    assert "%(" not in raw.decode()
    assert sorted({int(n) for n in re.findall(r"\$(\d+)", raw.decode())}) == list(range(1, len(names) + 1))
    assert writes.raw(statement) is writes.raw(statement)  # converted once per process
    assert writes.raw_params(names, {n: i for i, n in enumerate(names)}) == list(range(len(names)))


@pytest.mark.parametrize("count", [1, 2, 32])
def test_the_multi_row_statement_numbers_every_row_in_order(count: int) -> None:
    text = writes.insert_decisions(count).decode()
    width = len(writes.DECISION_INPUT) + 1
    numbers = [int(n) for n in re.findall(r"\$(\d+)", text)]
    assert numbers == list(range(1, count * width + 1))
    params = [{name: (row, name) for name, _ in writes.DECISION_INPUT} for row in range(count)]
    laid_out = writes.decision_rows(params)
    assert len(laid_out) == count * width
    assert laid_out[:2] == [0, (0, "decision_id")] and laid_out[width * (count - 1)] == count - 1
    with pytest.raises(ValueError, match="at least 1"):
        writes.insert_decisions(0)


def test_compact_keeps_string_literals_whole() -> None:
    assert writes.compact("SELECT  'a  b',\n   x\tFROM t ") == "SELECT 'a  b', x FROM t"
