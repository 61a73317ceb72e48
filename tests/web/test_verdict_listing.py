"""A list filtered by verdict (migration 014's index, db/decisions._listing) holds exactly the stages of the
unfiltered list whose verdict is the one asked for, in the same order, page by page in both directions — whether
the server stored the stage (its verdict in decision_events.verdict) or something else did (legacy rows: a verdict
without a stage, two verdicts for one stage, a stage without any verdict), and with the other filters beside it."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from mandate.db import decisions as q
from tests.web.conftest import LiveServer, serving
from tests.web.test_api import ORG
from tests.web.test_rollups import CM, T0, _decisions, _store

VERDICTS = ("ALLOW", "OBSERVE", "BLOCK", "PAUSE")


@pytest.fixture
def served(db_url: str) -> Iterator[LiveServer]:
    """The demo's governance, served (without test_api's check that every stage has its verdict and timeline: the
    legacy rows below do not)."""
    with serving(db_url, organization_id=ORG) as server:
        yield server


def _legacy_rows(url: str, rng: random.Random) -> dict[str, str]:
    """Stages written the way the original server (or a hand) did, their column left NULL; returns what each
    stage's verdict is (its latest verdict) by decision id."""
    latest: dict[str, str] = {}
    with psycopg.connect(url) as conn:
        for i in range(30):
            decision_id = str(uuid.uuid4())
            conn.execute(
                """INSERT INTO mandate.decision_events (decision_id, intent, stage, actor, target, context, scope,
                                                        "timestamp", organization_id, domain)
                   VALUES (%s, 'config.write', 'pre_commit', 'old-agent', 'file', '{}', '{}', %s, %s, %s)""",
                (decision_id, T0 + timedelta(seconds=rng.randint(0, 10 * 86400)), ORG, CM),
            )
            if i % 10 == 9:
                continue  # a stage stored without any verdict: in no verdict's list
            written = [
                rng.choice(VERDICTS) for _ in range(1 + (i % 3 == 0))
            ]  # some stages have two (one without a stage)
            for k, verdict in enumerate(written):
                conn.execute(
                    """INSERT INTO mandate.verdict_events (verdict_id, decision_id, stage, verdict, matched_policy_ids,
                                                           "timestamp", organization_id, domain)
                       VALUES (%s, %s, %s, %s, '{}', %s, %s, %s)""",
                    (
                        uuid.uuid4(),
                        decision_id,
                        None if i % 2 or k + 1 < len(written) else "pre_commit",
                        verdict,
                        T0 + timedelta(days=20, seconds=k),
                        ORG,
                        CM,
                    ),
                )
            latest[decision_id] = written[-1]
    return latest


async def _all_pages(conn: Any, f: q.DecisionFilter, limit: int) -> list[tuple[Any, ...]]:
    """Every row of a filter, following next cursors; then the same pages read back with `before` must give the
    same rows."""
    forward: list[list[dict[str, Any]]] = []
    cursor = None
    while True:
        page = await q.list_decisions(conn, f, limit=limit, cursor=q.Cursor.decode(cursor) if cursor else None)
        forward.append(page.items)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
        previous = page.previous_cursor
        if len(forward) > 1:
            assert previous is not None
    keys = [(r["timestamp"], r["decision_id"], r["stage"], r["verdict"]) for items in forward for r in items]
    # Backwards from the last page: each `before` page is the page that came before it.
    last = forward[-1]
    if len(forward) > 1 and last:
        before = q.Cursor(last[0]["timestamp"], last[0]["decision_id"], last[0]["stage"])
        back = await q.list_decisions(conn, f, limit=limit, before=before)
        assert [r["decision_id"] for r in back.items] == [r["decision_id"] for r in forward[-2]]
    return keys


def test_a_verdict_filtered_list_is_the_unfiltered_list_filtered(served: LiveServer) -> None:
    rng = random.Random(14)
    _store(served, _decisions(rng, 160))
    legacy = _legacy_rows(served.database_url, rng)
    with psycopg.connect(served.database_url) as conn:
        unlisted = conn.execute(
            "SELECT count(*) FROM mandate.decision_events WHERE domain = %s AND verdict IS NULL", (CM,)
        ).fetchone()
        stored = conn.execute(
            "SELECT count(*) FROM mandate.decision_events WHERE domain = %s AND verdict IS NOT NULL", (CM,)
        ).fetchone()
    assert unlisted == (30,) and stored is not None and stored[0] >= 100  # both ranges are exercised

    async def run() -> int:
        checked = 0
        async with await psycopg.AsyncConnection.connect(served.database_url, row_factory=dict_row) as conn:
            base = q.DecisionFilter(organization_id=uuid.UUID(ORG), domain=CM)
            every = await _all_pages(conn, base, 1000)
            assert len(every) == len({(k[1], k[2]) for k in every}) >= 190
            by_id = {str(k[1]): k[3] for k in every}
            assert all(by_id[d] == v for d, v in legacy.items())  # the unfiltered list: a stage's latest verdict
            assert sum(1 for d in legacy if by_id[d] is None) == 0
            for extra in ({}, {"stage": "pre_commit"}, {"since": T0 + timedelta(days=3)}, {"actor": "old-agent"}):
                for verdict in VERDICTS:
                    f = q.DecisionFilter(**{**base.__dict__, **extra, "verdict": verdict})
                    want = [
                        k
                        for k in await _all_pages(conn, q.DecisionFilter(**{**base.__dict__, **extra}), 1000)
                        if k[3] == verdict
                    ]
                    for limit in (7, 50):
                        got = await _all_pages(conn, f, limit)
                        assert got == want, (extra, verdict, limit)
                    checked += 1
        return checked

    assert asyncio.run(run()) == 16


def test_migration_014_fills_the_column_with_each_stage_s_latest_verdict(fresh_db: Any) -> None:
    url = fresh_db(13)
    rng = random.Random(15)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO mandate.organizations (organization_id, name) VALUES (%s, 'org')", (ORG,))
        conn.execute("INSERT INTO mandate.domains (organization_id, domain, name) VALUES (%s, %s, 'cm')", (ORG, CM))
    latest = _legacy_rows(url, rng)
    from mandate.migrate import runner

    with psycopg.connect(url, autocommit=True) as conn:
        runner.Runner(conn).up()
        rows = dict(conn.execute("SELECT decision_id::text, verdict::text FROM mandate.decision_events").fetchall())
        # 30 rows: the planner would rather sort them; told not to, it must find an index that gives the order.
        conn.execute("SET enable_seqscan = off; SET enable_bitmapscan = off; SET enable_sort = off")
        plan = "\n".join(
            r[0]
            for r in conn.execute(
                "EXPLAIN SELECT decision_id FROM mandate.decision_events WHERE organization_id = %s AND domain = %s "
                "AND verdict = 'PAUSE' ORDER BY \"timestamp\" DESC, decision_id DESC, stage DESC LIMIT 50",
                (ORG, CM),
            ).fetchall()
        )
    assert len(rows) == 30
    assert {d: v for d, v in rows.items() if v is not None} == latest
    assert sum(v is None for v in rows.values()) == 3
    assert "idx_decision_events_verdict" in plan
