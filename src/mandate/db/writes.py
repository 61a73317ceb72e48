"""The write path's SQL: the one statement that stores a decision stage (its decision, verdict and timeline rows,
and what approvals add), the rejection log, and outcome reports. Each is one statement, so nothing is ever
half-written; `service.prepare` fills their parameters, `service.store` and `group_commit` send them."""

from __future__ import annotations

import functools
import re
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from mandate.vocabulary import Row


def compact(statement: str) -> str:
    """`statement` with each run of whitespace outside string literals as one space: fewer bytes sent with every
    decision and read in `pg_stat_activity`. (Every write statement goes out with `$n` placeholders, `raw`, so
    psycopg's own conversion and its 4,096-character cache no longer play a part.)"""
    return re.sub(r"'[^']*'|\s+", lambda m: m.group(0) if m.group(0).startswith("'") else " ", statement).strip()


DECISION_INPUT: tuple[tuple[str, str], ...] = (
    ("decision_id", "uuid"),
    ("intent", "text"),
    ("stage", "mandate.stage"),
    ("actor", "text"),
    ("target", "text"),
    ("context", "jsonb"),
    ("scope", "jsonb"),
    ("timestamp", "timestamptz"),
    ("organization_id", "uuid"),
    ("domain", "text"),
    ("spec_id", "text"),
    ("spec_version", "text"),
    ("request_hash", "text"),
    ("token_id", "uuid"),
    ("verdict_id", "uuid"),
    ("snapshot_id", "uuid"),
    ("snapshot_version", "integer"),
    ("verdict", "mandate.verdict"),
    ("matched", "text[]"),
    ("evaluated_at", "timestamptz"),
    ("received_at", "timestamptz"),
    ("scope_id", "text"),
    ("owning_team", "text"),
    ("summary", "text"),
    ("explanation", "jsonb"),
    ("pause_requires", "text[]"),
    ("pause_expires_at", "timestamptz"),
    ("received_details", "jsonb"),
    ("evaluated_summary", "text"),
    ("evaluated_details", "jsonb"),
    ("severity", "text"),
)
"""The parameters of a decision stage's write (`service.prepare` fills them) and their SQL types: the columns of the
`input` rows that `INSERT_DECISION` (one decision) and `insert_decisions` (several) store."""

_INPUT_COLUMNS = ", ".join(["ord", *(f'"{name}"' for name, _ in DECISION_INPUT)])

_WRITE_INPUT = """
ins_d AS (
    INSERT INTO mandate.decision_events (decision_id, intent, stage, actor, target, context, scope, "timestamp",
                                         organization_id, domain, spec_id, spec_version, request_hash, token_id,
                                         verdict)
    SELECT decision_id, intent, stage, actor, target, context, scope, "timestamp", organization_id, domain, spec_id,
           spec_version, request_hash, token_id, verdict
    FROM input ORDER BY ord
    ON CONFLICT (decision_id, stage) DO NOTHING
    RETURNING decision_id, stage
), ins_v AS (
    INSERT INTO mandate.verdict_events (verdict_id, decision_id, stage, snapshot_id, snapshot_version, verdict,
                                        matched_policy_ids, "timestamp", organization_id, domain, spec_id,
                                        spec_version, scope_id, owning_team, summary, explanation, pause_requires,
                                        pause_expires_at)
    SELECT i.verdict_id, d.decision_id, d.stage, i.snapshot_id, i.snapshot_version, i.verdict, i.matched,
           i.evaluated_at, i.organization_id, i.domain, i.spec_id, i.spec_version, i.scope_id, i.owning_team,
           i.summary, i.explanation, i.pause_requires, i.pause_expires_at
    FROM ins_d d JOIN input i ON i.decision_id = d.decision_id AND i.stage = d.stage
    ORDER BY i.ord
    RETURNING verdict_id
), ins_t AS (
    INSERT INTO mandate.audit_timeline_entries (decision_id, stage, intent, actor, target, summary, details, severity,
                                                event_source, authority_level, "timestamp", organization_id, domain,
                                                spec_id, spec_version)
    SELECT d.decision_id, d.stage, i.intent, i.actor, i.target, e.summary, e.details, e.severity,
           e.source::mandate.event_source, e.authority::mandate.authority_level, e.ts, i.organization_id, i.domain,
           i.spec_id, i.spec_version
    FROM ins_d d JOIN input i ON i.decision_id = d.decision_id AND i.stage = d.stage
    CROSS JOIN LATERAL (VALUES
        (1, 'decision received', i.received_details, 'info', 'agent', 'agent', i.received_at),
        (2, i.evaluated_summary, i.evaluated_details, i.severity, 'system', 'system', i.evaluated_at)
    ) AS e (n, summary, details, severity, source, authority, ts)
    ORDER BY i.ord, e.n
    RETURNING entry_id
)"""


