"""Approval requests, their resolution events, consumptions and findings in the database (migration 012).

Every resolution event is announced on the channel `mandate_approvals` (payload: the approval id), so that a server
answers its long-polls and event streams as soon as any worker records a change.

Requests are written with their PAUSE verdict (`db.writes.INSERT_DECISION`), consumptions and findings with the
stage that caused them; this module reads them and appends resolution events. Every state change of one request is
serialised by a transaction-level advisory lock on its id (no UPDATE privilege is needed, unlike SELECT … FOR
UPDATE); the unique indexes of 012 are the backstop.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from psycopg import AsyncConnection, sql
from psycopg.types.json import Jsonb

from mandate.approvals.state import Approval
from mandate.db.decisions import VERDICT_STAGE, Cursor
from mandate.vocabulary import Row

_REQUEST = """SELECT a.*, a.stage::text AS stage FROM mandate.approval_requests a"""
_EVENTS = """SELECT approval_id, kind, requirement, token_id, actor, reason, created_at
             FROM mandate.approval_resolutions WHERE approval_id = ANY(%s) ORDER BY created_at, resolution_id"""
_USED = """SELECT approval_id, decision_id, stage::text AS stage, verdict_id, created_at
           FROM mandate.approval_consumptions WHERE approval_id = ANY(%s)"""


async def _with_events(conn: AsyncConnection[Row], requests: Sequence[Row]) -> list[Approval]:
    if not requests:
        return []
    ids = [r["approval_id"] for r in requests]
    events: dict[UUID, list[Row]] = {}
    for e in await (await conn.execute(_EVENTS, [ids])).fetchall():
        events.setdefault(e["approval_id"], []).append(e)
    used = {u["approval_id"]: u for u in await (await conn.execute(_USED, [ids])).fetchall()}
    return [Approval(r, tuple(events.get(r["approval_id"], ())), used.get(r["approval_id"])) for r in requests]


async def get(conn: AsyncConnection[Row], approval_id: UUID) -> Approval | None:
    """One request with its events and consumption: three statements in one round trip (a pipeline), since a
    resume reads it on the hot path."""
    async with conn.pipeline():
        request = await conn.execute(_REQUEST + " WHERE a.approval_id = %s", [approval_id])
        events = await conn.execute(_EVENTS, [[approval_id]])
        used = await conn.execute(_USED, [[approval_id]])
    row = await request.fetchone()
    if row is None:
        return None
    return Approval(row, tuple(await events.fetchall()), await used.fetchone())


async def of_decision(conn: AsyncConnection[Row], decision_id: UUID) -> list[Approval]:
    """The approval requests of a decision's stages, oldest first."""
    rows = await (
        await conn.execute(_REQUEST + " WHERE a.decision_id = %s ORDER BY a.created_at, a.approval_id", [decision_id])
    ).fetchall()
    return await _with_events(conn, rows)


async def get_many(conn: AsyncConnection[Row], approval_ids: Sequence[UUID]) -> list[Approval]:
    """The requests with these ids that exist, oldest first (the approvals a decision's resumes presented)."""
    if not approval_ids:
        return []
    rows = await (
        await conn.execute(
            _REQUEST + " WHERE a.approval_id = ANY(%s) ORDER BY a.created_at, a.approval_id", [list(approval_ids)]
        )
    ).fetchall()
    return await _with_events(conn, rows)


