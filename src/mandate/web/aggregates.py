"""What the decisions page and the overview count: verdicts per filter, verdicts over time, the top breakdowns.

Three ways, the cheapest that is exact:
- **rollups** (db/rollups.py) when the filter is a domain, a stage, a verdict, a time range and at most one name
  (policy, scope, owning team, spec): the whole hours and days of the range from `decision_rollups`, the rest (the
  range's partial edge hours, the stages stored since the last fold) counted directly — milliseconds at any size;
- **directly** when the range holds no whole hour (a short range: few decisions to count);
- **directly, if few**: a text search, an agent's own decisions or two names at once, which the rollups cannot
  answer: counted when at most `CAP` stages match, otherwise the page says how many it stopped at.
All of it in one REPEATABLE READ snapshot and under `AGGREGATE_TIMEOUT`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, tzinfo

from psycopg import AsyncConnection

from mandate.db import decisions as q
from mandate.db import rollups
from mandate.vocabulary import Row
from mandate.web.ui import VERDICTS

Conn = AsyncConnection[Row]

AGGREGATE_TIMEOUT = "5s"
CAP = 500
"""Stages counted directly at most when the rollups cannot answer a filter. Each costs a read of its decision and of
its verdict: on a database larger than the memory (10 M decisions), mostly reads from disk, and the counts, chart
and breakdowns take six statements. At 2,000 a search just under the cap took 0.5–0.7 s (bench/findings.md, "UI
pages at N decisions")."""
MAX_BUCKETS = 90
MAX_CHART_SPAN = timedelta(days=366 * 90)
BUCKET_SECONDS = {"minute": 60, "hour": 3600, "day": 86400, "week": 604800, "month": 2629746, "year": 31556952}
BREAKDOWN_KEYS = {"policy": "matched_policy_ids", "agent": "agent", "scope": "scope", "owning_team": "owning_team"}


@dataclass
class Aggregates:
    counts: dict[str, int] = field(default_factory=dict)  # per verdict ('NONE': no verdict), the verdict filter aside
    chart_rows: list[Row] | None = None  # decisions.verdicts_over_time's rows
    unit: str = "day"
    breakdowns: dict[str, list[Row]] = field(default_factory=dict)
    capped: bool = False  # more than CAP stages match a filter the rollups cannot answer: nothing counted


def chart_unit(start: datetime, end: datetime) -> str:
    seconds = max((end - start).total_seconds(), 1.0)
    return next((u for u, size in BUCKET_SECONDS.items() if seconds / size <= MAX_BUCKETS), "year")


def _chart_range(f: q.DecisionFilter, span: tuple[datetime, datetime]) -> tuple[datetime, datetime]:
    """The chosen time range, or the data's span when open-ended or absurdly wide (the chart stays small)."""
    start = f.since or span[0]
    end = f.until - timedelta(microseconds=1) if f.until is not None else span[1]
    if end - start > MAX_CHART_SPAN:
        start, end = span
    return start, end


def _whole_hours(zone: tzinfo, *moments: datetime) -> bool:
    """Whether the zone's offset is a whole number of hours at each moment (so UTC hours are its hours too)."""
    return all(
        (offset := t.astimezone(zone).utcoffset()) is not None and offset % timedelta(hours=1) == timedelta(0)
        for t in moments
    )


async def aggregate(
    conn: Conn,
    f: q.DecisionFilter,
    *,
    time_zone: str,
    zone: tzinfo,
    breakdowns: Sequence[str] = (),
    top: int = 10,
) -> Aggregates:
    """Counts, chart rows and breakdowns (`top` rows each, keys of decisions.BREAKDOWNS) of the filter."""
    async with conn.transaction():
        await rollups.snapshot(conn, timeout=AGGREGATE_TIMEOUT)
        selection = rollups.selection(f)
        window = await rollups.window(conn, f) if selection is not None else None
        if selection is None and await _more_than_cap(conn, f):
            return Aggregates(capped=True)
        if selection is None or window is None:
            return await _direct(conn, f, time_zone=time_zone, breakdowns=breakdowns, top=top)
        return await _from_rollups(
            conn, f, window, selection, time_zone=time_zone, zone=zone, breakdowns=breakdowns, top=top
        )


async def _more_than_cap(conn: Conn, f: q.DecisionFilter) -> bool:
    return await q.count_at_most(conn, replace(f, verdict=None), CAP + 1) > CAP


async def _direct(
    conn: Conn, f: q.DecisionFilter, *, time_zone: str, breakdowns: Sequence[str], top: int
) -> Aggregates:
    out = Aggregates(counts=await q.verdict_counts(conn, f))
    span = await q.decision_time_span(conn, f)
    if span is not None:
        start, end = _chart_range(f, span)
        out.unit = chart_unit(start, end)
        out.chart_rows = await q.verdicts_over_time(conn, f, unit=out.unit, time_zone=time_zone, start=start, end=end)
    for by in breakdowns:
        out.breakdowns[by] = await q.verdicts_by(conn, f, by=by, limit=top)
    return out


async def _from_rollups(
    conn: Conn,
    f: q.DecisionFilter,
    window: rollups.Window,
    selection: tuple[str, str | None],
    *,
    time_zone: str,
    zone: tzinfo,
    breakdowns: Sequence[str],
    top: int,
) -> Aggregates:
    dimension, key = selection
    live = await rollups.live_rows(conn, f, window)
    counts: Counter[str] = Counter(r["verdict"] for r in live)
    for r in await rollups.rollup_totals(conn, f, window, dimension=dimension, key=key, verdict=False):
        counts[r["verdict"]] += r["n"]
    out = Aggregates(counts=dict(counts))
    shown = [r for r in live if f.verdict is None or r["verdict"] == f.verdict]
    span = await _span(conn, f, window, dimension, key, shown)
    if span is not None:
        start, end = _chart_range(f, span)
        out.unit = chart_unit(start, end)
        if out.unit != "minute" and _whole_hours(zone, start, end):
            out.chart_rows = await rollups.rollup_chart(
                conn, f, window, dimension=dimension, key=key, unit=out.unit, time_zone=time_zone, start=start, end=end
            )
        else:
            out.chart_rows = await q.verdicts_over_time(
                conn, f, unit=out.unit, time_zone=time_zone, start=start, end=end
            )
    for by in breakdowns:
        if dimension == "all":
            out.breakdowns[by] = await _rollup_breakdown(conn, f, window, by, shown, top)
        else:  # the rollups of one name know nothing of another: count directly
            out.breakdowns[by] = await q.verdicts_by(conn, f, by=by, limit=top)
    return out


async def _span(
    conn: Conn,
    f: q.DecisionFilter,
    window: rollups.Window,
    dimension: str,
    key: str | None,
    live: list[Row],
) -> tuple[datetime, datetime] | None:
    """The first and last timestamp of the filter's stages: the live ones', and the rolled-up ones' found within
    the first and last rolled-up hour."""
    moments = [r["timestamp"] for r in live]
    hours = await rollups.rollup_span(conn, f, window, dimension=dimension, key=key)
    if hours is not None:
        hour = timedelta(hours=1)
        first, last = await rollups.first_and_last(conn, f, (hours[0], hours[0] + hour), (hours[1], hours[1] + hour))
        moments += [t for t in (first, last) if t is not None]
    return (min(moments), max(moments)) if moments else None


async def _rollup_breakdown(
    conn: Conn, f: q.DecisionFilter, window: rollups.Window, by: str, live: list[Row], top: int
) -> list[Row]:
    """decisions.verdicts_by's rows from the rollups of `by` plus the live stages (already verdict-filtered)."""
    per: dict[str | None, Counter[str]] = {}
    for r in await rollups.rollup_totals(conn, f, window, dimension=by, key=None, verdict=True):
        per.setdefault(None if r["missing"] else r["key"], Counter())[r["verdict"]] += r["n"]
    column = BREAKDOWN_KEYS[by]
    for r in live:
        values = (r[column] or [None]) if by == "policy" else [r[column]]
        for value in values:
            per.setdefault(value, Counter())[r["verdict"]] += 1
    rows: list[Row] = [
        {"key": k, "total": sum(c.values()), **{v: c.get(v, 0) for v in VERDICTS}} for k, c in per.items()
    ]
    rows.sort(key=lambda row: (-row["total"], row["key"] is None, row["key"] or ""))
    return rows[:top]
