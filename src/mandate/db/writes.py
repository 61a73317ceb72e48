"""The write path's SQL: the one statement that stores a decision stage (its decision, verdict and timeline rows,
and what approvals add), the rejection log, and outcome reports. Each is one statement, so nothing is ever
half-written; `service.prepare` fills their parameters, `service.store` and `group_commit` send them."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from mandate.vocabulary import Row


def compact(statement: str) -> str:
    """`statement` with each run of whitespace outside string literals as one space. psycopg caches the conversion
    of a statement's named parameters only up to 4,096 characters (`psycopg._queries.MAX_CACHED_STATEMENT_LENGTH`);
    above, it parses the text again for every decision, which cost a tenth of the server's CPU on the write path."""
    return re.sub(r"'[^']*'|\s+", lambda m: m.group(0) if m.group(0).startswith("'") else " ", statement).strip()


_WRITE_DECISION = """
WITH ins_d AS (
    INSERT INTO mandate.decision_events (decision_id, intent, stage, actor, target, context, scope, "timestamp",
                                         organization_id, domain, spec_id, spec_version, request_hash, token_id,
                                         verdict)
    VALUES (%(decision_id)s, %(intent)s, %(stage)s::mandate.stage, %(actor)s, %(target)s, %(context)s, %(scope)s,
            %(timestamp)s, %(organization_id)s, %(domain)s, %(spec_id)s, %(spec_version)s, %(request_hash)s,
            %(token_id)s, %(verdict)s::mandate.verdict)
    ON CONFLICT (decision_id, stage) DO NOTHING
    RETURNING decision_id, stage
), ins_v AS (
    INSERT INTO mandate.verdict_events (verdict_id, decision_id, stage, snapshot_id, snapshot_version, verdict,
                                        matched_policy_ids, "timestamp", organization_id, domain, spec_id,
                                        spec_version, scope_id, owning_team, summary, explanation, pause_requires,
                                        pause_expires_at)
    SELECT %(verdict_id)s, decision_id, stage, %(snapshot_id)s, %(snapshot_version)s, %(verdict)s::mandate.verdict,
           %(matched)s, %(evaluated_at)s, %(organization_id)s, %(domain)s, %(spec_id)s, %(spec_version)s,
           %(scope_id)s, %(owning_team)s, %(summary)s, %(explanation)s, %(pause_requires)s, %(pause_expires_at)s
    FROM ins_d
    RETURNING verdict_id
), ins_t AS (
    INSERT INTO mandate.audit_timeline_entries (decision_id, stage, intent, actor, target, summary, details, severity,
                                                event_source, authority_level, "timestamp", organization_id, domain,
                                                spec_id, spec_version)
    SELECT ins_d.decision_id, ins_d.stage, %(intent)s, %(actor)s, %(target)s, e.summary, e.details, e.severity,
           e.source::mandate.event_source, e.authority::mandate.authority_level, e.ts, %(organization_id)s,
           %(domain)s, %(spec_id)s, %(spec_version)s
    FROM ins_d CROSS JOIN (VALUES
        ('decision received', %(received_details)s::jsonb, 'info', 'agent', 'agent', %(received_at)s::timestamptz),
        (%(evaluated_summary)s, %(evaluated_details)s::jsonb, %(severity)s, 'system', 'system',
         %(evaluated_at)s::timestamptz)
    ) AS e (summary, details, severity, source, authority, ts)
    RETURNING entry_id
)"""

_ANSWER = """
SELECT (SELECT count(*) FROM ins_d) AS inserted,
       (SELECT count(*) FROM ins_v) AS verdicts,
       (SELECT count(*) FROM ins_t) AS entries
"""

INSERT_DECISION = compact(_WRITE_DECISION + _ANSWER)
"""Store a decision stage, its verdict and its two timeline entries: one statement, so never half-written. An
identical (decision_id, stage) already stored inserts nothing (`inserted` 0)."""

