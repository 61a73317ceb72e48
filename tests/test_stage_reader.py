"""The stage reader (service/stages.py) on a real database: concurrent reads of stored stages share one query, each
reader gets its own decision's stages, and a failed query fails exactly the reads that waited on it."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from psycopg_pool import PoolTimeout

from mandate.group_commit import GroupCommit
from mandate.service import StageReader
from tests.test_group_commit import _governance, _open, _prepared, demo_url, run
from tests.web.test_api import CRITICAL_DROP, LARGE_WRITE, flat

__all__ = ["demo_url"]  # the fixture, imported for the tests below


def test_concurrent_reads_share_one_query_and_each_gets_its_own_stages(demo_url: str) -> None:
    async def test() -> None:
        async with _open(demo_url) as pool:
            governance = await _governance(pool)
            writer = GroupCommit(pool)
            dropped, paused = _prepared(governance, flat(*CRITICAL_DROP)), _prepared(governance, flat(*LARGE_WRITE))
            await asyncio.gather(writer.ingest(dropped), writer.ingest(paused))
            reader = StageReader(pool)
            a, b = dropped.req.decision_id, paused.req.decision_id
            nothing = uuid.uuid4()

            got = await asyncio.gather(reader.stages(a), reader.stages(b), reader.stages(a), reader.stages(nothing))

            assert reader.queries == 1  # four reads asked in one step: one query
            assert [[(r["decision_id"], r["stage"], r["verdict"]) for r in rows] for rows in got] == [
                [(a, "pre_commit", "BLOCK")],
                [(b, "pre_commit", "PAUSE")],
                [(a, "pre_commit", "BLOCK")],
                [],
            ]
            assert await reader.stages(b) == got[1] and reader.queries == 2  # a later read: a query of its own

    run(test)


def test_a_failed_query_fails_the_reads_that_waited_on_it_and_the_next_read_works(demo_url: str) -> None:
    async def test() -> list[Any]:
        async with _open(demo_url, max_size=1, timeout=0.5) as pool:
            reader = StageReader(pool)
            async with pool.connection():  # the only connection is busy: the reader's query cannot start
                failed = await asyncio.gather(
                    reader.stages(uuid.uuid4()), reader.stages(uuid.uuid4()), return_exceptions=True
                )
            after = await reader.stages(uuid.uuid4())
            return [*failed, after, reader.queries]

    first, second, after, queries = run(test)
    assert isinstance(first, PoolTimeout) and isinstance(second, PoolTimeout)
    assert after == [] and queries == 1


def test_a_read_whose_caller_went_away_does_not_hold_up_the_others(demo_url: str) -> None:
    async def test() -> tuple[bool, list[Any], int]:
        async with _open(demo_url) as pool:
            reader = StageReader(pool)
            gone = asyncio.ensure_future(reader.stages(uuid.uuid4()))
            staying = asyncio.ensure_future(reader.stages(uuid.uuid4()))
            await asyncio.sleep(0)  # both asked
            gone.cancel()
            rows = await staying
            with pytest.raises(asyncio.CancelledError):
                await gone
            return gone.cancelled(), rows, reader.queries

    cancelled, rows, queries = run(test)
    assert cancelled and rows == [] and queries == 1


def test_a_read_behind_a_query_still_waiting_for_its_connection_fails_within_the_pools_timeout(demo_url: str) -> None:
    """While the database is down, a read must not wait for the query ahead of it and then for its own connection:
    its own wait is bounded by the pool's timeout, as a connection of its own would be (the outage bound)."""

    async def test() -> tuple[BaseException | None, float]:
        async with _open(demo_url, max_size=1, timeout=2.0) as pool:
            reader = StageReader(pool)
            async with pool.connection():  # the only connection is busy until both reads are over
                ahead = asyncio.ensure_future(reader.stages(uuid.uuid4()))  # its query waits for a connection
                await asyncio.sleep(0.05)
                started = asyncio.get_running_loop().time()
                behind = await asyncio.gather(reader.stages(uuid.uuid4()), return_exceptions=True)
                waited = asyncio.get_running_loop().time() - started
                await asyncio.gather(ahead, return_exceptions=True)
            return behind[0], waited

    error, waited = run(test)
    assert isinstance(error, PoolTimeout) and "not read within 2 s" in str(error), error
    assert waited < 3.0  # its own 2 s, not the 2 s of the query ahead and then 2 s of its own
