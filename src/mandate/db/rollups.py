"""Decision counts that stay fast at any size: the rollups of migration 013 plus what they do not hold yet.

`decision_rollups` counts decision stages per UTC hour and day, stage and verdict, in total and per agent, matched
policy, scope, owning team and spec. The server folds newly stored stages into it every few seconds (`fold`). A count
over a time range is then the rollups of the whole days and hours inside the range, plus the stages the rollups
cannot answer for: those in the partial hours at the range's edges and those stored since the last fold (`live`).
Both parts are read in one REPEATABLE READ snapshot, so the sum is exactly `count(*)` over the decisions, however far
the fold has got — the fold only makes the live part small.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg import AsyncConnection, sql

from mandate.db.decisions import (
    TIME_BUCKETS,
    VERDICT_OF_DECISION,
    DecisionFilter,
    bucket_series,
    filter_clauses,
    where,
)

Conn = AsyncConnection[dict[str, Any]]

FOLD_ROWS = 500_000
"""Decision stages per fold at most (a catch-up after the migration folds in chunks of this size)."""

FILTER_DIMENSIONS = (
    ("policy_id", "policy"),
    ("scope_id", "scope"),
    ("owning_team", "owning_team"),
    ("spec_id", "spec"),
)
"""The filters the rollups can answer (one at a time), with their dimension; `agent` when matched exactly."""

BREAKDOWN_DIMENSIONS = ("policy", "agent", "scope", "owning_team")

FOLD = """SELECT mandate.fold_decision_rollups(
    (SELECT min(a.xact_start) FROM pg_stat_activity a
     WHERE a.datname = current_database() AND a.backend_type = 'client backend' AND a.pid <> pg_backend_pid()
       AND a.xact_start IS NOT NULL),
    %s) AS folded"""


async def fold(conn: Conn, max_rows: int = FOLD_ROWS) -> int:
    """Fold the decision stages stored since the last fold into the rollups (at most about `max_rows`); how many.

    The horizon is the start of the oldest transaction open in the database: a decision's `created_at` is its
    transaction's start, so every stage stored before it is committed and visible now. (A session of another role
    shows no `xact_start` to this one; only the server's own role stores decisions.)"""
    async with conn.transaction():
        row = await (await conn.execute(FOLD, [max_rows])).fetchone()
    return int(row["folded"]) if row else 0


async def snapshot(conn: Conn, *, timeout: str) -> None:
    """Make the transaction just begun one snapshot for every read that follows (REPEATABLE READ: the rollups, the
    fold's progress and the live stages agree), each statement cancelled after `timeout`."""
    await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
    await conn.execute("SELECT set_config('statement_timeout', %s, true)", [timeout])


@dataclass(frozen=True)
class Window:
    """The whole UTC hours [start, end) of a range that the rollups answer for (None: unbounded), and the whole UTC
    days inside them. `folded_before`: the fold's progress (None: nothing folded)."""

    start: datetime | None
    end: datetime | None
    folded_before: datetime | None

    @property
    def day_start(self) -> datetime | None:
        if self.start is None:
            return None
        day = self.start.replace(hour=0)
        return day if day == self.start else day + timedelta(days=1)

    @property
    def day_end(self) -> datetime | None:
        return None if self.end is None else self.end.replace(hour=0)


def _hour_ceil(t: datetime) -> datetime:
    floor = t.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return floor if floor == t else floor + timedelta(hours=1)


def _hour_floor(t: datetime) -> datetime:
    return t.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


async def window(conn: Conn, f: DecisionFilter) -> Window | None:
    """The rollups' part of the filter's range, or None when the range holds no whole hour (count it live)."""
    start = None if f.since is None else _hour_ceil(f.since)
    end = None if f.until is None else _hour_floor(f.until)
    if start is not None and end is not None and start >= end:
        return None
    row = await (await conn.execute("SELECT folded_before FROM mandate.decision_rollup_progress")).fetchone()
    return Window(start, end, row["folded_before"] if row else None)


def selection(f: DecisionFilter) -> tuple[str, str | None] | None:
    """The (dimension, key) whose rollups answer the filter — ('all', None) without a name filter — or None when
    they cannot: a text filter, an agent's own decisions, or two name filters at once."""
    if f.organization_id is None or f.token_id is not None:
        return None
    if any(x is not None for x in (f.intent, f.service, f.actor, f.target)):
        return None
    chosen = [(dimension, getattr(f, name)) for name, dimension in FILTER_DIMENSIONS if getattr(f, name) is not None]
    if f.agent is not None:
        if f.partial:
            return None
        chosen.append(("agent", f.agent))
    if len(chosen) > 1:
        return None
    return chosen[0] if chosen else ("all", None)


