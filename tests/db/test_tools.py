"""Client tools are chosen to fit the server: a pg_dump older than the server refuses to dump it."""

from __future__ import annotations

import pytest

from mandate.db import tools
from mandate.errors import ToolNotFound
from tests.conftest import PgServer


@pytest.mark.parametrize("name", ["psql", "pg_dump", "pg_restore"])
def test_the_chosen_tool_is_at_least_as_new_as_the_server(pg: PgServer, name: str) -> None:
    tool = tools.find(name, pg.major)
    assert tool.major >= pg.major
    assert tool.path.name == name


def test_the_closest_fitting_major_version_wins() -> None:
    found = [tools.find("pg_dump", m).major for m in (12, 16)]
    assert found[1] == 16
    assert 12 <= found[0] <= 16


def test_no_fitting_tool_names_what_was_found() -> None:
    with pytest.raises(ToolNotFound, match=r"no pg_dump with major version >= 99 .*found: .*pg_dump \(16\)"):
        tools.find("pg_dump", 99)
