"""Read queries over decisions, verdicts and timelines: one function per question, parameters always bound.

Lists are ordered newest first with a stable tie-break and paginated by keyset (a cursor names the last row
seen), so deep pages cost the same as the first and rows never repeat or vanish between pages.
"""

from __future__ import annotations

import base64
import binascii
import math
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson
from psycopg import AsyncConnection, sql

from mandate.errors import MandateError
from mandate.vocabulary import STAGES

DECISION_COLUMNS = sql.SQL(
    """d.decision_id, d.stage::text AS stage, d.organization_id, d.domain, d.intent, d.actor, d.target,
       d."timestamp", d.created_at, d.spec_id, d.spec_version, d.scope AS attribution,
       v.verdict_id, v.verdict::text AS verdict, v.scope_id, v.owning_team, v.snapshot_id, v.snapshot_version,
       v.summary, v.matched_policy_ids, d.token_id"""
)
VERDICT_STAGE = """coalesce(v.stage, (SELECT e.stage FROM mandate.decision_events e
                                      WHERE e.decision_id = v.decision_id ORDER BY e.created_at, e.stage LIMIT 1))"""
"""The stage the verdict `v` belongs to — the one home of this rule (MANDATE.md §3a): its own stage, or, for a legacy
verdict written before decisions had stages (stage NULL), the decision's earliest stage. Every query that pairs
verdicts with decision stages uses it (COALESCE evaluates the subquery only for those legacy rows)."""

VERDICT_OF_DECISION = sql.SQL(
    """LEFT JOIN LATERAL (
        SELECT v.* FROM mandate.verdict_events v
        WHERE v.decision_id = d.decision_id AND {stage} = d.stage
        ORDER BY v."timestamp" DESC, v.verdict_id DESC LIMIT 1) v ON true"""
).format(stage=sql.SQL(VERDICT_STAGE))


CURSOR_STAGES = (None, *STAGES)  # what a page's last row can hold (mandate.stage)


class BadCursor(MandateError, ValueError):
    """A pagination cursor that this server did not produce."""


@dataclass(frozen=True)
class Cursor:
    """The position after the last row of a page: (timestamp, id, stage) of that row."""

    timestamp: datetime
    key: UUID
    stage: str | None = None

    def encode(self) -> str:
        raw = orjson.dumps([self.timestamp.isoformat(), str(self.key), self.stage])
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> Cursor:
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            ts, key, stage = orjson.loads(raw)
            moment = datetime.fromisoformat(ts)
            if moment.tzinfo is None or stage not in CURSOR_STAGES:
                raise ValueError("not a cursor of ours")
            return cls(moment, UUID(key), stage)
        except (binascii.Error, ValueError, TypeError, orjson.JSONDecodeError) as exc:
            raise BadCursor("cursor is not one this server produced; start again without it") from exc


@dataclass(frozen=True)
class DecisionFilter:
    """Filters shared by decision and verdict lists. `domain` never matches another domain's rows."""

    organization_id: UUID | None = None
    domain: str | None = None
    verdict: str | None = None
    intent: str | None = None
    stage: str | None = None
    agent: str | None = None
    service: str | None = None
    actor: str | None = None
    target: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    domains: tuple[str, ...] | None = None  # the caller's token may see only these domains (None: every one)
    token_id: UUID | None = None  # only the decisions this token sent (an agent's own)
    policy_id: str | None = None  # the policy matched (decided, tied or was outranked)
    owning_team: str | None = None  # the team of the scope that held authority
    scope_id: str | None = None  # the scope that held authority
    spec_id: str | None = None
    partial: bool = False  # intent, service, agent match any part of the value, actor and target its start; any case


