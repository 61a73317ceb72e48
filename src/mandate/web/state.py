"""What a running server holds: the connection pool, the governance cache and whether a migration is running.

Background tasks keep it current: one LISTENs on `mandate_governance` and reloads governance when it changes
(debounced) and on `mandate_approvals` to wake the requests waiting for an approval to change; one watches the
migration advisory lock so that the API can answer 503 while a migration runs; one writes the `expired` event of
approval requests whose time ran out (the sweeper; every worker runs it, idempotently); one delivers approval
events to the teams' webhooks (web/webhooks.py; one worker per round).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from mandate.db import approvals as approval_queries
from mandate.db import rollups
from mandate.db.governance import load_governance
from mandate.db.migration_lock import HOLDER_QUERY, LOCK_KEYS
from mandate.governance import cache
from mandate.group_commit import GroupCommit
from mandate.service import StageReader
from mandate.vocabulary import Row
from mandate.web import webhooks

log = logging.getLogger("mandate.server")


def report_governance_warnings(warnings: list[cache.GovernanceWarning]) -> None:
    """Log, once per change, every governance row the server cannot fully use (MANDATE.md §3a)."""
    if not warnings:
        log.info("governance loaded without problems")
        return
    log.warning(
        "governance has %d problem(s); the server contains each and keeps serving (`mandate governance check`"
        " lists them)",
        len(warnings),
    )
    for warning in warnings:
        log.warning("governance problem: %s", warning)


SWEEP_MARGIN = timedelta(minutes=1)
"""How far back each sweep looks again past the previous one: for requests stored by a transaction that began
before it and committed after (a request is written with its decision, in one short statement)."""


@dataclass
class ServerState:
    database_url: str
    pool: AsyncConnectionPool[psycopg.AsyncConnection[Row]]
    writer: GroupCommit
    governance: cache.Governance = field(default_factory=cache.Governance)
    stages: StageReader = field(init=False)  # on the pool: the stored stages `executed` stages are judged on
    migration_holder: tuple[int, str] | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    governance_loaded: asyncio.Event = field(default_factory=asyncio.Event)
    approval_changed: dict[str, asyncio.Event] = field(default_factory=dict)  # approval id → woken on its change
    sweep_every_s: float = 15.0
    fold_every_s: float = 5.0
    webhook_every_s: float = 2.0
    webhook_backoff_s: float = 5.0

    def __post_init__(self) -> None:
        self.stages = StageReader(self.pool)

    def approval_event(self, approval_id: str) -> asyncio.Event:
        """The event set at the next change of this approval (take it before reading, so no change is missed)."""
        return self.approval_changed.setdefault(approval_id, asyncio.Event())

    def _approval_notified(self, approval_id: str) -> None:
        event = self.approval_changed.pop(approval_id, None)
        if event is not None:
            event.set()

    async def reload_governance(self) -> None:
        async with self.pool.connection() as conn:
            governance = await load_governance(conn)
        if set(map(str, governance.warnings)) != set(map(str, self.governance.warnings)):
            report_governance_warnings(governance.warnings)
        self.governance = governance
        self.governance_loaded.set()

    async def start(self) -> None:
        await self.pool.open(wait=True, timeout=15)
        await self.reload_governance()
        self.tasks = [
            asyncio.create_task(self._listen(), name="governance-listener"),
            asyncio.create_task(self._watch_migration_lock(), name="migration-lock-watch"),
            asyncio.create_task(self._sweep_expired_approvals(), name="approval-sweeper"),
            asyncio.create_task(self._fold_rollups(), name="rollup-fold"),
            asyncio.create_task(
                webhooks.run(
                    self.pool,
                    every_s=self.webhook_every_s,
                    backoff_s=self.webhook_backoff_s,
                    paused=lambda: self.migration_holder is not None,
                ),
                name="webhook-delivery",
            ),
        ]

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.pool.close()

    async def _listen(self) -> None:
        """Reload governance after every burst of NOTIFYs; reconnect with backoff when the connection drops."""
        delay = 0.5
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self.database_url, autocommit=True, application_name="mandate serve (listener)"
                ) as conn:
                    await conn.execute("LISTEN mandate_governance")
                    await conn.execute("LISTEN mandate_approvals")
                    await self.reload_governance()  # changes made while we were not listening
                    for approval_id in list(self.approval_changed):  # and approvals that changed meanwhile
                        self._approval_notified(approval_id)
                    delay = 0.5
                    gen = conn.notifies()
                    async for first in gen:
                        if first.channel == "mandate_approvals":
                            self._approval_notified(first.payload)
                            continue
                        # Drain the burst (an apply inserts into several tables), then reload once.
                        with contextlib.suppress(TimeoutError):
                            async with asyncio.timeout(0.05):
                                async for more in gen:
                                    if more.channel == "mandate_approvals":
                                        self._approval_notified(more.payload)
                        await self.reload_governance()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database went away: keep serving from the cache, retry
                log.warning(
                    "governance listener lost its connection (%s); retrying in %.1fs", type(exc).__name__, delay
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)  # PostgreSQL back: governance current again within 2 s

    async def _sweep_expired_approvals(self) -> None:
        """Write the `expired` event of requests whose time ran out. Reads never depend on it (the state is computed
        from `expires_at`); it makes expiry an event in the history and wakes whoever waits on those requests."""
        swept_before: datetime | None = None  # everything due before it is swept (None: look at every request)
        while True:
            await asyncio.sleep(self.sweep_every_s)
            if self.migration_holder is not None:
                continue
            try:
                now = datetime.now(UTC)
                async with self.pool.connection() as conn:
                    while await approval_queries.sweep(conn, now, since=swept_before) == approval_queries.SWEEP_BATCH:
                        pass
                swept_before = now - SWEEP_MARGIN
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database is away or not migrated yet: the next round tries again
                log.warning("approval sweeper could not run (%s: %s)", type(exc).__name__, exc)

    async def _fold_rollups(self) -> None:
        """Fold newly stored decision stages into the rollups (db/rollups.py), in chunks until caught up. Counts
        never depend on it (what is not folded yet is counted directly); it keeps them fast."""
        while True:
            if self.migration_holder is None:
                try:
                    async with self.pool.connection() as conn:
                        while await rollups.fold(conn) >= rollups.FOLD_ROWS:
                            log.info("rollups: still catching up with the stored decisions")
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # the database is away or not migrated yet: the next round tries again
                    log.warning("rollup fold could not run (%s: %s)", type(exc).__name__, exc)
            await asyncio.sleep(self.fold_every_s)

    async def _watch_migration_lock(self) -> None:
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self.database_url,
                    autocommit=True,
                    row_factory=dict_row,
                    application_name="mandate serve (lock watch)",
                ) as conn:
                    while True:
                        row = await (await conn.execute(HOLDER_QUERY, LOCK_KEYS)).fetchone()
                        self.migration_holder = None if row is None else (row["pid"], row["application"])
                        await asyncio.sleep(1.0)
            except asyncio.CancelledError:
                raise
            except Exception:
                self.migration_holder = None
                await asyncio.sleep(2.0)