async def lock(conn: AsyncConnection[Row], approval_id: UUID) -> None:
    """Serialise state changes of one request until the transaction ends."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s::text, 12))", [approval_id])


async def append_resolution(
    conn: AsyncConnection[Row],
    approval: Approval,
    *,
    kind: str,
    requirement: str | None,
    token_id: UUID | None,
    actor: str,
    reason: str | None,
    source: str,
) -> Row:
    """Append one resolution event and its timeline entry on the PAUSEd decision stage (one statement)."""
    r = approval.request
    summary = f"approval {kind}" + (f": {requirement}" if requirement else "") + f" by {actor}"
    row = await (
        await conn.execute(
            """WITH ins AS (
                   INSERT INTO mandate.approval_resolutions (resolution_id, approval_id, kind, requirement, token_id,
                                                             actor, reason)
                   VALUES (%(id)s, %(approval_id)s, %(kind)s, %(requirement)s, %(token_id)s, %(actor)s, %(reason)s)
                   RETURNING resolution_id, approval_id, kind, requirement, token_id, actor, reason, created_at
               ), t AS (
                   INSERT INTO mandate.audit_timeline_entries (decision_id, stage, intent, actor, target, summary,
                       details, severity, event_source, authority_level, "timestamp", organization_id, domain,
                       spec_id, spec_version)
                   SELECT d.decision_id, d.stage, d.intent, %(actor)s, d.target, %(summary)s, %(details)s,
                          %(severity)s, %(source)s::text::mandate.event_source, %(source)s::text::mandate.authority_level,
                          ins.created_at, d.organization_id, d.domain, d.spec_id, d.spec_version
                   FROM ins, mandate.decision_events d WHERE d.decision_id = %(decision_id)s AND d.stage = %(stage)s
               )
               SELECT ins.*, pg_notify('mandate_approvals', ins.approval_id::text) FROM ins""",
            {
                "id": uuid4(),
                "approval_id": approval.approval_id,
                "kind": kind,
                "requirement": requirement,
                "token_id": token_id,
                "actor": actor,
                "reason": reason,
                "summary": summary,
                "details": Jsonb(
                    {
                        "approval_id": str(approval.approval_id),
                        "kind": kind,
                        "requirement": requirement,
                        "token_id": None if token_id is None else str(token_id),
                        "reason": reason,
                    }
                ),
                "severity": "warning" if kind in ("rejected", "expired") else "info",
                "source": source,
                "decision_id": r["decision_id"],
                "stage": r["stage"],
            },
        )
    ).fetchone()
    assert row is not None
    return row


SWEEP = """
WITH due AS (
    SELECT a.approval_id, a.decision_id, a.stage, a.expires_at
    FROM mandate.approval_requests a
    WHERE a.expires_at <= %(now)s
      AND (a.expires_at > coalesce(%(since)s::timestamptz, '-infinity')
           OR a.created_at > coalesce(%(since)s::timestamptz, '-infinity'))
      AND NOT EXISTS (SELECT 1 FROM mandate.approval_resolutions r
                      WHERE r.approval_id = a.approval_id AND r.kind <> 'approved')
      AND NOT EXISTS (SELECT 1 FROM mandate.approval_consumptions c WHERE c.approval_id = a.approval_id)
    ORDER BY a.expires_at LIMIT %(limit)s
), ins AS (
    INSERT INTO mandate.approval_resolutions (resolution_id, approval_id, kind, actor, reason, created_at)
    SELECT gen_random_uuid(), approval_id, 'expired', 'sweeper', 'nobody resolved it before it expired', expires_at
    FROM due
    ON CONFLICT (approval_id) WHERE kind <> 'approved' DO NOTHING
    RETURNING approval_id, created_at
), t AS (
    INSERT INTO mandate.audit_timeline_entries (decision_id, stage, intent, actor, target, summary, details, severity,
        event_source, authority_level, "timestamp", organization_id, domain, spec_id, spec_version)
    SELECT d.decision_id, d.stage, d.intent, 'sweeper', d.target, 'approval expired', jsonb_build_object(
               'approval_id', ins.approval_id, 'kind', 'expired'),
           'warning', 'system', 'system', ins.created_at, d.organization_id, d.domain, d.spec_id, d.spec_version
    FROM ins JOIN due USING (approval_id)
    JOIN mandate.decision_events d ON d.decision_id = due.decision_id AND d.stage = due.stage
)
SELECT count(pg_notify('mandate_approvals', approval_id::text)) AS expired FROM ins
"""


SWEEP_BATCH = 1000


async def sweep(
    conn: AsyncConnection[Row], now: datetime, *, since: datetime | None = None, limit: int = SWEEP_BATCH
) -> int:
    """Write the `expired` event of up to `limit` requests whose time ran out (idempotent: the one-ending index makes
    a concurrent sweeper's duplicate a no-op). Its time is the expiry itself, so the history reads the same whenever
    the sweeper ran. `since`: only requests that expired or were stored after it (a sweeper that swept everything
    due before it; None: all). Returns how many it wrote."""
    row = await (await conn.execute(SWEEP, {"now": now, "since": since, "limit": limit})).fetchone()
    return int(row["expired"]) if row else 0


async def teams_with_approvers(
    conn: AsyncConnection[Row], organization_id: UUID, domain: str, now: datetime
) -> set[str]:
    """The teams named by valid approver tokens of this domain."""
    rows = await (
        await conn.execute(
            """SELECT DISTINCT unnest(t.teams) AS team FROM mandate.api_tokens t
               WHERE t.organization_id = %s AND t.role = 'approver' AND t.teams IS NOT NULL
                 AND (t.domains IS NULL OR %s = ANY(t.domains)) AND (t.expires_at IS NULL OR t.expires_at > %s)
                 AND NOT EXISTS (SELECT 1 FROM mandate.api_token_revocations r WHERE r.token_id = t.token_id)""",
            [organization_id, domain, now],
        )
    ).fetchall()
    return {r["team"] for r in rows}


_OPEN = sql.SQL(
    """NOT EXISTS (SELECT 1 FROM mandate.approval_resolutions r WHERE r.approval_id = a.approval_id
                      AND r.kind <> 'approved')
       AND NOT EXISTS (SELECT 1 FROM mandate.approval_consumptions c WHERE c.approval_id = a.approval_id)"""
)
_LIVE = sql.SQL("coalesce(a.expires_at, 'infinity') > %s")  # idx_approval_requests_live (migration 013)
_SATISFIED = sql.SQL(
    """(SELECT count(DISTINCT r.requirement) FROM mandate.approval_resolutions r
        WHERE r.approval_id = a.approval_id AND r.kind = 'approved') >= cardinality(a.requirements)"""
)
_ENDED_AS = sql.SQL(
    "EXISTS (SELECT 1 FROM mandate.approval_resolutions r WHERE r.approval_id = a.approval_id AND r.kind = {})"
)
_STATE: dict[str, sql.Composable] = {
    "pending": sql.SQL("{} AND {} AND NOT {}").format(_OPEN, _LIVE, _SATISFIED),
    "approved": sql.SQL("{} AND {} AND {}").format(_OPEN, _LIVE, _SATISFIED),
    "expired": sql.SQL("({} OR ({} AND NOT {}))").format(_ENDED_AS.format(sql.Literal("expired")), _OPEN, _LIVE),
    "rejected": _ENDED_AS.format(sql.Literal("rejected")),
    "withdrawn": _ENDED_AS.format(sql.Literal("withdrawn")),
    "consumed": sql.SQL("EXISTS (SELECT 1 FROM mandate.approval_consumptions c WHERE c.approval_id = a.approval_id)"),
}
"""The SQL of each state, as `state.Approval.state` computes it (pending and approved read `now` once, expired once)."""
STATES = tuple(_STATE)


async def list_requests(
    conn: AsyncConnection[Row],
    *,
    organization_id: UUID | None,
    domains: Sequence[str] | None,
    domain: str | None,
    token_id: UUID | None = None,
    state: str | None,
    now: datetime,
    limit: int,
    cursor: Cursor | None,
) -> tuple[list[Approval], str | None]:
    """Requests of the caller's domains, oldest first (the queue's order), filtered by state computed at `now`."""
    clauses: list[sql.Composable] = [sql.SQL("true")]
    params: list[Any] = []
    for clause, value in (
        ("a.organization_id = %s", organization_id),
        ("a.domain = ANY(%s)", None if domains is None else list(domains)),
        ("a.domain = %s", domain),
        ("a.token_id = %s", token_id),
    ):
        if value is not None:
            clauses.append(sql.SQL(clause))
            params.append(value)
    if cursor is not None:
        clauses.append(sql.SQL("(a.created_at, a.approval_id) > (%s, %s)"))
        params += [cursor.timestamp, cursor.key]
    if state is not None:
        clauses.append(_STATE[state])
        if state in ("pending", "approved", "expired"):
            params.append(now)
    query = sql.SQL("{} WHERE {} ORDER BY a.created_at, a.approval_id LIMIT %s").format(
        sql.SQL(_REQUEST), sql.SQL(" AND ").join(clauses)
    )
    rows = await (await conn.execute(query, [*params, limit + 1])).fetchall()
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = Cursor(rows[-1]["created_at"], rows[-1]["approval_id"]).encode() if more and rows else None
    return await _with_events(conn, rows), next_cursor


async def earlier_stages(conn: AsyncConnection[Row], decision_id: UUID) -> list[Row]:
    """The stored stages of a decision with their verdicts and what their binding needs (oldest first)."""
    return (await earlier_stages_of(conn, [decision_id]))[decision_id]


async def earlier_stages_of(conn: AsyncConnection[Row], decision_ids: Sequence[UUID]) -> dict[UUID, list[Row]]:
    """`earlier_stages` of several decisions in one query: each id's stages (oldest first), [] for an id with none."""
    query = sql.SQL("""SELECT d.decision_id, d.stage::text AS stage, d.intent, d.actor, d.target, d.context, d.scope,
                       d.organization_id::text AS organization_id, d.domain, d.token_id,
                       v.verdict_id, v.verdict::text AS verdict, v.explanation
                FROM mandate.decision_events d
                LEFT JOIN LATERAL (SELECT v.* FROM mandate.verdict_events v
                                   WHERE v.decision_id = d.decision_id AND {stage} = d.stage
                                   ORDER BY v."timestamp" DESC, v.verdict_id DESC LIMIT 1) v ON true
                WHERE d.decision_id = ANY(%s)
                ORDER BY d.decision_id, d."timestamp", d.stage""").format(stage=sql.SQL(VERDICT_STAGE))
    found: dict[UUID, list[Row]] = {decision_id: [] for decision_id in decision_ids}
    for row in await (await conn.execute(query, [list(found)])).fetchall():
        found[row["decision_id"]].append(row)
    return found


