"""Webhooks of approval events in the database (migration 012): their configuration and every delivery attempt.

The configuration is written by the CLI (`mandate webhooks set|remove`, as the owner role: the application role may
not write it); the latest row of an organization's team is in force. What is due is computed from the append-only
events themselves — an approval request (`requested`) and each resolution — joined with the webhook in force for
the team the request is routed to and the attempts so far, so there is no outbox to keep in step: an event is due
when it happened after its webhook was set, has no final attempt (delivered or given up) and its last failed
attempt's `next_at` has passed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

import psycopg
from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from mandate.vocabulary import Row


async def take_delivery_round(conn: AsyncConnection[Row]) -> bool:
    """Whether this transaction may deliver the round: at most one worker does (a transaction-level advisory lock,
    not waited for — the others skip the round)."""
    row = await (
        await conn.execute("SELECT pg_try_advisory_xact_lock(hashtextextended('mandate.webhooks', 0)) AS mine")
    ).fetchone()
    return bool(row and row["mine"])


def set_webhook(
    conn: psycopg.Connection[Any],
    *,
    organization_id: UUID,
    team: str,
    url: str | None,
    secret: str | None,
    created_by: str,
) -> UUID:
    """Append the team's webhook (`url` None: remove it). Returns its id."""
    webhook_id = uuid4()
    conn.execute(
        """INSERT INTO mandate.approval_webhooks (webhook_id, organization_id, owning_team, url, secret, created_by)
           VALUES (%s, %s, %s, %s, %s, %s)""",
        [webhook_id, organization_id, team, url, secret, created_by],
    )
    return webhook_id


def list_webhooks(conn: psycopg.Connection[Any], organization_id: UUID | None) -> list[Any]:
    """The webhooks in force (never their secrets), with their delivery counts."""
    return (
        conn.cursor(row_factory=dict_row)
        .execute(
            """SELECT w.organization_id, w.owning_team, w.url, w.webhook_id, w.created_at, w.created_by,
                  (SELECT count(*) FROM mandate.webhook_deliveries d
                   WHERE d.webhook_id = w.webhook_id AND d.outcome = 'delivered') AS delivered,
                  (SELECT count(*) FROM mandate.webhook_deliveries d
                   WHERE d.webhook_id = w.webhook_id AND d.outcome = 'gave_up') AS given_up
           FROM (SELECT DISTINCT ON (organization_id, owning_team) * FROM mandate.approval_webhooks
                 WHERE %(org)s::uuid IS NULL OR organization_id = %(org)s::uuid
                 ORDER BY organization_id, owning_team, created_at DESC, webhook_id) w
           WHERE w.url IS NOT NULL ORDER BY w.organization_id, w.owning_team""",
            {"org": organization_id},
        )
        .fetchall()
    )


DUE = """
WITH events AS (
    SELECT a.approval_id AS event_id, a.approval_id, 'requested' AS kind, a.created_at AS at
    FROM mandate.approval_requests a WHERE a.created_at > %(since)s
    UNION ALL
    SELECT r.resolution_id, r.approval_id, r.kind, r.created_at
    FROM mandate.approval_resolutions r WHERE r.created_at > %(since)s
)
SELECT e.event_id, e.approval_id, e.kind, e.at, w.webhook_id, w.url, w.secret, w.owning_team AS team,
       coalesce(last.attempt, 0) AS attempts
FROM events e
JOIN mandate.approval_requests a ON a.approval_id = e.approval_id
CROSS JOIN LATERAL (
    SELECT w.* FROM unnest(array_prepend(a.owning_team, a.escalation)) WITH ORDINALITY AS route(team, nearness)
    CROSS JOIN LATERAL (SELECT * FROM mandate.approval_webhooks w
                        WHERE w.organization_id = a.organization_id AND w.owning_team = route.team
                        ORDER BY w.created_at DESC, w.webhook_id LIMIT 1) w
    WHERE w.url IS NOT NULL
    ORDER BY route.nearness LIMIT 1
) w
LEFT JOIN LATERAL (SELECT d.attempt, d.outcome, d.next_at FROM mandate.webhook_deliveries d
                   WHERE d.webhook_id = w.webhook_id AND d.event_id = e.event_id
                   ORDER BY d.attempt DESC LIMIT 1) last ON true
WHERE e.at >= w.created_at
  AND (last.attempt IS NULL OR (last.outcome = 'failed' AND last.next_at <= %(now)s))
ORDER BY e.at, e.event_id
LIMIT %(limit)s
"""


