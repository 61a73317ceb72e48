"""The UI's counts from the rollups (migration 013, db/rollups.py, web/aggregates.py) equal the same counts taken
directly over the decisions — for every filter the rollups answer, any time range (whole hours, partial edges,
open ends), time zones with whole and half-hour offsets, and whatever the fold's progress: nothing folded, part of
it in small chunks, all of it, and decisions stored after the last fold."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest
from psycopg.rows import dict_row

from mandate.db import decisions as q
from mandate.db import rollups
from mandate.web import aggregates
from tests.helpers import scalar
from tests.web.conftest import LiveServer
from tests.web.test_api import CRITICAL_DROP, LARGE_WRITE, ORG, api, flat
from tests.web.test_ui import dom, listed

__all__ = ["api"]  # the fixture, imported for the tests below
CM = "config-management"
T0 = datetime(2026, 11, 20, 0, 0, tzinfo=UTC)


def _decisions(rng: random.Random, n: int) -> list[dict[str, Any]]:
    out = []
    for _ in range(n):
        when = T0 + timedelta(seconds=rng.randint(0, 10 * 86400))
        if rng.random() < 0.5:
            body = flat(*LARGE_WRITE)
            body["context"]["content_length"] = rng.choice((10, 2_500_000, 90_000_000))
        else:
            body = flat(*CRITICAL_DROP)
            body["context"]["risk_level"] = rng.choice(("low", "medium", "critical"))
            body["context"]["backup_first"] = rng.random() < 0.5
        if rng.random() < 0.1:  # an agent no scope knows: a governance gap
            body["scope"]["agent"] = body["actor"] = f"stranger-{rng.randint(1, 3)}"
        body["timestamp"] = when.isoformat()
        out.append(body)
    return out


def _store(server: LiveServer, bodies: list[dict[str, Any]]) -> None:
    r = server.client.post("/api/decisions/batch", json={"decisions": bodies}, timeout=60)
    assert r.status_code == 200, r.text
    assert r.json()["failed"] == 0, [i for i in r.json()["results"] if i["status"] >= 400][:2]


def _filters(server: LiveServer) -> Iterator[q.DecisionFilter]:
    with psycopg.connect(server.database_url) as conn:
        policy, scope, team = conn.execute(
            """SELECT matched_policy_ids[1], scope_id, owning_team FROM mandate.verdict_events
               WHERE cardinality(matched_policy_ids) > 0 AND verdict = 'PAUSE' LIMIT 1"""
        ).fetchone() or (None, None, None)
        spec = scalar(conn, "SELECT spec_id FROM mandate.decision_events WHERE spec_id IS NOT NULL LIMIT 1")
    assert policy and scope and team and spec
    base = q.DecisionFilter(organization_id=uuid.UUID(ORG), domain=CM)
    edges = (T0 + timedelta(hours=30, minutes=17, seconds=5), T0 + timedelta(days=6, hours=3, minutes=41))
    for extra in (
        {},
        {"verdict": "PAUSE"},
        {"stage": "pre_commit"},
        {"policy_id": policy},
        {"scope_id": scope, "verdict": "BLOCK"},
        {"owning_team": team},
        {"spec_id": spec},
        {"since": edges[0], "until": edges[1]},
        {"since": edges[0]},
        {"until": edges[1], "verdict": "ALLOW"},
        {"since": T0 + timedelta(days=2), "until": T0 + timedelta(days=5)},  # whole days
        {"since": edges[0], "until": edges[0] + timedelta(minutes=40)},  # no whole hour: counted directly
        {"domain": None, "domains": (CM, "customer-support"), "policy_id": policy, "since": edges[0]},
    ):
        yield q.DecisionFilter(**{**base.__dict__, **extra})


def _chart(rows: list[dict[str, Any]] | None) -> Any:
    if rows is None:
        return None
    return sorted({(r["bucket"], r["bucket_end"], r["verdict"], r["n"]) for r in rows if r["verdict"] is not None})


def _buckets(rows: list[dict[str, Any]] | None) -> Any:
    return None if rows is None else sorted({r["bucket"] for r in rows})


def _breakdown(rows: list[dict[str, Any]]) -> Any:
    return sorted((r["key"] or "", r["total"], r["BLOCK"], r["PAUSE"], r["ALLOW"], r["OBSERVE"]) for r in rows)


async def _compare(url: str, filters: list[q.DecisionFilter], label: str) -> int:
    """Every filter, in three time zones: the rollups' answer equals the direct one. How many were compared."""
    compared = 0
    async with await psycopg.AsyncConnection.connect(url, row_factory=dict_row) as conn:
        for f in filters:
            for name in ("UTC", "America/New_York", "Asia/Kolkata"):
                zone = ZoneInfo(name)
                got = await aggregates.aggregate(
                    conn, f, time_zone=name, zone=zone, breakdowns=tuple(q.BREAKDOWNS), top=1000
                )
                async with conn.transaction():
                    want = await aggregates._direct(conn, f, time_zone=name, breakdowns=tuple(q.BREAKDOWNS), top=1000)
                where = f"{label}: {f} in {name}"
                assert not got.capped, where
                assert got.counts == want.counts, where
                assert got.unit == want.unit, where
                assert _buckets(got.chart_rows) == _buckets(want.chart_rows), where
                assert _chart(got.chart_rows) == _chart(want.chart_rows), where
                for by in q.BREAKDOWNS:
                    assert _breakdown(got.breakdowns[by]) == _breakdown(want.breakdowns[by]), (where, by)
                compared += 1
    return compared


