"""Migration 014 fills decision_events.verdict by rewriting the table once; the file as first released filled it with
an UPDATE of every row. Both give every stage the same verdict and the same schema, and a database that applied the
released file is at head, not "changed"."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path

import psycopg

from mandate.migrate import catalog, runner
from mandate.migrate.files import load
from tests.helpers import MIGRATIONS, released_chain
from tests.web.test_verdict_listing import CM, ORG, _legacy_rows

EXPECTED_HEAD = Path(__file__).with_name("expected_head_schema.json")


def _legacy_at_013(fresh_db: Callable[..., str]) -> tuple[str, dict[str, str]]:
    url = fresh_db(13)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO mandate.organizations (organization_id, name) VALUES (%s, 'org')", (ORG,))
        conn.execute("INSERT INTO mandate.domains (organization_id, domain, name) VALUES (%s, %s, 'cm')", (ORG, CM))
    return url, _legacy_rows(url, random.Random(15))


def _verdicts(conn: psycopg.Connection[tuple[object, ...]]) -> dict[str, str | None]:
    return dict(conn.execute("SELECT decision_id::text, verdict::text FROM mandate.decision_events").fetchall())


def test_the_released_014_and_this_one_fill_the_same_verdicts_and_reach_the_same_head(
    fresh_db: Callable[..., str], tmp_path: Path
) -> None:
    old = released_chain(tmp_path / "migrations", "014_decision_verdict_index.sql")
    assert old[-1].checksum in runner.EARLIER_CHECKSUMS[14]
    assert old[-1].checksum != next(f for f in load(MIGRATIONS) if f.version == 14).checksum
    filled = {}
    for name, files in (("released", old), ("now", load(MIGRATIONS))):
        url, latest = _legacy_at_013(fresh_db)
        with psycopg.connect(url, autocommit=True) as conn:
            runner.Runner(conn, files=files).up()
            runner.Runner(conn).up()  # the migrations after 014, if any
            st = runner.status(conn)
            assert st.changed == [] and st.pending == [], "the released 014 is an accepted earlier version of the file"
            verdicts = _verdicts(conn)
            comparison = catalog.compare(catalog.describe(conn), json.loads(EXPECTED_HEAD.read_text()))
        assert comparison.structural == [] and comparison.index_warnings == []
        assert len(verdicts) == 30 and sum(v is None for v in verdicts.values()) == 3
        assert {d: v for d, v in verdicts.items() if v is not None} == latest
        filled[name] = len(verdicts)
    assert filled == {"released": 30, "now": 30}


def test_014_rewrites_decision_events_instead_of_updating_each_row(fresh_db: Callable[..., str]) -> None:
    """A rewrite gives the table a new file holding one version of each row; an UPDATE of every row keeps the file
    and leaves a dead version of each row in it (the first release of 014: 2.3 × the table at 1 M decisions)."""
    url, _ = _legacy_at_013(fresh_db)
    with psycopg.connect(url, autocommit=True) as conn:
        before = conn.execute("SELECT pg_relation_filenode('mandate.decision_events')").fetchone()
        runner.Runner(conn).up()
        after = conn.execute("SELECT pg_relation_filenode('mandate.decision_events')").fetchone()
    assert before is not None and after is not None and before != after