async def due(conn: AsyncConnection[Row], *, now: datetime, since: datetime, limit: int) -> list[Row]:
    """Events due for delivery now, oldest first (none, cheaply, when no webhook was ever set)."""
    configured = await (await conn.execute("SELECT EXISTS (SELECT 1 FROM mandate.approval_webhooks) AS any")).fetchone()
    if not configured or not configured["any"]:
        return []
    return await (await conn.execute(DUE, {"now": now, "since": since, "limit": limit})).fetchall()


async def record_attempt(
    conn: AsyncConnection[Row],
    event: Row,
    *,
    outcome: str,
    status: int | None,
    error: str | None,
    next_at: datetime | None,
) -> bool:
    """Append one attempt; a final one (delivered, gave_up) also on the decision stage's timeline. False when
    another worker already recorded this attempt or the event's end (a duplicate delivery: at least once)."""
    attempt = int(event["attempts"]) + 1
    to = f"webhook of {event['team']}"
    summary = {
        "delivered": f"approval {event['kind']} delivered to the {to}"
        + (f" (attempt {attempt})" if attempt > 1 else ""),
        "gave_up": f"approval {event['kind']} not delivered to the {to}: gave up after {attempt} attempts",
        "failed": "",
    }[outcome]
    row = await (
        await conn.execute(
            """WITH ins AS (
                   INSERT INTO mandate.webhook_deliveries (attempt_id, webhook_id, event_id, approval_id, event_kind,
                                                           attempt, outcome, status, error, next_at)
                   VALUES (%(id)s, %(webhook_id)s, %(event_id)s, %(approval_id)s, %(kind)s, %(attempt)s, %(outcome)s,
                           %(status)s, %(error)s, %(next_at)s)
                   ON CONFLICT DO NOTHING
                   RETURNING created_at
               ), t AS (
                   INSERT INTO mandate.audit_timeline_entries (decision_id, stage, intent, actor, target, summary,
                       details, severity, event_source, authority_level, "timestamp", organization_id, domain,
                       spec_id, spec_version)
                   SELECT d.decision_id, d.stage, d.intent, 'webhooks', d.target, %(summary)s, %(details)s,
                          %(severity)s, 'system', 'system', ins.created_at, d.organization_id, d.domain, d.spec_id,
                          d.spec_version
                   FROM ins, mandate.approval_requests a
                   JOIN mandate.decision_events d ON d.decision_id = a.decision_id AND d.stage = a.stage
                   WHERE a.approval_id = %(approval_id)s AND %(outcome)s <> 'failed'
               )
               SELECT count(*) AS written FROM ins""",
            {
                "id": uuid4(),
                "webhook_id": event["webhook_id"],
                "event_id": event["event_id"],
                "approval_id": event["approval_id"],
                "kind": event["kind"],
                "attempt": attempt,
                "outcome": outcome,
                "status": status,
                "error": None if error is None else error[:2000],
                "next_at": next_at,
                "summary": summary,
                "details": Jsonb(
                    {
                        "approval_id": str(event["approval_id"]),
                        "event_id": str(event["event_id"]),
                        "event": event["kind"],
                        "team": event["team"],
                        "webhook_id": str(event["webhook_id"]),
                        "attempts": attempt,
                        "status": status,
                        "error": error,
                    }
                ),
                "severity": "info" if outcome == "delivered" else "warning",
            },
        )
    ).fetchone()
    return bool(row and row["written"])