def _fold(url: str, max_rows: int) -> int:
    async def run() -> int:
        async with await psycopg.AsyncConnection.connect(url, row_factory=dict_row) as conn:
            return await rollups.fold(conn, max_rows)

    return asyncio.run(run())


def test_counts_from_the_rollups_equal_counting_the_decisions_whatever_the_fold_did(api: LiveServer) -> None:
    rng = random.Random(13)
    _store(api, _decisions(rng, 240))
    filters = list(_filters(api))
    url = api.database_url
    with psycopg.connect(url, autocommit=True) as conn:  # start from nothing folded (the server may have begun)
        conn.execute("DELETE FROM mandate.decision_rollups")
        conn.execute("DELETE FROM mandate.decision_rollup_progress")
    compared = 0
    for step in ("nothing folded", "a chunk", "another chunk"):
        compared += asyncio.run(_compare(url, filters, step))
        if step != "another chunk":
            _fold(url, 60)
    while _fold(url, 1000):
        pass
    compared += asyncio.run(_compare(url, filters, "all folded"))
    _store(api, _decisions(rng, 40))  # stored after the last fold (the server's own fold may take some of them)
    compared += asyncio.run(_compare(url, filters, "some stored since"))
    assert compared == 5 * len(filters) * 3
    with psycopg.connect(url) as conn:
        total = scalar(conn, "SELECT count(*) FROM mandate.decision_events")
        folded = scalar(
            conn,
            """SELECT coalesce(sum(decisions), 0) FROM mandate.decision_rollups
               WHERE dimension = 'all' AND grain = 'hour'""",
        )
        before = scalar(
            conn,
            "SELECT count(*) FROM mandate.decision_events WHERE created_at < "
            "(SELECT folded_before FROM mandate.decision_rollup_progress)",
        )
    assert folded == before <= total and total >= 280


def test_the_fold_is_one_caller_at_a_time_and_counts_each_stage_once(api: LiveServer) -> None:
    _store(api, _decisions(random.Random(7), 120))

    async def together() -> list[int]:
        conns = [await psycopg.AsyncConnection.connect(api.database_url, row_factory=dict_row) for _ in range(4)]
        try:

            async def folds(conn: psycopg.AsyncConnection[Any]) -> int:
                return sum([await rollups.fold(conn, 25) for _ in range(6)])

            return list(await asyncio.gather(*(folds(c) for c in conns)))
        finally:
            for c in conns:
                await c.close()

    asyncio.run(together())
    while _fold(api.database_url, 1000):
        pass
    with psycopg.connect(api.database_url) as conn:
        per_hour = conn.execute(
            """SELECT date_trunc('hour', "timestamp", 'UTC') AS h, count(*) FROM mandate.decision_events
               GROUP BY 1 ORDER BY 1"""
        ).fetchall()
        rolled = conn.execute(
            """SELECT bucket, sum(decisions)::bigint FROM mandate.decision_rollups
               WHERE dimension = 'all' AND grain = 'hour' GROUP BY 1 ORDER BY 1"""
        ).fetchall()
        days = scalar(
            conn, "SELECT sum(decisions) FROM mandate.decision_rollups WHERE dimension = 'all' AND grain = 'day'"
        )
    assert rolled == per_hour
    assert days == sum(n for _, n in per_hour) == 120


