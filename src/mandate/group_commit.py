"""Group commit: the decisions that wait to be written at the same moment share one transaction.

Each decision is still its own single statement (decision, verdict and both timeline entries, `service.
INSERT_DECISION`), so none is ever half-written; what the decisions of a batch share is the round trip (pipeline
mode) and the commit — one WAL flush instead of one per decision. Every caller gets its answer only after the
COMMIT of the transaction that holds its decision.

No waiting is added: a decision that arrives while no write is running is written at once, alone. While writes
are running (at most `max_writers`, each on its own pooled connection), arriving decisions queue, and the next
free writer takes up to `max_batch` of them. So batches form only under load, and grow with it.

When a batch's transaction fails because of one of its statements, the batch is retried one decision per
transaction, so that one bad decision fails alone; when the database itself is unreachable, every decision of the
batch fails with that error at once.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import AsyncConnection, errors
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from mandate.service import INSERT_DECISION, IngestResult, Prepared, existing

Row = dict[str, Any]


@dataclass
class Stats:
    batches: int = 0
    decisions: int = 0
    largest: int = 0
    retried_alone: int = 0


_RETRYABLE = (errors.TransactionRollback, errors.DeadlockDetected, errors.SerializationFailure)


def _connection_lost(exc: BaseException) -> bool:
    """An error about the connection or the server rather than about one statement (retrying alone won't help)."""
    if isinstance(exc, _RETRYABLE):  # two batches locking the same keys in turn: alone, each will pass
        return False
    return isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError | PoolTimeout)


class GroupCommit:
    def __init__(
        self, pool: AsyncConnectionPool[AsyncConnection[Row]], *, max_batch: int = 32, max_writers: int = 4
    ) -> None:
        if max_batch < 1 or max_writers < 1:
            raise ValueError("max_batch and max_writers must be at least 1")
        self.pool = pool
        self.max_batch = max_batch
        self.max_writers = max_writers
        self.stats = Stats()
        self._waiting: list[tuple[Prepared, asyncio.Future[Row]]] = []
        self._writers: set[asyncio.Task[None]] = set()

    async def ingest(self, prepared: Prepared) -> IngestResult:
        """Store `prepared` (in a batch when others are waiting too) and answer it once its transaction committed."""
        future: asyncio.Future[Row] = asyncio.get_running_loop().create_future()
        self._waiting.append((prepared, future))
        if len(self._writers) < self.max_writers:
            task = asyncio.create_task(self._write_waiting(), name="group-commit writer")
            self._writers.add(task)
            task.add_done_callback(self._writers.discard)
        row = await future
        if row["inserted"]:  # the common case needs no connection
            return prepared.created()
        async with self.pool.connection() as conn:  # a re-send: answer with what is stored
            return await existing(conn, prepared)

    async def _write_waiting(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting[: self.max_batch], self._waiting[self.max_batch :]
            await self._write(batch)

    async def _write(self, batch: list[tuple[Prepared, asyncio.Future[Row]]]) -> None:
        try:
            async with self.pool.connection() as conn:
                rows = await _insert(conn, [p.params for p, _ in batch])
        except Exception as exc:  # handed to the callers, who raise it
            if len(batch) == 1 or _connection_lost(exc):
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                return
            self.stats.retried_alone += len(batch)
            for item in batch:  # the transaction is gone: write each alone so that only the bad one fails
                await self._write([item])
            return
        self.stats.batches += 1
        self.stats.decisions += len(batch)
        self.stats.largest = max(self.stats.largest, len(batch))
        for (_, future), row in zip(batch, rows, strict=True):
            if not future.done():  # the caller may have gone away; its decision is stored all the same
                future.set_result(row)


async def _insert(conn: AsyncConnection[Row], params: list[dict[str, Any]]) -> list[Row]:
    """One decision: one statement in autocommit. Several: one transaction, the statements pipelined."""
    if len(params) == 1:
        row = await (await conn.execute(INSERT_DECISION, params[0])).fetchone()
        assert row is not None
        return [row]
    rows: list[Row] = []
    async with conn.transaction(), conn.pipeline():
        cursors = [await conn.execute(INSERT_DECISION, p) for p in params]
        for cursor in cursors:
            row = await cursor.fetchone()
            assert row is not None
            rows.append(row)
    return rows
