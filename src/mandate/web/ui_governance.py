"""The governance pages of the UI:

    GET /scopes       the scopes of a domain as a hierarchy, with owning teams
    GET /specs        spec versions and their status history
    GET /migrations   the migration log

The scope hierarchy comes from the evaluator's own `ScopeIndex` (the function ingestion resolves scopes with), so
the tree shows exactly the ancestors whose policies apply."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from mandate.db import governance as gq
from mandate.evaluator import ScopeIndex
from mandate.governance.records import scope_from_record
from mandate.migrate.files import head_version
from mandate.vocabulary import Row
from mandate.web.access import visible_rows
from mandate.web.api import state
from mandate.web.inputs import check_parameters
from mandate.web.ui import (
    Place,
    Problems,
    _clock,
    _place,
    page,
)

router = APIRouter(include_in_schema=False, dependencies=[Depends(check_parameters)])


@dataclass
class ScopeNode:
    row: Row
    depth: int
    selectors: dict[str, str]
    parent: str | None


def scope_tree(rows: Iterable[Row]) -> list[ScopeNode]:
    """Scopes in hierarchy order (each after its parent). A scope's parent is its most specific ancestor as the
    evaluator's ScopeIndex resolves it — the scopes whose policies also apply to decisions it holds authority over."""
    rows = list(rows)
    by_id = {r["scope_id"]: r for r in rows}
    scopes = {r["scope_id"]: scope_from_record(r) for r in rows}
    index = ScopeIndex(scopes.values())
    parent: dict[str, str | None] = {}
    for scope_id, scope in scopes.items():
        resolution = index.resolve_attribution(scope.organization_id, scope.domain, scope.selectors)
        ancestors = [a.scope_id for a in resolution.ancestors] if resolution else []
        parent[scope_id] = ancestors[0] if ancestors else None
    children: dict[str | None, list[str]] = {}
    for scope_id in sorted(scopes, key=lambda s: (by_id[s]["domain"], s)):
        children.setdefault(parent[scope_id], []).append(scope_id)
    out: list[ScopeNode] = []

    def visit(scope_id: str, depth: int) -> None:
        out.append(ScopeNode(by_id[scope_id], depth, scopes[scope_id].selectors, parent[scope_id]))
        for child in children.get(scope_id, []):
            visit(child, depth + 1)

    for root in children.get(None, []):
        visit(root, 0)
    return out


async def _governance_page(request: Request, nav: str) -> tuple[Place, Problems, dict[str, Any]]:
    problems = Problems()
    clock = _clock(request, problems)
    async with state(request).pool.connection() as conn:
        place = await _place(conn, request, problems)
    context = {"nav": nav, "clock": clock, "place": place, "problems": problems.items}
    return place, problems, context


@router.api_route("/scopes", methods=["GET", "HEAD"], response_class=HTMLResponse)
async def scopes_page(request: Request) -> HTMLResponse:
    place, problems, context = await _governance_page(request, "scopes")
    if problems or not place.ready or place.organization_id is None:
        return page("scopes.html", 400 if problems else 200, **context, nodes=None)
    async with state(request).pool.connection() as conn:
        rows = visible_rows(request, await gq.list_scopes(conn, place.organization_id, place.domain))
    return page("scopes.html", **context, nodes=scope_tree(rows))


@router.api_route("/specs", methods=["GET", "HEAD"], response_class=HTMLResponse)
async def specs_page(request: Request) -> HTMLResponse:
    place, problems, context = await _governance_page(request, "specs")
    if problems or not place.ready or place.organization_id is None:
        return page("specs.html", 400 if problems else 200, **context, specs=None)
    async with state(request).pool.connection() as conn:
        versions = visible_rows(request, await gq.list_specs(conn, place.organization_id, place.domain))
        events = await gq.list_spec_status_events(conn, place.organization_id, place.domain)
    specs: dict[str, Row] = {}
    for v in versions:
        entry = specs.setdefault(
            v["spec_id"], {"spec_id": v["spec_id"], "domain": v["domain"], "versions": [], "history": []}
        )
        entry["versions"].append(v)
    for e in events:
        if e["spec_id"] in specs:
            specs[e["spec_id"]]["history"].append(e)
    return page("specs.html", **context, specs=list(specs.values()))


@router.api_route("/migrations", methods=["GET", "HEAD"], response_class=HTMLResponse)
async def migrations_page(request: Request) -> HTMLResponse:
    problems = Problems()
    clock = _clock(request, problems)
    async with state(request).pool.connection() as conn:
        rows = await gq.migration_log(conn)
    applied = max((r["migration_version"] for r in rows), default=0)
    return page(
        "migrations.html",
        nav="migrations",
        clock=clock,
        problems=problems.items,
        rows=rows,
        applied=applied,
        required=head_version(),
    )