async def list_findings(
    conn: AsyncConnection[Row],
    *,
    organization_id: UUID | None,
    domains: Sequence[str] | None,
    domain: str | None,
    decision_id: UUID | None = None,
    token_id: UUID | None = None,
    limit: int,
    cursor: Cursor | None,
) -> tuple[list[Row], str | None]:
    """Findings, newest first."""
    clauses: list[sql.Composable] = [sql.SQL("true")]
    params: list[Any] = []
    for clause, value in (
        ("f.organization_id = %s", organization_id),
        ("f.domain = ANY(%s)", None if domains is None else list(domains)),
        ("f.domain = %s", domain),
        ("f.decision_id = %s", decision_id),
        (
            "EXISTS (SELECT 1 FROM mandate.decision_events d WHERE d.decision_id = f.decision_id AND d.stage = f.stage "
            "AND d.token_id = %s)",
            token_id,
        ),
    ):
        if value is not None:
            clauses.append(sql.SQL(clause))
            params.append(value)
    if cursor is not None:
        clauses.append(sql.SQL("(f.created_at, f.finding_id) < (%s, %s)"))
        params += [cursor.timestamp, cursor.key]
    query = sql.SQL(
        """SELECT f.finding_id, f.decision_id, f.stage::text AS stage, f.organization_id, f.domain, f.kind,
                  f.approval_id, f.summary, f.details, f.created_at
           FROM mandate.findings f WHERE {} ORDER BY f.created_at DESC, f.finding_id DESC LIMIT %s"""
    ).format(sql.SQL(" AND ").join(clauses))
    rows = await (await conn.execute(query, [*params, limit + 1])).fetchall()
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = Cursor(rows[-1]["created_at"], rows[-1]["finding_id"]).encode() if more and rows else None
    return rows, next_cursor


