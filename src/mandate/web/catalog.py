"""Governance pages of the read-only UI: one policy, one scope — what a person clicks on from a decision.

    GET /policies/{policy_id}   the policy in each snapshot of its domain, a diff between two of them, its decisions
    GET /scopes/{scope_id}      the scope: owning team and contact, selectors, parent and children, the policies bound
                                to it, its recent decisions

Like every UI page they only read, render what is stored, and show only what the token may see.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from mandate.db import decisions as q
from mandate.db import governance as gq
from mandate.vocabulary import Row
from mandate.web.access import restrict, visible_rows
from mandate.web.api import state
from mandate.web.inputs import check_parameters
from mandate.web.ui import (
    Problems,
    _clock,
    _place,
    decision_url,
    governance_links,
    here,
    link,
    not_found,
    page,
    pretty_json,
)
from mandate.web.ui_governance import scope_tree

router = APIRouter(include_in_schema=False, dependencies=[Depends(check_parameters)])
RECENT = 20  # decisions shown on a policy or scope page; the list page has the rest


@dataclass
class PolicyHistory:
    """A policy in one domain: every snapshot of the domain, with the policy as stored there (None: absent)."""

    domain: str
    versions: list[Row]

    @property
    def changes(self) -> list[Row]:
        """The snapshots where the policy appeared, changed or disappeared (the first one included)."""
        out, previous = [], object()
        for v in self.versions:
            if v["policy"] != previous:
                out.append(v)
            previous = v["policy"]
        return out


def policy_diff(old: Row | None, new: Row | None) -> list[tuple[str, str]]:
    """A line diff of two stored policies as indented JSON: (kind, line), kind one of ' ', '+', '-'."""
    a = pretty_json(old).splitlines() if old is not None else []
    b = pretty_json(new).splitlines() if new is not None else []
    return [(line[0], line[1:]) for line in difflib.ndiff(a, b) if line[:1] in (" ", "+", "-")]


@router.api_route("/policies/{policy_id}", methods=["GET", "HEAD"], response_class=HTMLResponse)
async def policy_page(request: Request, policy_id: str) -> Response:
    problems = Problems()
    clock = _clock(request, problems)
    async with state(request).pool.connection() as conn:
        place = await _place(conn, request, problems, default_domain=False)
        if problems or place.organization_id is None:
            return not_found(
                f"Policy {policy_id[:80]!r} cannot be shown here.",
                "; ".join(m for _, m in problems.items) or "Choose an organization on the decisions page.",
                clock,
            )
        domains = [place.domain] if place.domain else [d["domain"] for d in place.domains]
        histories = []
        for domain in domains:
            versions = await gq.policy_versions(conn, place.organization_id, domain, policy_id)
            if any(v["policy"] is not None for v in versions):
                histories.append(PolicyHistory(domain, versions))
        if not histories:
            where = f" in domain {place.domain}" if place.domain else ""
            return not_found(
                f"No snapshot holds a policy {policy_id[:80]!r}{where}.",
                "Policy ids are listed on a decision's page, under its candidate policies.",
                clock,
            )
        history = histories[0]
        params = {**here(place, clock), "domain": history.domain}
        f = restrict(
            request, q.DecisionFilter(organization_id=place.organization_id, domain=history.domain, policy_id=policy_id)
        )
        recent = await q.list_decisions(conn, f, limit=RECENT)
    by_version = {str(v["version"]): v for v in history.versions}
    changes = history.changes
    a_text, b_text = request.query_params.get("a"), request.query_params.get("b")
    newer = by_version.get(b_text or "") or changes[-1]
    older = by_version.get(a_text or "") or (changes[-2] if len(changes) > 1 else None)
    return page(
        "policy.html",
        nav="",
        clock=clock,
        place=place,
        policy_id=policy_id,
        history=history,
        other_domains=[h.domain for h in histories[1:]],
        current=next((v for v in reversed(history.versions) if v["policy"] is not None), None),
        older=older,
        newer=newer,
        diff=policy_diff(older["policy"] if older else None, newer["policy"]),
        recent=recent.items,
        more=recent.next_cursor is not None,
        decisions_url=link("/", {**params, "policy_id": policy_id}),
        decision_url=lambda row: decision_url(row, params),
        params=params,
        **governance_links(params),
    )


@router.api_route("/scopes/{scope_id}", methods=["GET", "HEAD"], response_class=HTMLResponse)
async def scope_page(request: Request, scope_id: str) -> Response:
    problems = Problems()
    clock = _clock(request, problems)
    async with state(request).pool.connection() as conn:
        place = await _place(conn, request, problems, default_domain=False)
        if problems or place.organization_id is None:
            return not_found(
                f"Scope {scope_id[:80]!r} cannot be shown here.",
                "; ".join(m for _, m in problems.items) or "Choose an organization on the decisions page.",
                clock,
            )
        scopes = visible_rows(request, await gq.list_scopes(conn, place.organization_id, place.domain))
        row = next((s for s in scopes if s["scope_id"] == scope_id), None)
        if row is None:
            where = f" in domain {place.domain}" if place.domain else ""
            return not_found(
                f"Scope {scope_id[:80]!r} does not exist{where}.",
                "Every registered scope is on the Scopes page.",
                clock,
            )
        domain = row["domain"]
        tree = scope_tree(s for s in scopes if s["domain"] == domain)
        node = next(n for n in tree if n.row["scope_id"] == scope_id)
        children = [n.row for n in tree if n.parent == scope_id]
        bound = await gq.policies_of_scope(conn, place.organization_id, domain, scope_id)
        f = restrict(request, q.DecisionFilter(organization_id=place.organization_id, domain=domain, scope_id=scope_id))
        recent = await q.list_decisions(conn, f, limit=RECENT)
    params = {**here(place, clock), "domain": domain}
    return page(
        "scope.html",
        nav="scopes",
        clock=clock,
        place=place,
        scope=row,
        node=node,
        children=children,
        bound=bound,
        recent=recent.items,
        more=recent.next_cursor is not None,
        decisions_url=link("/", {**params, "scope_id": scope_id}),
        team_url=link("/", {**params, "owning_team": row["owning_team"]}) if row["owning_team"] else None,
        scopes_url=link("/scopes", params),
        decision_url=lambda r: decision_url(r, params),
        params=params,
        **governance_links(params),
    )
