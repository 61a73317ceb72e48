"""The overview page of the read-only UI: what a domain's decisions look like over a time range.

    GET /overview   verdicts over time (presets, zoom: every bar opens the overview of its bucket), then the policies
                    and agents with the most decisions, and BLOCK/PAUSE by scope and by owning team

It takes the decisions page's filter (same query string: a link from one to the other keeps the view) plus `range`,
a preset (`1h`, `24h`, `7d`, `30d`; it sets `since`/`until` from the server's clock). Every chart is SVG drawn on the
server (no script, no CDN) with its numbers in a table beside it, and every bar links to the decisions it counts.
Aggregates run under the same statement timeout as the decisions page's counts.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from mandate.vocabulary import Row
from mandate.web.api import state
from mandate.web.charts import _aggregates, bar_url
from mandate.web.inputs import check_parameters
from mandate.web.ui import (
    VERDICTS,
    Problems,
    _clock,
    _filter_params,
    _form,
    _param,
    _place,
    link,
    local_input,
    page,
)

router = APIRouter(include_in_schema=False, dependencies=[Depends(check_parameters)])
PRESETS = {"1h": timedelta(hours=1), "24h": timedelta(days=1), "7d": timedelta(days=7), "30d": timedelta(days=30)}
TOP = 10
BREAKDOWNS = (  # (key of q.BREAKDOWNS, title, the decisions-page filter a row links to)
    ("policy", "Policies that matched the most decisions", "policy_id"),
    ("agent", "Agents with the most decisions", "agent"),
    ("scope", "BLOCK and PAUSE by scope", "scope_id"),
    ("owning_team", "BLOCK and PAUSE by owning team", "owning_team"),
)


@dataclass
class Breakdown:
    """One horizontal stacked bar per value, most decisions first, in a 1000-wide box; rows as stored."""

    by: str
    title: str
    param: str
    rows: list[Row] = field(default_factory=list)
    width: int = 1000

    @property
    def peak(self) -> int:
        return max((r["total"] for r in self.rows), default=0)

    def segments(self, row: Row) -> list[tuple[str, float, float, int]]:
        """(verdict, x, width, n) of a row's bar, most severe first (left)."""
        scale = self.width / max(self.peak, 1)
        x, out = 0.0, []
        for v in VERDICTS:
            if n := row[v]:
                out.append((v, round(x, 3), round(n * scale, 3), n))
                x += n * scale
        return out

    @staticmethod
    def rate(row: Row) -> str:
        """BLOCK + PAUSE as a share of the row's decisions."""
        return f"{100 * (row['BLOCK'] + row['PAUSE']) / max(row['total'], 1):.0f} %"


def zoom_out(since: datetime, until: datetime) -> tuple[datetime, datetime]:
    """The range three times as wide around the same middle."""
    width = until - since
    return since - width, until + width


@router.api_route("/overview", methods=["GET", "HEAD"], response_class=HTMLResponse)
async def overview_page(request: Request) -> Response:
    problems = Problems()
    clock = _clock(request, problems)
    preset = _param(request, "range")
    if preset is not None and preset not in PRESETS:
        problems.add("range", f"range {preset[:16]!r} is not one of {', '.join(PRESETS)}")
        preset = None
    base: dict[str, Any] = {"nav": "overview", "clock": clock, "presets": PRESETS, "preset": preset}
    async with state(request).pool.connection() as conn:
        place = await _place(conn, request, problems)
        form = _form(request, place, clock, problems, paging=False)
        if preset is not None:  # the preset sets the time range (and shows it in the form, to adjust)
            until = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
            since = until - PRESETS[preset]
            form.filter = replace(form.filter, since=since, until=until)
            form.values.update(since=local_input(since, clock), until=local_input(until, clock))
        params = {**_filter_params(place, form), "range": None}
        base.update(place=place, form=form, problems=problems.items, params=params)
        base.update(
            all_time_url=link("/overview", {**params, "since": None, "until": None}),
            preset_url=lambda name: link("/overview", {**params, "since": None, "until": None, "range": name}),
            zoom_out_url=None,
        )
        if problems or not place.ready:
            return page("overview.html", 400 if problems else 200, **base, chart=None, breakdowns=[], note=None)
        found, chart, note = await _aggregates(conn, form.filter, clock, tuple(by for by, _, _ in BREAKDOWNS))
        breakdowns = [Breakdown(by, title, param, found.breakdowns.get(by, [])) for by, title, param in BREAKDOWNS]
    f = form.filter
    wider = None
    if chart is not None and chart.bars and chart.bars[0].start and chart.bars[-1].end:
        lo, hi = zoom_out(f.since or chart.bars[0].start, f.until or chart.bars[-1].end)
        wider = link("/overview", {**params, "since": local_input(lo, clock), "until": local_input(hi, clock)})
    base.update(zoom_out_url=wider)
    return page(
        "overview.html",
        **base,
        chart=chart,
        counts=found.counts,
        total=sum(found.counts.values()),
        capped=found.capped,
        breakdowns=breakdowns,
        note=note,
        zoom_url=lambda bar: bar_url(bar, params, clock, "/overview"),
        bar_url=lambda bar: bar_url(bar, params, clock),
        list_url=link("/", params),
        row_url=lambda b, row: link("/", {**params, b.param: row["key"]}) if row["key"] is not None else None,
    )