def _rollup_clauses(
    f: DecisionFilter, dimension: str, key: str | None, *, verdict: bool
) -> tuple[list[sql.Composable], list[Any]]:
    clauses: list[sql.Composable] = [sql.SQL("r.organization_id = %s"), sql.SQL("r.dimension = %s")]
    params: list[Any] = [f.organization_id, dimension]
    if f.domain is not None:
        clauses.append(sql.SQL("r.domain = %s"))
        params.append(f.domain)
    if f.domains is not None:
        clauses.append(sql.SQL("r.domain = ANY(%s)"))
        params.append(list(f.domains))
    if key is not None:
        clauses.append(sql.SQL("NOT r.missing AND r.key = %s"))
        params.append(key)
    if f.stage is not None:
        clauses.append(sql.SQL("r.stage = %s::mandate.stage"))
        params.append(f.stage)
    if verdict and f.verdict is not None:
        clauses.append(sql.SQL("r.verdict = %s"))
        params.append(f.verdict)
    return clauses, params


def _window_parts(w: Window) -> list[tuple[str, datetime | None, datetime | None]]:
    """The (grain, from, to) ranges of rollups that cover the window once: its whole UTC days, then the whole hours
    before and after them (all hours when it holds no whole day). Each range is one index scan."""
    if w.day_start is not None and w.day_end is not None and w.day_start >= w.day_end:
        return [("hour", w.start, w.end)]
    parts: list[tuple[str, datetime | None, datetime | None]] = [("day", w.day_start, w.day_end)]
    if w.start is not None and w.day_start is not None and w.start < w.day_start:
        parts.append(("hour", w.start, w.day_start))
    if w.end is not None and w.day_end is not None and w.day_end < w.end:
        parts.append(("hour", w.day_end, w.end))
    return parts


async def rollup_totals(
    conn: Conn, f: DecisionFilter, w: Window, *, dimension: str, key: str | None, verdict: bool
) -> list[dict[str, Any]]:
    """Rollup counts in the window per (missing, key, verdict) of `dimension` (key: only that value)."""
    clauses, params = _rollup_clauses(f, dimension, key, verdict=verdict)
    parts, values = [], []
    for grain, start, end in _window_parts(w):
        parts.append(
            sql.SQL(
                """SELECT r.missing, r.key, r.verdict, r.decisions FROM mandate.decision_rollups r
                   WHERE {clauses} AND r.grain = %s AND r.bucket >= coalesce(%s::timestamptz, '-infinity')
                     AND r.bucket < coalesce(%s::timestamptz, 'infinity')"""
            ).format(clauses=sql.SQL(" AND ").join(clauses))
        )
        values += [*params, grain, start, end]
    query = sql.SQL(
        "SELECT missing, key, verdict, sum(decisions)::bigint AS n FROM ({parts}) p GROUP BY 1, 2, 3"
    ).format(parts=sql.SQL(" UNION ALL ").join(parts))
    rows: list[dict[str, Any]] = await (await conn.execute(query, values)).fetchall()
    return rows


async def rollup_span(
    conn: Conn, f: DecisionFilter, w: Window, *, dimension: str, key: str | None
) -> tuple[datetime, datetime] | None:
    """The first and last hour in the window holding a rolled-up stage of the filter (verdict included)."""
    clauses, params = _rollup_clauses(f, dimension, key, verdict=True)
    query = sql.SQL(
        """SELECT min(r.bucket) AS lo, max(r.bucket) AS hi FROM mandate.decision_rollups r
           WHERE {clauses} AND r.grain = 'hour' AND r.bucket >= coalesce(%s::timestamptz, '-infinity')
             AND r.bucket < coalesce(%s::timestamptz, 'infinity')"""
    ).format(clauses=sql.SQL(" AND ").join(clauses))
    row = await (await conn.execute(query, [*params, w.start, w.end])).fetchone()
    if row is None or row["lo"] is None:
        return None
    return row["lo"], row["hi"]


async def first_and_last(
    conn: Conn, f: DecisionFilter, low: tuple[datetime, datetime], high: tuple[datetime, datetime]
) -> tuple[datetime | None, datetime | None]:
    """The first stage's timestamp of the filter within `low` and the last within `high` (each [from, to))."""
    clauses, params = filter_clauses(f, table="d")
    out: list[datetime | None] = []
    for (lo, hi), order in ((low, sql.SQL("")), (high, sql.SQL(" DESC"))):
        query = sql.SQL(
            """SELECT d."timestamp" FROM mandate.decision_events d {verdict}
               {where} ORDER BY d."timestamp"{order} LIMIT 1"""
        ).format(
            verdict=VERDICT_OF_DECISION,
            where=where([*clauses, sql.SQL('d."timestamp" >= %s'), sql.SQL('d."timestamp" < %s')]),
            order=order,
        )
        row = await (await conn.execute(query, [*params, lo, hi])).fetchone()
        out.append(row["timestamp"] if row else None)
    return out[0], out[1]