def _literal(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def contains_pattern(text: str) -> str:
    """A LIKE pattern matching `text` anywhere, its own `%`, `_` and `\\` taken literally."""
    return "%" + _literal(text) + "%"


def prefix_pattern(text: str) -> str:
    """A LIKE pattern matching values that start with `text`, its own `%`, `_` and `\\` taken literally."""
    return _literal(text) + "%"


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    next_cursor: str | None
    previous_cursor: str | None = None  # `before` of the page of newer rows (None on the first page)


def filter_clauses(
    f: DecisionFilter, *, table: str, prefix_index: bool = True
) -> tuple[list[sql.Composable], list[Any]]:
    """The WHERE clauses of a filter and their parameters. `prefix_index=False` writes the actor and target prefix
    tests so that their indexes cannot serve them: a list then walks the time index (see `list_decisions`)."""
    t = sql.Identifier(table)
    clauses: list[sql.Composable] = []
    params: list[Any] = []

    def add(fragment: str, value: Any) -> None:
        clauses.append(sql.SQL(fragment).format(t=t))
        params.append(value)

    if f.organization_id is not None:
        add("{t}.organization_id = %s", f.organization_id)
    if f.domain is not None:
        add("{t}.domain = %s", f.domain)
    if f.domains is not None:
        add("{t}.domain = ANY(%s)", list(f.domains))
    if f.token_id is not None:
        add("d.token_id = %s", f.token_id)
    if f.since is not None:
        add('{t}."timestamp" >= %s', f.since)
    if f.until is not None:
        add('{t}."timestamp" < %s', f.until)
    if f.verdict is not None:
        add("v.verdict = %s::mandate.verdict", f.verdict)
    if f.stage is not None:
        add("d.stage = %s::mandate.stage", f.stage)
    # Exact (the API), or the UI's search in any case: any part of the value for the few-valued columns (`bot-v3`
    # finds `chatbot-v3`), the start of it for actor and target, whose prefix indexes (migration 013) keep a search
    # instant at any size. An exact actor or target also goes through that index (the same expression, then `=`).
    for column, value in (("d.intent", f.intent), ("d.scope->>'agent'", f.agent), ("d.scope->>'service'", f.service)):
        if value is not None:
            add(column + (" ILIKE %s" if f.partial else " = %s"), contains_pattern(value) if f.partial else value)
    for column, value in (("d.actor", f.actor), ("d.target", f.target)):
        if value is None:
            continue
        if f.partial:
            tested = f"lower({column})" if prefix_index else f"(lower({column}) || '')"
            add(f"{tested} LIKE lower(%s)", prefix_pattern(value))
        else:
            add(f"lower({column}) = lower(%s)", value)
            add(f"{column} = %s", value)
    if f.spec_id is not None:
        add("d.spec_id = %s", f.spec_id)
    if f.policy_id is not None:
        add("v.matched_policy_ids @> ARRAY[%s]::text[]", f.policy_id)
    if f.scope_id is not None:
        add("v.scope_id = %s", f.scope_id)
    if f.owning_team is not None:
        add("v.owning_team = %s", f.owning_team)
    return clauses, params


def _needs_verdict(f: DecisionFilter) -> bool:
    """Whether the filter reads the verdict of each decision stage (not only the decision's own columns)."""
    return any(x is not None for x in (f.verdict, f.policy_id, f.scope_id, f.owning_team))


def where(clauses: list[sql.Composable]) -> sql.Composable:
    return sql.SQL("WHERE ") + sql.SQL(" AND ").join(clauses) if clauses else sql.SQL("")


WALKED_ROW_COST = 0.1
"""What a list pays per decision stage it walks in time order (the domain's index, the table read in about the order
it was written), relative to one it reads through a prefix index (each a random read of the table, all of them then
sorted). On 10 M decisions: a walk through 154,000 stages took 160 ms, gathering 37,529 matches 455–615 ms
(bench/findings.md, "UI pages at N decisions")."""


async def _walks(conn: AsyncConnection[dict[str, Any]], f: DecisionFilter, limit: int) -> bool:
    """Whether a page for the start of an actor or target is cheaper walking the decisions newest first than through
    the prefix index. The prefix index reads every match (m of them); the walk reads about limit × scanned / m stages
    before it has a page, `scanned` being what the filter leaves without the start. The walk is cheaper when
    m > √(cost × limit × scanned): `scanned` is the planner's estimate (equality filters, which it estimates well),
    m is counted through the prefix index up to that bound (the planner's estimate of a start can be off a
    hundredfold: 251 for a start that 37,529 decisions share), so the count reads no more than the index would."""
    own = replace(f, verdict=None, policy_id=None, scope_id=None, owning_team=None)
    scanned = await estimated_rows(conn, replace(own, actor=None, target=None))
    bound = math.ceil(math.sqrt(WALKED_ROW_COST * limit * scanned))
    return await count_at_most(conn, own, bound + 1) > bound


async def list_decisions(
    conn: AsyncConnection[dict[str, Any]],
    f: DecisionFilter,
    *,
    limit: int,
    cursor: Cursor | None = None,
    before: Cursor | None = None,
) -> Page:
    """A page of decision stages, newest first: the first page, the one after `cursor` (older rows), or the one
    before `before` (newer rows: the previous page, read backwards on the same index and turned round).

    The start of an actor or target shared by many decisions is found faster by walking them newest first than
    through its index (which would gather and sort every match): `_walks` decides."""
    walk = False
    if f.partial and (f.actor is not None or f.target is not None):
        walk = await _walks(conn, f, limit + 1)
    clauses, params = filter_clauses(replace(f, verdict=None), table="d", prefix_index=not walk)
    direction = "DESC"
    if cursor is not None:
        clauses.append(sql.SQL('(d."timestamp", d.decision_id, d.stage) < (%s, %s, %s::mandate.stage)'))
        params += [cursor.timestamp, cursor.key, cursor.stage]
    elif before is not None:
        clauses.append(sql.SQL('(d."timestamp", d.decision_id, d.stage) > (%s, %s, %s::mandate.stage)'))
        params += [before.timestamp, before.key, before.stage]
        direction = "ASC"
    query, params = _listing(clauses, params, f.verdict, direction, limit + 1)
    rows = await (await conn.execute(query, params)).fetchall()
    for row in rows:
        row.pop("stage_key", None)  # the merged ranges' order (the enum's, not the text's)
    more = len(rows) > limit
    rows = rows[:limit]

    def at(row: dict[str, Any]) -> str:
        return Cursor(row["timestamp"], row["decision_id"], row["stage"]).encode()

    if before is not None:
        rows.reverse()
        return Page(rows, at(rows[-1]) if rows else None, at(rows[0]) if more and rows else None)
    next_cursor = at(rows[-1]) if more else None
    previous = at(rows[0]) if cursor is not None and rows else None
    return Page(rows, next_cursor, previous)


def _listing(
    clauses: list[sql.Composable], params: list[Any], verdict: str | None, direction: str, limit: int
) -> tuple[sql.Composed, list[Any]]:
    """The query of a page of decision stages in the list's order (`direction` DESC: newest first).

    With a verdict, the candidates come from two ordered index ranges merged (migration 014): the stages stored with
    that verdict (idx_decision_events_verdict) and the stages stored without one (idx_decision_events_unlisted: the
    legacy and foreign rows whose verdict the column does not hold), each kept only if the stage's verdict — its
    latest, VERDICT_OF_DECISION — is the one asked for. The page reads about `limit` stages, however rare the verdict,
    instead of walking the domain until it has found them."""
    d_order = sql.SQL(f'd."timestamp" {direction}, d.decision_id {direction}, d.stage {direction}')
    if verdict is None:
        query = sql.SQL(
            """SELECT {columns} FROM mandate.decision_events d {verdict} {where} ORDER BY {order} LIMIT %s"""
        ).format(columns=DECISION_COLUMNS, verdict=VERDICT_OF_DECISION, where=where(clauses), order=d_order)
        return query, [*params, limit]
    branch = sql.SQL(
        """(SELECT {columns}, d.stage AS stage_key FROM mandate.decision_events d {verdict} {where}
            ORDER BY {order} LIMIT %s)"""
    )
    stored = [*clauses, sql.SQL("d.verdict = %s::mandate.verdict"), sql.SQL("v.verdict = %s::mandate.verdict")]
    unlisted = [*clauses, sql.SQL("d.verdict IS NULL"), sql.SQL("v.verdict = %s::mandate.verdict")]
    query = sql.SQL("SELECT * FROM ({a} UNION ALL {b}) s ORDER BY {order} LIMIT %s").format(
        a=branch.format(columns=DECISION_COLUMNS, verdict=VERDICT_OF_DECISION, where=where(stored), order=d_order),
        b=branch.format(columns=DECISION_COLUMNS, verdict=VERDICT_OF_DECISION, where=where(unlisted), order=d_order),
        order=sql.SQL(f'"timestamp" {direction}, decision_id {direction}, stage_key {direction}'),
    )
    return query, [*params, verdict, verdict, limit, *params, verdict, limit, limit]


async def verdict_counts(conn: AsyncConnection[dict[str, Any]], f: DecisionFilter) -> dict[str, int]:
    """Decisions per verdict for a filter (the verdict filter itself is ignored: counts are for every verdict)."""
    clauses, params = filter_clauses(DecisionFilter(**{**f.__dict__, "verdict": None}), table="d")
    query = sql.SQL(
        "SELECT coalesce(v.verdict::text, 'NONE') AS verdict, count(*) AS n FROM mandate.decision_events d "
        "{verdict} {where} GROUP BY 1"
    ).format(verdict=VERDICT_OF_DECISION, where=where(clauses))
    rows = await (await conn.execute(query, params)).fetchall()
    return {r["verdict"]: r["n"] for r in rows}


async def estimated_rows(conn: AsyncConnection[dict[str, Any]], f: DecisionFilter) -> float:
    """How many decision stages the planner expects to match the filter's own columns (its statistics, the prefix
    indexes' included): an estimate in a millisecond, where counting a common prefix would read every match."""
    clauses, params = filter_clauses(f, table="d")
    query = sql.SQL("EXPLAIN (FORMAT JSON) SELECT 1 FROM mandate.decision_events d {where}").format(
        where=where(clauses)
    )
    row = await (await conn.execute(query, params)).fetchone()
    plan = row["QUERY PLAN"] if row else None
    return float(plan[0]["Plan"]["Plan Rows"]) if plan else 0.0


async def count_at_most(conn: AsyncConnection[dict[str, Any]], f: DecisionFilter, limit: int) -> int:
    """How many decision stages match the filter, counting no further than `limit`."""
    clauses, params = filter_clauses(f, table="d")
    verdict = VERDICT_OF_DECISION if _needs_verdict(f) else sql.SQL("")
    query = sql.SQL(
        "SELECT count(*) AS n FROM (SELECT 1 FROM mandate.decision_events d {verdict} {where} LIMIT %s) s"
    ).format(verdict=verdict, where=where(clauses))
    row = await (await conn.execute(query, [*params, limit])).fetchone()
    return int(row["n"]) if row else 0


async def get_decision(conn: AsyncConnection[dict[str, Any]], decision_id: UUID) -> list[dict[str, Any]]:
    """Every stage of a decision (oldest stage first), each with its verdict summary and context."""
    query = sql.SQL(
        """SELECT {columns}, d.context, d.request_hash IS NOT NULL AS has_request_hash
        FROM mandate.decision_events d {verdict} WHERE d.decision_id = %s ORDER BY d."timestamp", d.stage"""
    ).format(columns=DECISION_COLUMNS, verdict=VERDICT_OF_DECISION)
    return await (await conn.execute(query, [decision_id])).fetchall()


async def get_verdicts(conn: AsyncConnection[dict[str, Any]], decision_id: UUID) -> list[dict[str, Any]]:
    """Every verdict of a decision with its full explanation, oldest first; a PAUSE's with its approval request
    (`approval_request`: id and URL, as the answer to the decision said), others with None."""
    query = sql.SQL(
        """SELECT v.verdict_id, v.decision_id, {stage}::text AS stage, v.verdict::text AS verdict, v.organization_id,
                  v.domain, v.spec_id, v.spec_version, v.snapshot_id, v.snapshot_version, v.scope_id, v.owning_team,
                  v.matched_policy_ids, v.summary, v.explanation, v.pause_requires, v.pause_expires_at,
                  v."timestamp", v.created_at,
                  (SELECT d.token_id FROM mandate.decision_events d
                   WHERE d.decision_id = v.decision_id AND d.stage = {stage}) AS token_id,
                  (SELECT json_build_object('approval_id', a.approval_id, 'url', '/api/approvals/' || a.approval_id)
                   FROM mandate.approval_requests a WHERE a.approval_id = v.verdict_id) AS approval_request
           FROM mandate.verdict_events v WHERE v.decision_id = %s ORDER BY v."timestamp", v.verdict_id"""
    ).format(stage=sql.SQL(VERDICT_STAGE))
    cur = await conn.execute(query, [decision_id])
    return await cur.fetchall()


async def stored_answer(conn: AsyncConnection[dict[str, Any]], decision_id: UUID, stage: str) -> dict[str, Any] | None:
    """What an idempotent re-send of a decision stage is answered with: its verdict id and explanation, and the
    request hash it was stored with (None when the stage is not stored)."""
    query = sql.SQL(
        """SELECT v.verdict_id, v.explanation, d.request_hash
           FROM mandate.decision_events d
           JOIN mandate.verdict_events v ON v.decision_id = d.decision_id AND {stage} = d.stage
           WHERE d.decision_id = %s AND d.stage = %s::mandate.stage
           ORDER BY v."timestamp" DESC LIMIT 1"""
    ).format(stage=sql.SQL(VERDICT_STAGE))
    return await (await conn.execute(query, [decision_id, stage])).fetchone()


async def stages_to_replay(conn: AsyncConnection[dict[str, Any]], decision_id: UUID) -> list[dict[str, Any]]:
    """Every stage of a decision with what replay needs: its stored signals and attribution, and its verdict's
    spec, snapshot and explanation (oldest stage first)."""
    query = sql.SQL(
        """SELECT d.decision_id, d.stage::text AS stage, d.intent, d.context, d.scope, d."timestamp",
                  d.organization_id::text AS organization_id, d.domain, d.spec_id, d.spec_version,
                  v.verdict::text AS verdict, v.explanation, v.snapshot_id::text AS snapshot_id
           FROM mandate.decision_events d
           JOIN mandate.verdict_events v ON v.decision_id = d.decision_id AND {stage} = d.stage
           WHERE d.decision_id = %s ORDER BY d."timestamp", d.stage"""
    ).format(stage=sql.SQL(VERDICT_STAGE))
    return await (await conn.execute(query, [decision_id])).fetchall()


async def get_timeline(conn: AsyncConnection[dict[str, Any]], decision_id: UUID) -> list[dict[str, Any]]:
    cur = await conn.execute(
        """SELECT entry_id, decision_id, stage::text AS stage, coalesce(decision_stage, stage)::text AS decision_stage,
                  intent, actor, target, summary, details, severity,
                  event_source::text AS event_source, authority_level::text AS authority_level, organization_id,
                  domain, spec_id, spec_version, "timestamp", created_at
           FROM mandate.audit_timeline_entries WHERE decision_id = %s ORDER BY "timestamp", created_at, entry_id""",
        [decision_id],
    )
    return await cur.fetchall()


async def list_verdicts(
    conn: AsyncConnection[dict[str, Any]], f: DecisionFilter, *, limit: int, cursor: Cursor | None = None
) -> Page:
    clauses, params = filter_clauses(f, table="v")
    if cursor is not None:
        clauses.append(sql.SQL('(v."timestamp", v.verdict_id) < (%s, %s)'))
        params += [cursor.timestamp, cursor.key]
    query = sql.SQL(
        """SELECT v.verdict_id, v.decision_id, d.stage::text AS stage, v.verdict::text AS verdict,
                  v.organization_id, v.domain, v.spec_id, v.spec_version, v.snapshot_id, v.snapshot_version,
                  v.scope_id, v.owning_team, v.matched_policy_ids, v.summary, v."timestamp", v.created_at,
                  d.intent, d.actor, d.target
           FROM mandate.verdict_events v
           JOIN mandate.decision_events d ON d.decision_id = v.decision_id AND d.stage = {stage}
           {where}
           ORDER BY v."timestamp" DESC, v.verdict_id DESC LIMIT %s"""
    ).format(stage=sql.SQL(VERDICT_STAGE), where=where(clauses))
    rows = await (await conn.execute(query, [*params, limit + 1])).fetchall()
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = Cursor(rows[-1]["timestamp"], rows[-1]["verdict_id"]).encode()
    return Page(rows, next_cursor)


async def decision_time_span(
    conn: AsyncConnection[dict[str, Any]], f: DecisionFilter
) -> tuple[datetime, datetime] | None:
    """The oldest and newest decision timestamps for a filter; None when no decision matches."""
    clauses, params = filter_clauses(f, table="d")
    verdict = VERDICT_OF_DECISION if _needs_verdict(f) else sql.SQL("")
    query = sql.SQL(
        'SELECT min(d."timestamp") AS lo, max(d."timestamp") AS hi FROM mandate.decision_events d {verdict} {where}'
    ).format(verdict=verdict, where=where(clauses))
    row = await (await conn.execute(query, params)).fetchone()
    if row is None or row["lo"] is None:
        return None
    return row["lo"], row["hi"]


TIME_BUCKETS = ("minute", "hour", "day", "week", "month", "year")


async def verdicts_over_time(
    conn: AsyncConnection[dict[str, Any]],
    f: DecisionFilter,
    *,
    unit: str,
    time_zone: str,
    start: datetime,
    end: datetime,
) -> list[dict[str, Any]]:
    """Decisions per (time bucket, verdict) for a filter, every bucket from `start` to `end` included (empty ones
    with verdict NULL and n 0), each with its end (`bucket_end`, exclusive; NULL past 9999, which Python cannot
    hold). Buckets are `date_trunc(unit, timestamp)` in `time_zone` (an IANA name), so a day
    is a day on that zone's clock; `unit` is one of TIME_BUCKETS."""
    if unit not in TIME_BUCKETS:
        raise ValueError(f"unit must be one of {', '.join(TIME_BUCKETS)}")
    clauses, params = filter_clauses(f, table="d")
    counts = sql.SQL(
        """SELECT date_trunc(%s, d."timestamp") AS bucket, v.verdict::text AS verdict, count(*) AS n
           FROM mandate.decision_events d {verdict} {where} GROUP BY 1, 2"""
    ).format(verdict=VERDICT_OF_DECISION, where=where(clauses))
    return await bucket_series(conn, counts, [unit, *params], unit=unit, time_zone=time_zone, start=start, end=end)


async def bucket_series(
    conn: AsyncConnection[dict[str, Any]],
    counts: sql.Composable,
    params: list[Any],
    *,
    unit: str,
    time_zone: str,
    start: datetime,
    end: datetime,
) -> list[dict[str, Any]]:
    """Every `unit` bucket from `start` to `end` on `time_zone`'s clock with its end, joined with `counts` (a query
    of (bucket, verdict, n) taking `params`): `verdicts_over_time`'s rows, whoever counted them."""
    query = sql.SQL(
        """WITH counts AS ({counts})
        SELECT b.bucket, e.bucket_end, c.verdict, coalesce(c.n, 0) AS n
        FROM generate_series(date_trunc(%s, %s::timestamptz), date_trunc(%s, %s::timestamptz),
                             ('1 ' || %s)::interval) AS b (bucket)
        CROSS JOIN LATERAL (SELECT CASE WHEN b.bucket + ('1 ' || %s)::interval < '10000-01-01'::timestamptz
                                        THEN b.bucket + ('1 ' || %s)::interval END AS bucket_end) e
        LEFT JOIN counts c ON c.bucket = b.bucket
        ORDER BY b.bucket, c.verdict"""
    ).format(counts=counts)
    async with conn.transaction():
        # The session time zone decides where date_trunc cuts and how '1 day' steps across DST changes.
        await conn.execute("SELECT set_config('TimeZone', %s, true)", [time_zone])
        cur = await conn.execute(query, [*params, unit, start, unit, end, unit, unit, unit])
        rows: list[dict[str, Any]] = await cur.fetchall()
        return rows


BREAKDOWNS = {
    # what a decision stage is counted under: one literal expression per breakdown (a policy: every one it matched)
    "policy": sql.SQL("m.policy_id"),
    "agent": sql.SQL("d.scope->>'agent'"),
    "scope": sql.SQL("v.scope_id"),
    "owning_team": sql.SQL("v.owning_team"),
}


async def verdicts_by(
    conn: AsyncConnection[dict[str, Any]], f: DecisionFilter, *, by: str, limit: int
) -> list[dict[str, Any]]:
    """The `limit` values of a breakdown (`by`: a key of BREAKDOWNS) with the most decision stages in the filter,
    most first, each with its count per verdict: `{"key", "total", "BLOCK", "PAUSE", "ALLOW", "OBSERVE"}`. A stage
    without a value (no agent, a governance gap) counts under key None."""
    if by not in BREAKDOWNS:
        raise ValueError(f"by must be one of {', '.join(BREAKDOWNS)}")
    clauses, params = filter_clauses(f, table="d")
    matched = sql.SQL(
        "LEFT JOIN LATERAL unnest(v.matched_policy_ids) AS m (policy_id) ON true" if by == "policy" else ""
    )
    query = sql.SQL(
        """SELECT {key} AS key, count(*) AS total,
                  count(*) FILTER (WHERE v.verdict = 'BLOCK') AS "BLOCK",
                  count(*) FILTER (WHERE v.verdict = 'PAUSE') AS "PAUSE",
                  count(*) FILTER (WHERE v.verdict = 'ALLOW') AS "ALLOW",
                  count(*) FILTER (WHERE v.verdict = 'OBSERVE') AS "OBSERVE"
           FROM mandate.decision_events d {verdict} {matched} {where}
           GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT %s"""
    ).format(key=BREAKDOWNS[by], verdict=VERDICT_OF_DECISION, matched=matched, where=where(clauses))
    return await (await conn.execute(query, [*params, limit])).fetchall()


async def decision_ids_between(
    conn: AsyncConnection[dict[str, Any]], low: UUID, high: UUID, *, limit: int
) -> list[UUID]:
    """Distinct decision ids from `low` to `high` inclusive, smallest first, at most `limit`: the ids that start
    with a typed prefix are one such range (UUIDs compare as their hex text does), found on the primary key."""
    cur = await conn.execute(
        """SELECT DISTINCT decision_id FROM mandate.decision_events
           WHERE decision_id BETWEEN %s AND %s ORDER BY decision_id LIMIT %s""",
        [low, high, limit],
    )
    return [row["decision_id"] for row in await cur.fetchall()]
