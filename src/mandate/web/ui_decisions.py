"""The decisions page of the UI:

GET /    decisions: filters in the URL, keyset pages, counts per verdict, verdicts over time, the id search
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from mandate.db import decisions as q
from mandate.db import governance as gq
from mandate.vocabulary import Row
from mandate.web.access import visible_rows
from mandate.web.api import state
from mandate.web.charts import (
    _aggregates,
    bar_url,
)
from mandate.web.inputs import check_parameters
from mandate.web.ui import (
    COMMON_ZONES,
    PAGE_SIZES,
    Conn,
    Place,
    Problems,
    _clock,
    _filter_params,
    _form,
    _has_filters,
    _param,
    _place,
    decision_url,
    find_decisions,
    link,
    page,
)

router = APIRouter(include_in_schema=False, dependencies=[Depends(check_parameters)])


@router.api_route("/", methods=["GET", "HEAD"], response_class=HTMLResponse)
async def decisions_page(request: Request) -> Response:
    problems = Problems()
    clock = _clock(request, problems)
    base: dict[str, Any] = {"nav": "decisions", "clock": clock, "zones": COMMON_ZONES, "page_sizes": PAGE_SIZES}
    base.update(matches=None, request_id=_param(request, "id"), names=Names())
    async with state(request).pool.connection() as conn:
        place = await _place(conn, request, problems)
        form = _form(request, place, clock, problems)
        base.update(place=place, form=form, problems=problems.items, base_url=str(request.base_url))
        base.update(decision_url=lambda row: decision_url(row, _filter_params(place, form)))
        if place.organization_id is not None:
            base.update(names=await governance_names(conn, request, place))
        if problems or not place.ready:
            return page("decisions.html", 400 if problems else 200, **base, listing=None)
        typed = _param(request, "id")
        if typed is not None:
            found = await find_decisions(conn, request, typed, place, problems)
            if len(found) == 1:
                return RedirectResponse(decision_url(found[0], _filter_params(place, form)), status_code=303)
            if problems or found:
                base.update(problems=problems.items, matches=found)
                return page("decisions.html", 400 if problems else 200, **base, listing=None)
        listing = await q.list_decisions(conn, form.filter, limit=form.limit, cursor=form.cursor, before=form.before)
        tally, chart, note = await _aggregates(conn, form.filter, clock)
    params = _filter_params(place, form)
    return page(
        "decisions.html",
        **base,
        listing=listing,
        counts=tally.counts,
        total=sum(tally.counts.values()),
        capped=tally.capped,
        chart=chart,
        aggregate_note=note,
        params=params,
        has_filters=_has_filters(form),
        first_url=link("/", params) if form.cursor is not None or form.before is not None else None,
        previous_url=link("/", {**params, "before": listing.previous_cursor}) if listing.previous_cursor else None,
        next_url=link("/", {**params, "cursor": listing.next_cursor}) if listing.next_cursor else None,
        bar_url=lambda bar: bar_url(bar, params, clock),
        export_csv=link("/export.csv", params),
        export_json=link("/export.json", params),
    )


@dataclass
class Names:
    """What the name filters can hold in the current place (suggestions for their inputs)."""

    policies: list[str] = field(default_factory=list)
    teams: list[str] = field(default_factory=list)
    scopes: list[str] = field(default_factory=list)
    specs: list[str] = field(default_factory=list)


async def governance_names(conn: Conn, request: Request, place: Place) -> Names:
    """The policy ids (of each domain's newest snapshot), owning teams, scope ids and spec ids of the place."""
    assert place.organization_id is not None
    scopes = visible_rows(request, await gq.list_scopes(conn, place.organization_id, place.domain))
    specs = visible_rows(request, await gq.list_specs(conn, place.organization_id, place.domain))
    newest: dict[str, Row] = {}
    for snap in visible_rows(request, await gq.list_snapshots(conn, place.organization_id, place.domain)):
        newest.setdefault(snap["domain"], snap)  # listed newest first per domain
    policies: set[str] = set()
    for snap in newest.values():
        stored = await gq.get_snapshot(conn, snap["snapshot_id"])
        policies.update(str(p.get("id")) for p in (stored or {}).get("policies") or [] if p.get("id"))
    return Names(
        policies=sorted(policies),
        teams=sorted({s["owning_team"] for s in scopes if s["owning_team"]}),
        scopes=sorted({s["scope_id"] for s in scopes}),
        specs=sorted({s["spec_id"] for s in specs}),
    )
