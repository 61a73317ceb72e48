"""The stored stages an `executed` stage is judged on (its approval facts, `approvals.approval_facts`), read for
many decisions at once.

Reads that arrive while one is running wait for the next, and that next query reads all of them
(`db.approvals.earlier_stages_of`), as the group commit shares commits: a read that arrives while none is running is
sent at once, so nothing waits for company, and under load the `executed` stages of concurrent requests — or all of
a batch's, which arrive in one step — share one query and one pooled connection instead of taking one each. A query
starts only after every read it answers was asked, so each sees what was stored before it asked.
"""

from __future__ import annotations

import asyncio
import uuid

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from mandate.db import approvals as approval_queries
from mandate.vocabulary import Row


class StageReader:
    def __init__(self, pool: AsyncConnectionPool[AsyncConnection[Row]]) -> None:
        self.pool = pool
        self.queries = 0  # how many queries answered the reads so far
        self._waiting: dict[uuid.UUID, list[asyncio.Future[list[Row]]]] = {}
        self._task: asyncio.Task[None] | None = None  # the running reader, strongly referenced

    async def stages(self, decision_id: uuid.UUID) -> list[Row]:
        """The stored stages of `decision_id` with their verdicts, oldest first (`db.approvals.earlier_stages`).

        A read waits at most the pool's `timeout` in all, as it would for a connection of its own: while the
        database is down, one that waits behind a query still waiting for its connection fails (PoolTimeout, a 503)
        within that bound, not after that query's wait and its own (docs/reliability.md, "Outages")."""
        future: asyncio.Future[list[Row]] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(decision_id, []).append(future)
        if self._task is None:
            self._task = asyncio.create_task(self._read_waiting(), name="stage reader")
        try:
            async with asyncio.timeout(self.pool.timeout):
                return await future
        except TimeoutError:
            raise PoolTimeout(f"the stored stages were not read within {self.pool.timeout:g} s") from None

    async def _read_waiting(self) -> None:
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, {}
                try:
                    async with self.pool.connection() as conn:
                        found = await approval_queries.earlier_stages_of(conn, list(batch))
                except Exception as exc:  # handed to the readers, who raise it (a 503 for a lost database)
                    _settle(batch, exc)
                    continue
                except BaseException as exc:  # cancelled (the server stops): nobody may wait forever
                    _settle(batch, exc)
                    _settle(self._waiting, exc)
                    self._waiting = {}
                    raise
                self.queries += 1
                for decision_id, futures in batch.items():
                    for future in futures:
                        if not future.done():  # a reader whose request went away
                            future.set_result(found[decision_id])
        finally:
            # In the step that found nothing waiting (or on the way out): no await in between, so a read asked after
            # this sees no reader and starts one.
            self._task = None


def _settle(batch: dict[uuid.UUID, list[asyncio.Future[list[Row]]]], exc: BaseException) -> None:
    for futures in batch.values():
        for future in futures:
            if not future.done():
                if isinstance(exc, asyncio.CancelledError):
                    future.cancel()
                else:
                    future.set_exception(exc)
