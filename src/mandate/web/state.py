"""What a running server holds: the connection pool, the governance cache and whether a migration is running.

Two background tasks keep it current: one LISTENs on `mandate_governance` and reloads governance when it changes
(debounced), one watches the migration advisory lock so that the API can answer 503 while a migration runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from mandate.governance import cache
from mandate.group_commit import GroupCommit
from mandate.migrate.runner import HOLDER_QUERY, LOCK_KEYS

log = logging.getLogger("mandate.server")
Row = dict[str, Any]


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


@dataclass
class ServerState:
    database_url: str
    pool: AsyncConnectionPool[psycopg.AsyncConnection[Row]]
    writer: GroupCommit
    governance: cache.Governance = field(default_factory=cache.Governance)
    migration_holder: tuple[int, str] | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    governance_loaded: asyncio.Event = field(default_factory=asyncio.Event)

    async def reload_governance(self) -> None:
        async with self.pool.connection() as conn:
            governance = await cache.load(conn)
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
                    await self.reload_governance()  # changes made while we were not listening
                    delay = 0.5
                    gen = conn.notifies()
                    async for _ in gen:
                        # Drain the burst (an apply inserts into several tables), then reload once.
                        with contextlib.suppress(TimeoutError):
                            async with asyncio.timeout(0.05):
                                async for _ in gen:
                                    pass
                        await self.reload_governance()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database went away: keep serving from the cache, retry
                log.warning(
                    "governance listener lost its connection (%s); retrying in %.1fs", type(exc).__name__, delay
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)  # PostgreSQL back: governance current again within 2 s

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
