"""Approvals in the read-only UI (docs/approvals.md): a domain's queue of approval requests, and the findings.

    GET /approvals   the requests of a domain in one state (pending by default), oldest first — the queue's order:
                     time to expiry, each requirement and who satisfied it, owning team and where the request is
                     routed, the action (intent, target, agent), its decision; counts per state, keyset pages
    GET /findings    `executed` stages that no ALLOW or approval covered, or that did another action, newest first

Like every UI page they only read: approvers resolve a request through the API or the CLI, and the queue says how.
They show only what the token may see, with the query functions and access rules of `GET /api/approvals` and
`GET /api/findings` (web/approvals.py).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from mandate import approval_workflow as workflow
from mandate.approvals.state import State, route
from mandate.db import approvals as aq
from mandate.web.access import principal
from mandate.web.api import state
from mandate.web.inputs import check_parameters
from mandate.web.ui import (
    DEFAULT_LIMIT,
    PAGE_SIZES,
    UTC_CLOCK,
    Clock,
    Place,
    Problems,
    _clock,
    _cursor,
    _param,
    _place,
    decision_url,
    link,
    page,
)

router = APIRouter(include_in_schema=False, dependencies=[Depends(check_parameters)])
STATES = tuple(s.value for s in State)  # the queue's filter, pending (the default) first
FINDING_KINDS = {
    "unapproved_execution": "Executed without approval",
    "action_differs": "Executed another action",
}


def _limit(request: Request, problems: Problems) -> int:
    text = _param(request, "limit") or str(DEFAULT_LIMIT)
    limit = int(text) if text.isdigit() else 0
    if not 1 <= limit <= max(PAGE_SIZES):
        problems.add("limit", f"limit must be a number from 1 to {max(PAGE_SIZES)}")
        return DEFAULT_LIMIT
    return limit


def _params(place: Place, clock: Clock, limit: int, **more: str | None) -> dict[str, str | None]:
    """The query string of the current view (without cursor), for links and pages."""
    return {
        **place.params(),
        "tz": None if clock is UTC_CLOCK else clock.name,
        "limit": None if limit == DEFAULT_LIMIT else str(limit),
        **more,
    }


def _domains(request: Request) -> list[str] | None:
    p = principal(request)
    return None if p.domains is None else sorted(p.domains)


@router.api_route("/approvals", methods=["GET", "HEAD"], response_class=HTMLResponse)
async def approvals_page(request: Request) -> HTMLResponse:
    problems = Problems()
    clock = _clock(request, problems)
    wanted = _param(request, "state") or State.PENDING.value
    if wanted not in STATES:
        problems.add("state", f"state {wanted[:64]!r} is not one of {', '.join(STATES)}")
        wanted = State.PENDING.value
    limit = _limit(request, problems)
    cursor = _cursor(request, "cursor", problems)
    p = principal(request)
    now = datetime.now(UTC)
    async with state(request).pool.connection() as conn:
        place = await _place(conn, request, problems)
        params = _params(place, clock, limit, state=None if wanted == State.PENDING.value else wanted)
        context: dict[str, Any] = {"nav": "approvals", "clock": clock, "place": place, "problems": problems.items}
        context.update(wanted=wanted, states=STATES, limit=limit, page_sizes=PAGE_SIZES, params=params, now=now)
        if problems or not place.ready:
            return page("approvals.html", 400 if problems else 200, **context, items=None)
        where: dict[str, Any] = {
            "organization_id": place.organization_id,
            "domains": _domains(request),
            "domain": place.domain,
            "token_id": p.own_decisions_only,
        }
        found, next_cursor = await aq.list_requests(conn, **where, state=wanted, now=now, limit=limit, cursor=cursor)
        counts = await aq.count_requests(conn, **where, now=now, cap=aq.COUNT_CAP)
        found = [a for a in found if workflow.visible(p, a)]
        teams: dict[tuple[UUID, str], set[str]] = {}
        for a in found:
            key = (a.request["organization_id"], a.request["domain"])
            if key not in teams:
                teams[key] = await aq.teams_with_approvers(conn, key[0], key[1], now)
    items = [
        {**a.to_dict(now), "routed_to": route(a, teams[(a.request["organization_id"], a.request["domain"])])}
        for a in found
    ]
    return page(
        "approvals.html",
        **context,
        items=items,
        counts=counts,
        count_cap=aq.COUNT_CAP,
        base_url=str(request.base_url),
        first_url=link("/approvals", params) if cursor is not None else None,
        next_url=link("/approvals", {**params, "cursor": next_cursor}) if next_cursor else None,
        state_url=lambda name: link("/approvals", {**params, "state": None if name == State.PENDING.value else name}),
        decision_url=lambda item: decision_url(item, params),
    )


@router.api_route("/findings", methods=["GET", "HEAD"], response_class=HTMLResponse)
async def findings_page(request: Request) -> HTMLResponse:
    problems = Problems()
    clock = _clock(request, problems)
    limit = _limit(request, problems)
    cursor = _cursor(request, "cursor", problems)
    p = principal(request)
    async with state(request).pool.connection() as conn:
        place = await _place(conn, request, problems)
        params = _params(place, clock, limit)
        context: dict[str, Any] = {"nav": "findings", "clock": clock, "place": place, "problems": problems.items}
        context.update(limit=limit, page_sizes=PAGE_SIZES, kinds=FINDING_KINDS)
        if problems or not place.ready:
            return page("findings.html", 400 if problems else 200, **context, items=None)
        items, next_cursor = await aq.list_findings(
            conn,
            organization_id=place.organization_id,
            domains=_domains(request),
            domain=place.domain,
            token_id=p.own_decisions_only,
            limit=limit,
            cursor=cursor,
        )
    return page(
        "findings.html",
        **context,
        items=items,
        first_url=link("/findings", params) if cursor is not None else None,
        next_url=link("/findings", {**params, "cursor": next_cursor}) if next_cursor else None,
        decision_url=lambda item: decision_url(item, params),
    )
