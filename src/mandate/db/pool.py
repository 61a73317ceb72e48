"""The server's connection pool: psycopg_pool, with the waits that make an outage answer in time and a recovery
that follows PostgreSQL within a second.

The bounds (docs/reliability.md, "Outages"): a request waits at most `WAIT_S` for a connection (then 503); a new
connection gives up after `CONNECT_TIMEOUT_S`; a connection whose server vanished without a word is found dead by
TCP keepalives within about 11 s. A decision's wait to be stored is bounded by the group commit's `answer_timeout`
(`ANSWER_S`, the wait for a connection included), so ingestion answers — stored, or 503 — within
`OUTAGE_BOUND_S`; the SDK's default timeout is longer than that, so a client sees the 503, not a timeout.

Recovery. psycopg_pool retries a failed connection attempt with exponential backoff (1, 2, 4, 8, 16 s, …), so a
pool that lost its connections in a 20 s outage tried again up to 16 s after PostgreSQL was back. Here the delay
never exceeds `RETRY_S`: one attempt per missing connection every half second while the database is down (a
refused connection costs microseconds), so the pool fills again within `RETRY_S` of PostgreSQL answering.

Connections that died while idle in the pool (a restart of PostgreSQL ends every one of them: the server sends
each a FATAL and closes it) are recognised before they are handed out, without a round trip: an idle connection
has nothing to read, so a readable socket means a closed one. It is discarded (the pool replaces it) and the next
one taken, so a restart costs no request an error.
"""

from __future__ import annotations

import select
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool
from psycopg_pool.base import AttemptWithBackoff

OUTAGE_BOUND_S = 10.0  # the documented bound: ingestion answers within this while PostgreSQL is down
WAIT_S = 5.0  # for a connection from the pool
ANSWER_S = 8.0  # for a decision to be stored (the group commit's answer_timeout), the wait for a connection included
CONNECT_TIMEOUT_S = 3  # for a new connection
RETRY_S = 0.5  # at most, between attempts to replace a lost connection

CONNECTION_OPTIONS: dict[str, Any] = {
    "connect_timeout": CONNECT_TIMEOUT_S,
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 3,
}

Connection = psycopg.AsyncConnection[Any]


class _SteadyRetry(AttemptWithBackoff):
    """psycopg_pool's reconnection backoff, capped at RETRY_S."""

    INITIAL_DELAY = RETRY_S / 2

    def update_delay(self, now: float) -> None:
        super().update_delay(now)
        self.delay = min(self.delay, RETRY_S)


def closed_by_server(conn: Connection) -> bool:
    """Whether an idle connection is closed or has something to read (a FATAL and EOF: the server ended it)."""
    if conn.closed or conn.broken:
        return True
    try:
        readable, _, _ = select.select([conn.pgconn.socket], [], [], 0)
    except (OSError, ValueError, psycopg.OperationalError):
        return True
    return bool(readable)


class ServerPool(AsyncConnectionPool[Connection]):
    """An AsyncConnectionPool that reconnects within RETRY_S and never hands out a connection the server closed."""

    def __init__(self, conninfo: str, *, kwargs: dict[str, Any] | None = None, **options: Any) -> None:
        options.setdefault("timeout", WAIT_S)
        options.setdefault("reconnect_timeout", 24 * 3600.0)  # never give up on the database; keep trying
        super().__init__(conninfo, kwargs={**CONNECTION_OPTIONS, **(kwargs or {})}, **options)

    async def _add_connection(self, attempt: AttemptWithBackoff | None, growing: bool = False) -> None:
        # psycopg_pool starts every reconnection with attempt=None and makes its own backoff: give it ours.
        await super()._add_connection(attempt or _SteadyRetry(timeout=self.reconnect_timeout), growing)

    async def getconn(self, timeout: float | None = None) -> Connection:
        for _ in range(self.max_size):
            conn = await super().getconn(timeout)
            if not closed_by_server(conn):
                return conn
            await conn.close()
            await self.putconn(conn)  # a closed connection is discarded, and the pool makes a new one
        return await super().getconn(timeout)