COUNT_CAP = 1000
"""Requests counted per state at most (the queue shows "1,000+" beyond): each state's count reads no more than this
many rows, from the table that holds that state (the live requests by expiry, endings by kind, consumptions)."""


def _counted(name: str, where: sql.Composable) -> tuple[sql.Composable, bool]:
    """The rows of requests in state `name` (one `1` each), read from the table that holds that state; whether the
    query takes `now` (after the filter's parameters) or the state's kind (before them)."""
    if name in ("pending", "approved"):  # live ones only: idx_approval_requests_live
        return sql.SQL("SELECT 1 FROM mandate.approval_requests a WHERE {} AND {}").format(where, _STATE[name]), True
    if name == "consumed":
        query = "SELECT 1 FROM mandate.approval_consumptions c JOIN mandate.approval_requests a USING (approval_id) "
        return sql.SQL(query + "WHERE {}").format(where), False
    return (  # an ending event of that kind (idx_approval_resolutions_ending)
        sql.SQL(
            """SELECT 1 FROM mandate.approval_resolutions r JOIN mandate.approval_requests a USING (approval_id)
               WHERE r.kind = %s AND r.kind <> 'approved' AND {}"""
        ).format(where),
        False,
    )


async def count_requests(
    conn: AsyncConnection[Row],
    *,
    organization_id: UUID | None,
    domains: Sequence[str] | None,
    domain: str | None,
    token_id: UUID | None = None,
    now: datetime,
    cap: int = COUNT_CAP,
) -> dict[str, int]:
    """How many requests of the caller's domains are in each state at `now` (`list_requests`' filters, no page), each
    counted up to `cap + 1` (more than `cap`: there are more than that many)."""
    clauses: list[sql.Composable] = [sql.SQL("true")]
    params: list[Any] = []
    for clause, value in (
        ("a.organization_id = %s", organization_id),
        ("a.domain = ANY(%s)", None if domains is None else list(domains)),
        ("a.domain = %s", domain),
        ("a.token_id = %s", token_id),
    ):
        if value is not None:
            clauses.append(sql.SQL(clause))
            params.append(value)
    where = sql.SQL(" AND ").join(clauses)

    async def upto(query: sql.Composable, before: list[Any], after: list[Any], limit: int) -> int:
        bounded = sql.SQL("SELECT count(*) AS n FROM ({} LIMIT %s) s").format(query)
        row = await (await conn.execute(bounded, [*before, *params, *after, limit])).fetchone()
        return int(row["n"]) if row else 0

    counts: dict[str, int] = {}
    for name in STATES:
        query, takes_now = _counted(name, where)
        if takes_now:
            counts[name] = await upto(query, [], [now], cap + 1)
        else:
            counts[name] = await upto(query, [] if name == "consumed" else [name], [], cap + 1)
    if counts["expired"] <= cap:  # and those whose time ran out that the sweeper has not written yet
        unswept = sql.SQL("SELECT 1 FROM mandate.approval_requests a WHERE {} AND NOT {} AND {}").format(
            where, _LIVE, _OPEN
        )
        counts["expired"] += await upto(unswept, [], [now], cap + 1 - counts["expired"])
    return counts