LIVE_COLUMNS = sql.SQL(
    """d."timestamp", d.stage::text AS stage, coalesce(v.verdict::text, 'NONE') AS verdict,
       d.scope->>'agent' AS agent, v.scope_id AS scope, v.owning_team, d.spec_id AS spec, v.matched_policy_ids"""
)


def _live_pieces(f: DecisionFilter, w: Window) -> tuple[sql.Composed, list[Any]]:
    """The stages of the filter (its verdict aside) that the window's rollups do not count: the partial hours at the
    range's edges, and the stages stored since the fold's progress. One query, its pieces disjoint."""
    base = DecisionFilter(**{**f.__dict__, "verdict": None})
    clauses, params = filter_clauses(base, table="d")
    pieces: list[tuple[list[str], list[Any]]] = []
    if w.start is not None:
        pieces.append((['d."timestamp" < %s'], [w.start]))
    if w.end is not None:
        pieces.append((['d."timestamp" >= %s'], [w.end]))
    middle = ["d.created_at >= coalesce(%s::timestamptz, '-infinity')"]
    middle_params: list[Any] = [w.folded_before]
    if w.start is not None:
        middle.append('d."timestamp" >= %s')
        middle_params.append(w.start)
    if w.end is not None:
        middle.append('d."timestamp" < %s')
        middle_params.append(w.end)
    pieces.append((middle, middle_params))
    parts: list[sql.Composable] = []
    all_params: list[Any] = []
    for extra, extra_params in pieces:
        parts.append(
            sql.SQL("SELECT {columns} FROM mandate.decision_events d {verdict} {where}").format(
                columns=LIVE_COLUMNS,
                verdict=VERDICT_OF_DECISION,
                where=where([*clauses, *map(sql.SQL, extra)]),
            )
        )
        all_params += [*params, *extra_params]
    return sql.SQL(" UNION ALL ").join(parts), all_params


async def live_rows(conn: Conn, f: DecisionFilter, w: Window) -> list[dict[str, Any]]:
    """The stages the rollups of the window do not count, one row each (LIVE_COLUMNS)."""
    query, params = _live_pieces(f, w)
    rows: list[dict[str, Any]] = await (await conn.execute(query, params)).fetchall()
    return rows


async def rollup_chart(
    conn: Conn,
    f: DecisionFilter,
    w: Window,
    *,
    dimension: str,
    key: str | None,
    unit: str,
    time_zone: str,
    start: datetime,
    end: datetime,
) -> list[dict[str, Any]]:
    """`decisions.verdicts_over_time`'s rows, from the hourly rollups of the window plus the live stages. Exact only
    when `time_zone`'s offsets are whole hours over the range and `unit` is an hour or longer (the caller checks)."""
    if unit not in TIME_BUCKETS or unit == "minute":
        raise ValueError("the rollups count whole hours: unit must be hour or longer")
    clauses, params = _rollup_clauses(f, dimension, key, verdict=True)
    live, live_params = _live_pieces(f, w)
    verdict = sql.SQL("WHERE l.verdict = %s") if f.verdict is not None else sql.SQL("")
    counts = sql.SQL(
        """SELECT bucket, verdict, sum(n)::bigint AS n FROM (
            SELECT date_trunc(%s, r.bucket) AS bucket, r.verdict, r.decisions AS n
            FROM mandate.decision_rollups r
            WHERE {clauses} AND r.grain = 'hour' AND r.bucket >= coalesce(%s::timestamptz, '-infinity')
              AND r.bucket < coalesce(%s::timestamptz, 'infinity')
            UNION ALL
            SELECT date_trunc(%s, l."timestamp"), l.verdict, 1 FROM ({live}) l {verdict}) parts
        WHERE verdict <> 'NONE'
        GROUP BY 1, 2"""
    ).format(clauses=sql.SQL(" AND ").join(clauses), live=live, verdict=verdict)
    values = [unit, *params, w.start, w.end, unit, *live_params]
    if f.verdict is not None:
        values.append(f.verdict)
    return await bucket_series(conn, counts, values, unit=unit, time_zone=time_zone, start=start, end=end)