def test_a_text_search_matching_more_than_the_cap_says_so_instead_of_counting(
    api: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    bodies = _decisions(random.Random(3), 30)
    _store(api, bodies)
    f = q.DecisionFilter(organization_id=uuid.UUID(ORG), domain=CM, actor="PAUSE-", partial=True)

    async def run() -> aggregates.Aggregates:
        async with await psycopg.AsyncConnection.connect(api.database_url, row_factory=dict_row) as conn:
            return await aggregates.aggregate(conn, f, time_zone="UTC", zone=ZoneInfo("UTC"))

    small = asyncio.run(run())
    pauses = sum(1 for b in bodies if b["actor"].startswith("pause-"))
    assert not small.capped and sum(small.counts.values()) == pauses > 0  # the start of the actor, any case
    monkeypatch.setattr(aggregates, "CAP", pauses - 1)
    capped = asyncio.run(run())
    assert capped.capped and capped.counts == {} and capped.chart_rows is None


@pytest.mark.parametrize("typed", ["/data/config/prod", "/DATA/CONFIG/PRODUCTION.YAML"])
def test_the_ui_finds_a_target_by_its_start_in_any_case(api: LiveServer, typed: str) -> None:
    bodies = _decisions(random.Random(5), 10)
    _store(api, bodies)
    writes = {b["decision_id"] for b in bodies if b["target"] == "/data/config/production.yaml"}
    assert writes
    found = listed(dom(api.client.get("/", params={"domain": CM, "target": typed, "limit": "500"})))
    assert {key for key, _ in found} == writes
    middle = listed(dom(api.client.get("/", params={"domain": CM, "target": "config/production"})))
    assert middle == []  # the start of the value, not any part of it


def test_a_common_start_walks_the_decisions_newest_first_and_finds_the_same(
    api: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    _store(api, _decisions(random.Random(9), 30))
    pages = [{"domain": CM, "actor": "PAUSE-", "limit": limit} for limit in ("5", "500")]
    by_index = [listed(dom(api.client.get("/", params=p))) for p in pages]
    monkeypatch.setattr(q, "WALKED_ROW_COST", 0.0)  # walking costs nothing now: the list walks
    walked = [listed(dom(api.client.get("/", params=p))) for p in pages]
    assert walked == by_index
    assert len(by_index[0]) == 5 and len(by_index[1]) > 5


@pytest.mark.parametrize(
    ("matches", "scanned", "walks"),
    [(4_000, 5_000_000, False), (6_000, 5_000_000, True), (800, 100_000, True), (700, 100_000, False), (9, 9, True)],
)
def test_a_start_walks_when_the_walk_reads_less_than_the_prefix_index_would(
    monkeypatch: pytest.MonkeyPatch, matches: int, scanned: int, walks: bool
) -> None:
    """The rule of `_walks`, for a page of 51: the prefix index reads every match, the walk about 51 × scanned /
    matches stages at a tenth of the cost each; the matches are counted (never further than the bound), the stages
    scanned estimated."""
    bounds: list[int] = []

    async def estimated(conn: object, f: q.DecisionFilter) -> float:
        assert f.actor is None  # the start itself is never estimated: the planner can be off a hundredfold
        return float(scanned)

    async def counted(conn: object, f: q.DecisionFilter, limit: int) -> int:
        assert f.actor == "agent" and f.verdict is None
        bounds.append(limit)
        return min(matches, limit)

    monkeypatch.setattr(q, "estimated_rows", estimated)
    monkeypatch.setattr(q, "count_at_most", counted)
    f = q.DecisionFilter(organization_id=uuid.UUID(ORG), domain=CM, actor="agent", partial=True, verdict="BLOCK")
    assert asyncio.run(q._walks(None, f, 51)) is walks  # type: ignore[arg-type]
    assert bounds and bounds[0] <= 5_052  # √(0.1 × 51 × 5 M) + 1: the count stops there


def test_the_server_folds_what_it_stores_by_itself(api: LiveServer) -> None:
    _store(api, _decisions(random.Random(11), 25))
    deadline = time.monotonic() + 30  # the server folds every 5 s
    with psycopg.connect(api.database_url, autocommit=True) as conn:
        while True:
            total = scalar(conn, "SELECT count(*) FROM mandate.decision_events")
            folded = scalar(
                conn,
                """SELECT coalesce(sum(decisions), 0) FROM mandate.decision_rollups
                   WHERE dimension = 'all' AND grain = 'day'""",
            )
            if folded == total or time.monotonic() > deadline:
                break
            time.sleep(0.5)
    assert folded == total == 25
