"""Delivering approval events to the webhooks of their teams: at least once, signed, retried with back-off.

One worker delivers at a time (a transaction-level advisory lock; the others skip the round). A round reads what is
due (db/webhooks.py), posts each event (`approvals/webhook.py` signs it), and records each attempt in the same
transaction: a 2xx is `delivered`, anything else `failed` with the time of the next try, the last allowed failure
`gave_up`. A server that dies mid-round commits nothing of it, so the next round sends those events again: a
receiver deduplicates by the `webhook-id` header, which is the event's id on every attempt.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
from psycopg_pool import AsyncConnectionPool

from mandate.approvals import webhook
from mandate.db import approvals as approval_queries
from mandate.db import webhooks as webhook_queries
from mandate.vocabulary import Row

log = logging.getLogger("mandate.webhooks")

WINDOW = timedelta(days=7)
"""How far back events are still owed a delivery (a server down for longer does not flood its receivers)."""
BATCH = 20
TIMEOUT_S = 5.0


async def deliver_round(
    pool: AsyncConnectionPool[psycopg.AsyncConnection[Row]], client: httpx.AsyncClient, *, backoff_s: float
) -> int:
    """Deliver what is due now; returns how many attempts were recorded (0 when another worker holds the round)."""
    async with pool.connection() as conn, conn.transaction():
        if not await webhook_queries.take_delivery_round(conn):
            return 0
        now = datetime.now(UTC)
        events = await webhook_queries.due(conn, now=now, since=now - WINDOW, limit=BATCH)
        if not events:
            return 0
        approvals = {e["approval_id"]: await approval_queries.get(conn, e["approval_id"]) for e in events}
        outcomes = await asyncio.gather(*(_post(client, e, approvals[e["approval_id"]], now) for e in events))
        recorded = 0
        for event, (status, error) in zip(events, outcomes, strict=True):
            attempt = int(event["attempts"]) + 1
            if error is None:
                outcome, next_at = "delivered", None
            elif attempt >= webhook.MAX_ATTEMPTS:
                outcome, next_at = "gave_up", None
                log.warning("webhook of %s: gave up on %s after %d attempts", event["team"], event["event_id"], attempt)
            else:
                outcome, next_at = "failed", webhook.retry_at(attempt, datetime.now(UTC), base_s=backoff_s)
            recorded += await webhook_queries.record_attempt(
                conn, event, outcome=outcome, status=status, error=error, next_at=next_at
            )
        return recorded


async def _post(client: httpx.AsyncClient, event: Row, approval: Any, now: datetime) -> tuple[int | None, str | None]:
    """(status, None) when the receiver took it (2xx), else (status or None, why not)."""
    if approval is None:  # cannot happen (a foreign key), but never fatal
        return None, "the approval request is missing"
    body = webhook.body(event, approval.to_dict(now), team=event["team"])
    headers = webhook.headers(event["secret"], str(event["event_id"]), int(time.time()), body)
    try:
        response = await client.post(event["url"], content=body, headers=headers, timeout=TIMEOUT_S)
    except Exception as exc:  # refused, timed out, not a URL httpx can use: a failed attempt, never fatal
        return None, f"{type(exc).__name__}: {exc}"[:500] or type(exc).__name__
    if 200 <= response.status_code < 300:
        return response.status_code, None
    return response.status_code, f"HTTP {response.status_code}"


async def run(
    pool: AsyncConnectionPool[psycopg.AsyncConnection[Row]], *, every_s: float, backoff_s: float, paused: Any
) -> None:
    """Deliver until cancelled, a round every `every_s` (skipped while `paused()`, e.g. during a migration)."""
    async with httpx.AsyncClient(follow_redirects=False, trust_env=False) as client:
        while True:
            await asyncio.sleep(every_s)
            if paused():
                continue
            try:
                while await deliver_round(pool, client, backoff_s=backoff_s) >= BATCH:
                    pass
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database is away or not migrated yet: the next round tries again
                log.warning("webhook delivery could not run (%s: %s)", type(exc).__name__, exc)
