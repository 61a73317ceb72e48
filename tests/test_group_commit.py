"""Group commit on a real PostgreSQL: batches share a transaction, every decision is whole, a bad one fails alone."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from psycopg import _queries
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from mandate.apply import apply_bundle
from mandate.db.connect import use_fast_json
from mandate.db.governance import load_governance
from mandate.errors import DatabaseUnavailable
from mandate.governance import cache
from mandate.governance.bundle import load_demo_bundle
from mandate.group_commit import GroupCommit, _insert
from mandate.service import IngestError, IngestResult, Prepared, prepare
from mandate.web.api import DecisionBody, to_request
from tests.helpers import scalar
from tests.web.test_api import CRITICAL_DROP, LARGE_WRITE, flat


async def _configure(conn: psycopg.AsyncConnection[Any]) -> None:
    use_fast_json(conn)


def _pool(url: str, **options: Any) -> AsyncConnectionPool[Any]:
    options = {"min_size": 1, "max_size": 4, **options}
    return AsyncConnectionPool(
        url, open=False, kwargs={"autocommit": True, "row_factory": dict_row}, configure=_configure, **options
    )


@pytest.fixture
def demo_url(db_url: str) -> str:
    with psycopg.connect(db_url, autocommit=True) as conn:
        apply_bundle(conn, load_demo_bundle())
    return db_url


async def _governance(pool: AsyncConnectionPool[Any]) -> cache.Governance:
    async with pool.connection() as conn:
        return await load_governance(conn)


def _prepared(governance: cache.Governance, body: dict[str, Any]) -> Prepared:
    now = datetime.now(UTC)
    return prepare(governance, to_request(DecisionBody.model_validate(body), now), received_at=now)


def _incomplete(url: str) -> int:
    with psycopg.connect(url) as conn:
        return scalar(
            conn,
            """SELECT count(*) FROM mandate.decision_events d
               WHERE NOT EXISTS (SELECT 1 FROM mandate.verdict_events v
                                 WHERE v.decision_id = d.decision_id AND v.stage = d.stage)
                  OR (SELECT count(*) FROM mandate.audit_timeline_entries t
                      WHERE t.decision_id = d.decision_id AND t.stage = d.stage) <> 2""",
        )


def _stored(url: str) -> int:
    with psycopg.connect(url) as conn:
        return scalar(conn, "SELECT count(*) FROM mandate.decision_events")


def run(test: Callable[[], Any]) -> Any:
    """Run the coroutine function on a fresh loop in its own thread: this thread may already run one (Playwright's)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(test())).result()


@asynccontextmanager
async def _open(url: str, **options: Any) -> AsyncIterator[AsyncConnectionPool[Any]]:
    pool = _pool(url, **options)
    await pool.open(wait=True, timeout=15)
    try:
        yield pool
    finally:
        await pool.close()


def test_decisions_waiting_together_share_a_transaction_and_each_is_stored_whole(demo_url: str) -> None:
    async def test() -> list[IngestResult]:
        async with _open(demo_url) as pool:
            governance = await _governance(pool)
            writer = GroupCommit(pool, max_batch=8, max_writers=2)
            bodies = [flat(*(CRITICAL_DROP if i % 2 else LARGE_WRITE)) for i in range(40)]
            results = await asyncio.gather(*(writer.ingest(_prepared(governance, b)) for b in bodies))
            assert writer.stats.decisions == 40
            assert writer.stats.batches < 40 and 1 < writer.stats.largest <= 8
            assert writer.stats.retried_alone == 0
            return list(results)

    results = run(test)
    assert all(r.created for r in results)
    assert [r.body()["verdict"] for r in results] == ["PAUSE", "BLOCK"] * 20
    assert _stored(demo_url) == 40
    assert _incomplete(demo_url) == 0


@pytest.mark.parametrize("decision", [CRITICAL_DROP, LARGE_WRITE], ids=["plain", "governed"])
def test_one_bad_decision_fails_alone_and_the_rest_of_its_batch_is_stored(demo_url: str, decision: Any) -> None:
    async def test() -> list[Any]:
        async with _open(demo_url) as pool:
            governance = await _governance(pool)
            writer = GroupCommit(pool, max_batch=16, max_writers=1)
            prepared = [_prepared(governance, flat(*decision)) for _ in range(10)]
            bad = prepared[4]
            prepared[4] = Prepared(bad.req, {**bad.params, "stage": "someday"}, bad.verdict_id, bad.explanation, "")
            results = await asyncio.gather(*(writer.ingest(p) for p in prepared), return_exceptions=True)
            assert writer.stats.retried_alone == 10  # the batch of 10 failed as a whole, then each went alone
            assert writer.stats.decisions == 9
            return list(results)

    results = run(test)
    assert isinstance(results[4], psycopg.errors.InvalidTextRepresentation)
    assert all(isinstance(r, IngestResult) and r.created for i, r in enumerate(results) if i != 4)
    assert _stored(demo_url) == 9
    assert _incomplete(demo_url) == 0


@pytest.mark.parametrize("decision", [CRITICAL_DROP, LARGE_WRITE], ids=["plain", "governed"])
def test_a_resend_in_the_same_batch_gets_the_stored_verdict_and_a_changed_body_409(
    demo_url: str, decision: Any
) -> None:
    async def test() -> list[Any]:
        async with _open(demo_url) as pool:
            governance = await _governance(pool)
            writer = GroupCommit(pool, max_batch=16, max_writers=1)
            body = flat(*decision)
            changed = {**body, "target": "production.orders"}
            prepared = [_prepared(governance, b) for b in (body, body, changed)]
            return list(await asyncio.gather(*(writer.ingest(p) for p in prepared), return_exceptions=True))

    first, resend, changed = run(test)
    assert first.created and not resend.created
    assert resend.verdict_id == first.verdict_id and resend.body()["idempotent_replay"] is True
    assert isinstance(changed, IngestError) and changed.kind == "conflict"
    assert _stored(demo_url) == 1
    assert _incomplete(demo_url) == 0


def test_without_a_database_every_decision_of_the_batch_fails_at_once(demo_url: str) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    async def test() -> tuple[list[Any], GroupCommit]:
        async with _open(demo_url) as pool:
            governance = await _governance(pool)
        gone = AsyncConnectionPool(
            f"postgresql://nobody@127.0.0.1:{port}/none?connect_timeout=1",
            min_size=0,
            max_size=1,
            open=False,
            timeout=1,
        )
        await gone.open()
        try:
            writer = GroupCommit(gone, max_batch=16, max_writers=1)
            prepared = [_prepared(governance, flat(*CRITICAL_DROP)) for _ in range(5)]
            results = await asyncio.gather(*(writer.ingest(p) for p in prepared), return_exceptions=True)
            return list(results), writer
        finally:
            await gone.close()

    results, writer = run(test)
    assert all(isinstance(r, PoolTimeout) for r in results)
    assert writer.stats.retried_alone == 0  # not retried one by one: the database, not a decision, is the problem
    assert _stored(demo_url) == 0


def test_group_commit_refuses_nonsense_sizes(demo_url: str) -> None:
    pool = _pool(demo_url)
    for options in ({"max_batch": 0}, {"max_writers": 0}):
        with pytest.raises(ValueError, match="at least 1"):
            GroupCommit(pool, **options)
    with pytest.raises(ValueError, match="positive"):
        GroupCommit(pool, answer_timeout=0)


def _poison(governance: cache.Governance, decision: Any = CRITICAL_DROP) -> Prepared:
    """A decision whose target passes no validation we have but exceeds PostgreSQL's btree row limit
    (ProgramLimitExceeded, SQLSTATE 54000, an OperationalError subclass): 3,000 distinct 4-byte characters."""
    good = _prepared(governance, flat(*decision))
    target = "".join(chr(0x1F000 + i % 3000) for i in range(3000))
    return Prepared(good.req, {**good.params, "target": target}, good.verdict_id, good.explanation, "")


@pytest.mark.parametrize("decision", [CRITICAL_DROP, LARGE_WRITE], ids=["plain", "governed"])
def test_a_row_too_large_for_an_index_fails_alone_not_its_batch(demo_url: str, decision: Any) -> None:
    async def test() -> list[Any]:
        async with _open(demo_url) as pool:
            governance = await _governance(pool)
            writer = GroupCommit(pool, max_batch=32, max_writers=1)
            prepared = [_prepared(governance, flat(*decision)) for _ in range(31)]
            prepared.insert(7, _poison(governance, decision))
            return list(await asyncio.gather(*(writer.ingest(p) for p in prepared), return_exceptions=True))

    results = run(test)
    assert isinstance(results[7], psycopg.errors.ProgramLimitExceeded) and results[7].sqlstate == "54000"
    assert all(isinstance(r, IngestResult) and r.created for i, r in enumerate(results) if i != 7)
    assert _stored(demo_url) == 31
    assert _incomplete(demo_url) == 0


def test_a_decision_sent_right_after_another_never_waits_forever(demo_url: str) -> None:
    """The writer that found the queue empty gives its place back in that same step: a decision queued just
    after (here: by the caller the writer has just answered) always starts a writer of its own."""

    async def test() -> int:
        async with _open(demo_url) as pool:
            governance = await _governance(pool)
            writer = GroupCommit(pool, max_batch=4, max_writers=1, answer_timeout=5)
            async with asyncio.timeout(20):
                for _ in range(20):
                    await writer.ingest(_prepared(governance, flat(*CRITICAL_DROP)))
            return writer.stats.decisions

    assert run(test) == 20
    assert _stored(demo_url) == 20


def test_a_caller_waits_at_most_the_answer_timeout(demo_url: str) -> None:
    async def test() -> tuple[BaseException | None, float]:
        async with _open(demo_url, max_size=1) as pool:
            governance = await _governance(pool)
            writer = GroupCommit(pool, max_batch=4, max_writers=1, answer_timeout=0.5)
            async with pool.connection():  # the only connection is busy: the writer waits for it
                started = asyncio.get_running_loop().time()
                try:
                    await writer.ingest(_prepared(governance, flat(*CRITICAL_DROP)))
                except DatabaseUnavailable as exc:
                    return exc, asyncio.get_running_loop().time() - started
            return None, 0.0

    error, waited = run(test)
    assert isinstance(error, DatabaseUnavailable) and "same decision_id" in str(error)
    assert 0.4 < waited < 2.0


def test_a_decision_no_writer_took_in_time_is_withdrawn_and_never_stored(demo_url: str) -> None:
    """Under overload the queue outlasts the answer timeout: the decision a writer holds may still be stored (its
    503 says so), the one still queued is withdrawn — its 503 says it was not stored, and it never is."""

    async def test() -> list[str]:
        async with _open(demo_url, max_size=1) as pool:
            governance = await _governance(pool)
            writer = GroupCommit(pool, max_batch=1, max_writers=1, answer_timeout=0.5)
            held, queued = (_prepared(governance, flat(*CRITICAL_DROP)) for _ in range(2))
            async with pool.connection():  # the only connection is busy: the writer holds `held`, `queued` waits
                answers = await asyncio.gather(writer.ingest(held), writer.ingest(queued), return_exceptions=True)
            async with asyncio.timeout(10):  # the connection is free again: the writer finishes what it holds
                while writer._tasks:
                    await asyncio.sleep(0.05)
            assert all(isinstance(a, DatabaseUnavailable) for a in answers), answers
            return [str(a) for a in answers] + [str(held.req.decision_id), str(queued.req.decision_id)]

    held_answer, queued_answer, held_id, queued_id = run(test)
    assert "same decision_id" in held_answer and "not stored" not in held_answer
    assert "it was not stored" in queued_answer
    with psycopg.connect(demo_url) as conn:
        stored = {str(r[0]) for r in conn.execute("SELECT decision_id FROM mandate.decision_events").fetchall()}
    assert held_id in stored and queued_id not in stored
    assert _stored(demo_url) == 1


_CONTENTS = (
    """SELECT decision_id, intent, stage::text, actor, target, context, scope, "timestamp", organization_id, domain,
              spec_id, spec_version, request_hash, token_id, verdict::text
       FROM mandate.decision_events ORDER BY decision_id, stage""",
    """SELECT verdict_id, decision_id, stage::text, snapshot_id, snapshot_version, verdict::text, matched_policy_ids,
              "timestamp", organization_id, domain, spec_id, spec_version, scope_id, owning_team, summary,
              explanation, pause_requires, pause_expires_at
       FROM mandate.verdict_events ORDER BY verdict_id""",
    """SELECT decision_id, stage::text, decision_stage::text, intent, actor, target, summary, details, severity,
              event_source::text, authority_level::text, "timestamp", organization_id, domain, spec_id, spec_version
       FROM mandate.audit_timeline_entries ORDER BY decision_id, stage, "timestamp", summary""",
    """SELECT approval_id, decision_id, stage::text, verdict_id, requirements, binding_digest, binding, expires_at
       FROM mandate.approval_requests ORDER BY approval_id""",
)
"""Every stored column of a decision stage's write but the ones the database fills (entry ids, created_at)."""


async def _contents(conn: psycopg.AsyncConnection[Any]) -> list[list[Any]]:
    return [await (await conn.execute(query)).fetchall() for query in _CONTENTS]


def _mixed(governance: cache.Governance) -> list[Prepared]:
    """Plain (CRITICAL_DROP: BLOCK) and governed (LARGE_WRITE: PAUSE, an approval request) decision stages in one order, with a re-send of a plain one among them."""
    prepared = []
    for i in range(24):
        prepared.append(_prepared(governance, flat(*(LARGE_WRITE if i % 5 == 3 else CRITICAL_DROP))))
    prepared.insert(9, prepared[2])
    return prepared


def test_a_batch_stores_exactly_what_each_of_its_decisions_stores_alone(demo_url: str) -> None:
    """The multi-row statement (db.writes.insert_decisions) against the one-row statement, on the same decisions:
    every stored column equal, each answered the same (a re-send in the batch as a re-send)."""

    async def test() -> tuple[list[list[Any]], list[list[Any]], list[bool], list[bool], GroupCommit]:
        async with _open(demo_url) as pool:
            governance = await _governance(pool)
            prepared = _mixed(governance)
            async with pool.connection() as conn:
                alone: list[bool] = []
                async with conn.transaction(force_rollback=True):  # each decision by itself, then undone
                    for p in prepared:
                        (row,) = await _insert(conn, [p])
                        alone.append(bool(row["inserted"]))
                    expected = await _contents(conn)
                assert await _contents(conn) == [[], [], [], []]
            writer = GroupCommit(pool, max_batch=32, max_writers=1)
            results = await asyncio.gather(*(writer.ingest(p) for p in prepared))
            async with pool.connection() as conn:
                stored = await _contents(conn)
            return expected, stored, alone, [r.created for r in results], writer

    expected, stored, alone, created, writer = run(test)
    assert writer.stats.largest == 25 and writer.stats.retried_alone == 0  # one batch, no retry
    assert stored == expected
    assert [len(rows) for rows in stored] == [24, 24, 48, 5]  # 19 plain (BLOCK), 5 governed (PAUSE)
    assert sorted(row["verdict"] for row in stored[0]) == ["BLOCK"] * 19 + ["PAUSE"] * 5
    assert created == alone == [i != 9 for i in range(25)]
    assert _incomplete(demo_url) == 0


def test_no_write_statement_is_parsed_by_psycopg(demo_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every statement of the write path goes out with PostgreSQL's own placeholders (db.writes.raw,
    insert_decisions): psycopg converts no write statement per decision or per batch, whatever its length."""
    converted: list[str] = []
    convert = _queries.PostgresQuery.convert

    def counting(self: _queries.PostgresQuery, query: Any, vars: Any) -> None:
        converted.append(query.decode() if isinstance(query, bytes) else str(query))
        convert(self, query, vars)

    async def test() -> tuple[GroupCommit, list[bool]]:
        async with _open(demo_url) as pool:
            governance = await _governance(pool)
            prepared = _mixed(governance)
            writer = GroupCommit(pool, max_batch=32, max_writers=1)
            monkeypatch.setattr(_queries.PostgresQuery, "convert", counting)
            try:
                results = await asyncio.gather(*(writer.ingest(p) for p in prepared))
                await writer.ingest(_prepared(governance, flat(*CRITICAL_DROP)))  # alone: the one-row statements
                await writer.ingest(_prepared(governance, flat(*LARGE_WRITE)))
                async with pool.connection() as conn:
                    await conn.execute("SELECT %s::int", [1])  # what a converted statement looks like here
            finally:
                monkeypatch.undo()
            return writer, [r.created for r in results]

    writer, created = run(test)
    assert writer.stats.decisions == 27 and writer.stats.retried_alone == 0
    assert created == [i != 9 for i in range(25)]
    assert converted[-1] == "SELECT %s::int"
    assert [q for q in converted if "INSERT" in q] == []
