"""Group commit: the decisions that wait to be written at the same moment share one transaction.

Each decision is written whole by one statement (decision, verdict and both timeline entries, `db.writes.
INSERT_DECISION`), so none is ever half-written; what the decisions of a batch share is the commit — one WAL flush
instead of one per decision — and the round trip: the batch's plain decision stages are one multi-row statement
(`db.writes.insert_decisions`, which stores or skips each stage whole, as the one-row statement does), the stages
that approvals concern one statement each, all pipelined. Every caller gets its answer only after the COMMIT of the
transaction that holds its decision.

No waiting is added: a decision that arrives while no write is running is written at once, alone. While writes
are running (at most `max_writers`, each on its own pooled connection), arriving decisions queue, and the next
free writer takes up to `max_batch` of them. So batches form only under load, and grow with it.

When a batch's transaction fails because of one of its statements (any error with a SQLSTATE outside the
connection classes: a value PostgreSQL refuses, an index row too large — `ProgramLimitExceeded` is an
`OperationalError` but says nothing about the connection), the batch is retried one decision per transaction, so
that one bad decision fails alone; when the database itself is unreachable (no SQLSTATE, or class 08 or 57P),
every decision of the batch fails with that error at once.

No caller waits unboundedly: the writer count is taken back in the same loop step in which a writer finds the
queue empty (so a decision queued after that always starts a writer), a writer that is cancelled fails the
decisions it holds, and `ingest` gives up after `answer_timeout` seconds (DatabaseUnavailable). A decision that no
writer had taken by then is withdrawn from the queue: it is never stored, and the answer says so. One that a writer
holds may still be stored — a re-send with the same decision_id is answered with it, never stored twice. So under
overload (a queue deeper than the writers get through in `answer_timeout`, e.g. many large batches at once) the
server sheds the decisions it has answered 503 for instead of storing them after the fact. The default,
`db.pool.ANSWER_S`, keeps ingestion inside the documented outage bound (docs/reliability.md).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from psycopg import AsyncConnection, AsyncCursor, AsyncRawCursor
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from mandate.db import writes
from mandate.db.connect import connection_lost
from mandate.db.pool import ANSWER_S
from mandate.errors import DatabaseUnavailable
from mandate.service import IngestResult, Prepared, existing
from mandate.vocabulary import Row


@dataclass
class Stats:
    batches: int = 0
    decisions: int = 0
    largest: int = 0
    retried_alone: int = 0


def _connection_lost(exc: BaseException) -> bool:
    """An error about the connection, the server or the pool rather than about one statement (retrying alone
    won't help)."""
    return isinstance(exc, PoolTimeout) or connection_lost(exc)


Waiting = tuple[Prepared, "asyncio.Future[Row]"]


class GroupCommit:
    def __init__(
        self,
        pool: AsyncConnectionPool[AsyncConnection[Row]],
        *,
        max_batch: int = 32,
        max_writers: int = 4,
        answer_timeout: float = ANSWER_S,
    ) -> None:
        if max_batch < 1 or max_writers < 1:
            raise ValueError("max_batch and max_writers must be at least 1")
        if answer_timeout <= 0:
            raise ValueError("answer_timeout must be positive")
        self.pool = pool
        self.max_batch = max_batch
        self.max_writers = max_writers
        self.answer_timeout = answer_timeout
        self.stats = Stats()
        self._waiting: list[Waiting] = []
        self._queued: set[asyncio.Future[Row]] = set()  # the futures of `_waiting` that no writer has taken yet
        self._active = 0  # writers that have not yet found the queue empty
        self._tasks: set[asyncio.Task[None]] = set()  # strong references to the running writer tasks

    async def ingest(self, prepared: Prepared) -> IngestResult:
        """Store `prepared` (in a batch when others are waiting too) and answer it once its transaction committed."""
        future: asyncio.Future[Row] = asyncio.get_running_loop().create_future()
        self._waiting.append((prepared, future))
        self._queued.add(future)
        if self._active < self.max_writers:
            self._active += 1
            task = asyncio.create_task(self._write_waiting(), name="group-commit writer")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        try:
            async with asyncio.timeout(self.answer_timeout):
                row = await asyncio.shield(future)
        except TimeoutError:
            if future in self._queued:  # no writer took it: withdrawn, it will not be stored
                self._queued.discard(future)
                future.cancel()
                raise DatabaseUnavailable(
                    f"the database did not take this decision within {self.answer_timeout:g} s and it was not "
                    "stored; send it again"
                ) from None
            raise DatabaseUnavailable(
                f"the database did not store this decision within {self.answer_timeout:g} s; send it again with the "
                "same decision_id (it is stored at most once)"
            ) from None
        if row["inserted"]:  # the common case needs no connection
            return prepared.created()
        async with self.pool.connection() as conn:  # a re-send: answer with what is stored
            return await existing(conn, prepared)

    async def _write_waiting(self) -> None:
        try:
            while self._waiting:
                batch = self._take()
                if batch:
                    await self._write(batch)
        finally:
            # In the step that found the queue empty (or on the way out after an error): no await in between,
            # so an `ingest` that runs after this sees the writer gone and starts one.
            self._active -= 1

    def _take(self) -> list[Waiting]:
        """Up to `max_batch` of the waiting decisions, in order, for a writer; the withdrawn ones are dropped."""
        taken, self._waiting = self._waiting[: self.max_batch], self._waiting[self.max_batch :]
        batch = [(p, f) for p, f in taken if f in self._queued]
        self._queued.difference_update(f for _, f in batch)
        return batch

    async def _write(self, batch: list[Waiting]) -> None:
        try:
            async with self.pool.connection() as conn:
                rows = await _insert(conn, [p for p, _ in batch])
        except Exception as exc:  # handed to the callers, who raise it
            if len(batch) == 1 or _connection_lost(exc):
                _fail(batch, exc)
                return
            self.stats.retried_alone += len(batch)
            for i, item in enumerate(batch):  # the transaction is gone: write each alone so only the bad one fails
                try:
                    await self._write([item])
                except BaseException as cancelled:
                    _fail(batch[i:], cancelled)
                    raise
            return
        except BaseException as exc:  # cancelled (the server stops): nobody may wait for this batch forever
            _fail(batch, exc)
            raise
        self.stats.batches += 1
        self.stats.decisions += len(batch)
        self.stats.largest = max(self.stats.largest, len(batch))
        for (_, future), row in zip(batch, rows, strict=True):
            if not future.done():  # the caller may have gone away; its decision is stored all the same
                future.set_result(row)


def _fail(batch: list[Waiting], exc: BaseException) -> None:
    for _, future in batch:
        if not future.done():
            if isinstance(exc, asyncio.CancelledError):
                future.cancel()
            else:
                future.set_exception(exc)


async def _insert(conn: AsyncConnection[Row], prepared: list[Prepared]) -> list[Row]:
    """One decision: one statement in autocommit. Several: one transaction, pipelined; the plain decision stages
    (`INSERT_DECISION`) in one multi-row statement per set of distinct stages (`writes.insert_decisions`), the
    others (`INSERT_GOVERNED_DECISION`) in their own statement each."""
    if len(prepared) == 1:
        row = await (await _send(conn, prepared[0])).fetchone()
        assert row is not None
        return [row]
    rows: list[Row | None] = [None] * len(prepared)
    async with conn.transaction(), conn.pipeline():
        sent: list[tuple[list[int], AsyncCursor[Row]]] = []
        for indices in _statements(prepared):
            if prepared[indices[0]].statement is writes.INSERT_DECISION and len(indices) > 1:
                cursor: AsyncCursor[Row] = AsyncRawCursor(conn)
                params = writes.decision_rows([prepared[i].params for i in indices])
                await cursor.execute(writes.insert_decisions(len(indices)), params)
            else:
                cursor = await _send(conn, prepared[indices[0]])
            sent.append((indices, cursor))
        for indices, cursor in sent:
            answers = await cursor.fetchall()
            assert len(answers) == len(indices)
            for i, answer in zip(indices, answers, strict=True):
                rows[i] = answer
    assert all(row is not None for row in rows)
    return rows  # type: ignore[return-value]  # every slot filled, checked above


async def _send(conn: AsyncConnection[Row], prepared: Prepared) -> AsyncCursor[Row]:
    """Execute `prepared`'s one statement, through a raw cursor (`writes.raw`)."""
    statement, names = writes.raw(prepared.statement)
    cursor: AsyncCursor[Row] = AsyncRawCursor(conn)
    return await cursor.execute(statement, writes.raw_params(names, prepared.params))


def _statements(prepared: list[Prepared]) -> list[list[int]]:
    """The statements that write `prepared` (as lists of its indices), in the order the stages arrived: the
    plain stages that arrived one after the other together, as long as no (decision_id, stage) repeats (a repeat
    starts the next statement, so it is answered as a re-send), each governed stage alone."""
    statements: list[list[int]] = []
    plain: list[int] = []
    keys: set[tuple[object, object]] = set()
    for i, p in enumerate(prepared):
        key = (p.req.decision_id, p.req.stage)
        if plain and (p.statement is not writes.INSERT_DECISION or key in keys):
            statements.append(plain)
            plain, keys = [], set()
        if p.statement is not writes.INSERT_DECISION:
            statements.append([i])
        else:
            plain.append(i)
            keys.add(key)
    if plain:
        statements.append(plain)
    return statements