def _with_input(rows: list[str]) -> str:
    """The `input` rows (each `(ord, <DECISION_INPUT>)`, placeholders cast to their types) and the write of them."""
    return f"WITH input ({_INPUT_COLUMNS}) AS (VALUES " + ", ".join(rows) + ")," + _WRITE_INPUT


_WRITE_DECISION = _with_input(["(0, " + ", ".join(f"%({name})s::{kind}" for name, kind in DECISION_INPUT) + ")"])

_ANSWER = """
SELECT (SELECT count(*) FROM ins_d) AS inserted,
       (SELECT count(*) FROM ins_v) AS verdicts,
       (SELECT count(*) FROM ins_t) AS entries
"""

INSERT_DECISION = compact(_WRITE_DECISION + _ANSWER)
"""Store a decision stage, its verdict and its two timeline entries: one statement, so never half-written. An
identical (decision_id, stage) already stored inserts nothing (`inserted` 0)."""


@functools.cache
def insert_decisions(count: int) -> bytes:
    """`INSERT_DECISION` for `count` decision stages in one statement, written for a raw cursor (PostgreSQL's own
    `$n` placeholders: `decision_rows` gives the parameters, `count` rows of DECISION_INPUT, each led by its
    ordinal). Each stage is stored whole or, when already stored, not at all, as alone; its answer row (ordered by
    ordinal) says which (`inserted` 1 or 0). The stages must be distinct: two rows with the same (decision_id,
    stage) would both be answered as inserted."""
    if count < 1:
        raise ValueError("count must be at least 1")
    width = len(DECISION_INPUT) + 1
    rows = (
        "("
        + ", ".join(
            [f"${r * width + 1}::integer"]
            + [f"${r * width + k + 2}::{kind}" for k, (_, kind) in enumerate(DECISION_INPUT)]
        )
        + ")"
        for r in range(count)
    )
    answer = """
SELECT i.ord, (d.decision_id IS NOT NULL)::integer AS inserted
FROM input i LEFT JOIN ins_d d ON d.decision_id = i.decision_id AND d.stage = i.stage
ORDER BY i.ord"""
    return compact(_with_input(list(rows)) + answer).encode()


@functools.cache
def raw(statement: str) -> tuple[bytes, tuple[str, ...]]:
    """`statement` with PostgreSQL's own `$n` placeholders instead of its named ones, and the names in `$n` order
    (`raw_params`): sent through a raw cursor, psycopg converts nothing per execution, whatever the statement's
    length (it caches its own conversion of named placeholders only up to 4,096 characters)."""
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        if match.group(1) not in names:
            names.append(match.group(1))
        return f"${names.index(match.group(1)) + 1}"

    return re.sub(r"%\((\w+)\)s", number, statement).encode(), tuple(names)


def raw_params(names: Sequence[str], params: Mapping[str, Any]) -> list[Any]:
    """The parameters of a `raw` statement, in `$n` order."""
    return [params[name] for name in names]


def decision_rows(params: Sequence[Mapping[str, Any]]) -> list[Any]:
    """The parameters of `insert_decisions(len(params))`: each decision's ordinal, then its DECISION_INPUT."""
    return [value for ord_, p in enumerate(params) for value in (ord_, *(p[name] for name, _ in DECISION_INPUT))]


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
