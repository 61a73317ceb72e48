"""The verdicts-over-time chart of the decisions page and the overview: SVG bars drawn on the server from the
aggregates (web/aggregates.py), each bar a link to the decisions it counts."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

import psycopg

from mandate.db import decisions as q
from mandate.vocabulary import Row
from mandate.web.aggregates import AGGREGATE_TIMEOUT, CAP, Aggregates, aggregate
from mandate.web.ui import (
    VERDICTS,
    Clock,
    Conn,
    link,
    local_input,
)

_BUCKET_LABEL = {
    "minute": "%m-%d %H:%M",
    "hour": "%m-%d %H:00",
    "day": "%Y-%m-%d",
    "week": "wk %Y-%m-%d",
    "month": "%Y-%m",
    "year": "%Y",
}


@dataclass
class Bar:
    x: float
    width: float
    label: str
    total: int
    segments: list[tuple[str, float, float, int]]  # verdict, y, height, n (bottom: least severe)
    start: datetime | None = None
    end: datetime | None = None  # exclusive
    counts: dict[str, int] = field(default_factory=dict)


@dataclass
class Chart:
    """Stacked bars in a 1000 x 100 box the page stretches to its width; labels are HTML beside it."""

    unit: str
    peak: int
    bars: list[Bar] = field(default_factory=list)
    width: int = 1000
    height: int = 100

    @property
    def labels(self) -> list[str]:
        """The first, middle and last bucket's labels, for the x axis."""
        if not self.bars:
            return []
        picks = sorted({0, (len(self.bars) - 1) // 2, len(self.bars) - 1})
        return [self.bars[i].label for i in picks]


async def _aggregates(
    conn: Conn, f: q.DecisionFilter, clock: Clock, breakdowns: tuple[str, ...] = ()
) -> tuple[Aggregates, Chart | None, str | None]:
    """The filter's aggregates (web/aggregates.py), its chart, and the note to show when they are not complete."""
    try:
        found = await aggregate(conn, f, time_zone=clock.name, zone=clock.zone, breakdowns=breakdowns)
    except (psycopg.errors.QueryCanceled, psycopg.errors.InvalidParameterValue) as exc:
        note = (
            f"Counts and the chart took longer than {AGGREGATE_TIMEOUT} for this filter; narrow the time range."
            if isinstance(exc, psycopg.errors.QueryCanceled)
            else f"The database does not know the time zone {clock.name}; counts and the chart are not shown."
        )
        return Aggregates(), None, note
    if found.capped:
        note = (
            f"More than {CAP:,} decisions match this search: counts and the chart are shown up to {CAP:,}. "
            "Narrow it (a longer start of the actor or target, a time range, or one name filter)."
        )
        return found, None, note
    chart = _chart(found.chart_rows, found.unit, clock) if found.chart_rows is not None else None
    return found, chart, None


def _chart(rows: list[Row], unit: str, clock: Clock) -> Chart:
    """The bars of `verdicts_over_time` rows, each with its bucket's start and end (to link to its decisions)."""
    buckets: dict[datetime, dict[str, int]] = {}
    ends: dict[datetime, datetime] = {}
    for r in rows:
        per = buckets.setdefault(r["bucket"], {})
        ends[r["bucket"]] = r["bucket_end"]
        if r["verdict"] is not None:
            per[r["verdict"]] = r["n"]
    chart = Chart(unit, max((sum(v.values()) for v in buckets.values()), default=0))
    slot = chart.width / max(len(buckets), 1)
    scale = chart.height / max(chart.peak, 1)
    for i, (bucket, per) in enumerate(buckets.items()):
        y = float(chart.height)
        segments = []
        for verdict in reversed(VERDICTS):
            if n := per.get(verdict, 0):
                y -= n * scale
                segments.append((verdict, round(y, 3), round(n * scale, 3), n))
        label = bucket.astimezone(clock.zone).strftime(_BUCKET_LABEL[unit])
        x, width = round(i * slot + slot * 0.12, 3), round(slot * 0.76, 3)
        chart.bars.append(Bar(x, width, label, sum(per.values()), segments, bucket, ends[bucket], per))
    return chart


def bar_url(bar: Bar, params: Mapping[str, str | None], clock: Clock, path: str = "/") -> str:
    """The decisions of one bar: the current filter narrowed to the bar's bucket."""
    if bar.start is None or bar.end is None:
        return link(path, params)
    return link(path, {**params, "since": local_input(bar.start, clock), "until": local_input(bar.end, clock)})