INSERT_GOVERNED_DECISION = compact(
    _WRITE_DECISION  # noqa: S608 - constant SQL text; every value is a bound parameter
    + (
        """, ins_a AS (
    INSERT INTO mandate.approval_requests (approval_id, decision_id, stage, verdict_id, organization_id, domain,
                                           spec_id, spec_version, snapshot_id, snapshot_version, scope_id, owning_team,
                                           escalation, requirements, binding_digest, binding, expires_at, token_id)
    SELECT %(verdict_id)s, decision_id, stage, %(verdict_id)s, %(organization_id)s, %(domain)s, %(spec_id)s,
           %(spec_version)s, %(snapshot_id)s, %(snapshot_version)s, %(scope_id)s, %(owning_team)s, %(escalation)s,
           %(requirements)s, %(binding_digest)s, %(binding)s, %(pause_expires_at)s, %(token_id)s
    FROM ins_d WHERE %(requirements)s::text[] IS NOT NULL
    RETURNING approval_id
), ins_c AS (
    INSERT INTO mandate.approval_consumptions (approval_id, decision_id, stage, verdict_id)
    SELECT %(consumes)s, decision_id, stage, %(verdict_id)s FROM ins_d WHERE %(consumes)s::uuid IS NOT NULL
    RETURNING approval_id
), ins_f AS (
    INSERT INTO mandate.findings (finding_id, decision_id, stage, organization_id, domain, kind, approval_id, summary,
                                  details)
    SELECT %(finding_id)s, decision_id, stage, %(organization_id)s, %(domain)s, %(finding_kind)s,
           %(finding_approval)s, %(finding_summary)s, %(finding_details)s
    FROM ins_d WHERE %(finding_id)s::uuid IS NOT NULL
    RETURNING finding_id
), ins_ft AS (
    INSERT INTO mandate.audit_timeline_entries (decision_id, stage, intent, actor, target, summary, details, severity,
                                                event_source, authority_level, "timestamp", organization_id, domain,
                                                spec_id, spec_version)
    SELECT ins_d.decision_id, ins_d.stage, %(intent)s, %(actor)s, %(target)s, 'finding: ' || %(finding_summary)s,
           %(finding_details)s, 'critical', 'system', 'system', %(evaluated_at)s, %(organization_id)s, %(domain)s,
           %(spec_id)s, %(spec_version)s
    FROM ins_d WHERE %(finding_id)s::uuid IS NOT NULL
    RETURNING entry_id
)"""
    )
    + _ANSWER
    + ", (SELECT count(pg_notify('mandate_approvals', approval_id::text)) FROM ins_c) AS consumed"
)
"""`INSERT_DECISION` for a stage that approvals concern: a PAUSE (its approval request), a resume (the approval's
consumption: a second consumption violates its primary key and nothing of the statement is stored) or an `executed`
stage with a finding (the finding and its timeline entry). Still one statement."""


async def insert_rejection(
    conn: AsyncConnection[Row], reason: str, problems: list[dict[str, Any]], attribution: Sequence[str | None]
) -> None:
    """Append to `mandate.decision_rejections`: why, the problems, and the attribution as sent (decision_id,
    organization_id, domain, intent, stage; already safe to store)."""
    await conn.execute(
        """INSERT INTO mandate.decision_rejections (reason, problems, decision_id, organization_id, domain, intent,
                                                    stage) VALUES (%s, %s, %s, %s, %s, %s, %s)""",
        [reason, Jsonb(problems), *attribution],
    )


async def insert_outcome(
    conn: AsyncConnection[Row], decision_id: uuid.UUID, stage: str | None, outcome: str, details: Mapping[str, Any]
) -> Row | None:
    """Append an `outcome reported` timeline entry to a decision's stage (the latest when `stage` is None); None
    when there is no such decision stage."""
    cur = await conn.execute(
        """INSERT INTO mandate.audit_timeline_entries (decision_id, stage, intent, actor, target, summary, details,
                   severity, event_source, authority_level, "timestamp", organization_id, domain, spec_id,
                   spec_version)
               SELECT d.decision_id, d.stage, d.intent, d.actor, d.target, 'outcome reported: ' || %(outcome)s,
                      %(details)s, 'info', 'agent', 'agent', now(), d.organization_id, d.domain, d.spec_id,
                      d.spec_version
               FROM mandate.decision_events d
               WHERE d.decision_id = %(decision_id)s
                 AND (%(stage)s::mandate.stage IS NULL OR d.stage = %(stage)s::mandate.stage)
               ORDER BY d."timestamp" DESC, d.stage DESC LIMIT 1
               RETURNING entry_id, decision_id, stage::text AS stage, summary, details, "timestamp" """,
        {
            "decision_id": decision_id,
            "stage": stage,
            "outcome": outcome,
            "details": Jsonb({"outcome": outcome, **details}),
        },
    )
    return await cur.fetchone()
