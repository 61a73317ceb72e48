"""Who may call which route, and what a token may see. The one home of the access rules (docs/security.md).

Authentication happens before routing (`web/auth.py` puts a `Principal` in the request's state, or answers 401);
authorization happens here, in `authorize`, a dependency of the app itself, so every route of every router included
in the app gets it. A route must have an entry in `RULES` — a route without one is refused to every role (403,
fail closed), and tests/web/test_access.py fails until it gets one.

Isolation: a request that names an organization or domain outside the token's set is 403 with one body,
`FORBIDDEN`, whether that organization or domain exists or not; a decision, spec or snapshot addressed by id that
the token may not see is 404 with the same body as one that does not exist; lists only ever hold the token's rows.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from uuid import UUID

from fastapi import Request
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

from mandate.db.decisions import DecisionFilter
from mandate.tokens import Permission, Principal
from mandate.vocabulary import Row
from mandate.web.errors import ApiError

PUBLIC = None
"""A route anybody may call, without a token: it reveals no data."""

RULES: dict[tuple[str, str], Permission | None] = {
    ("GET", "/api/health"): PUBLIC,
    ("POST", "/api/decisions"): Permission.DECIDE,
    ("POST", "/api/decisions/{decision_id}/outcome"): Permission.DECIDE,
    ("GET", "/api/decisions"): Permission.READ,
    ("POST", "/api/decisions/batch"): Permission.DECIDE,
    ("GET", "/api/verdicts"): Permission.READ,
    ("GET", "/api/decisions/{decision_id}"): Permission.READ,
    ("GET", "/api/decisions/{decision_id}/verdict"): Permission.READ,
    ("GET", "/api/decisions/{decision_id}/timeline"): Permission.READ,
    ("GET", "/api/decisions/{decision_id}/replay"): Permission.READ,
    ("GET", "/api/organizations"): Permission.READ,
    ("GET", "/api/domains"): Permission.READ,
    ("GET", "/api/scopes"): Permission.READ,
    ("GET", "/api/specs"): Permission.READ,
    ("GET", "/api/specs/{spec_id}"): Permission.READ,
    ("GET", "/api/policy-snapshots"): Permission.READ,
    ("GET", "/api/policy-snapshots/{snapshot_id}/policies"): Permission.READ,
    ("POST", "/api/shadow"): Permission.ADMIN,
    ("POST", "/access/v1/evaluation"): Permission.DECIDE,  # AuthZEN: an agent asks whether it may act
    ("POST", "/access/v1/evaluations"): Permission.DECIDE,  # candidate governance over stored history: governance work
    ("GET", "/api/tokens"): Permission.ADMIN,
    ("GET", "/api/approvals"): Permission.READ,
    ("GET", "/api/approvals/{approval_id}"): Permission.READ,  # an agent: only its own (it long-polls here)
    ("GET", "/api/approvals/{approval_id}/events"): Permission.READ,
    ("POST", "/api/approvals/{approval_id}/approve"): Permission.APPROVE,
    ("POST", "/api/approvals/{approval_id}/reject"): Permission.APPROVE,
    ("POST", "/api/approvals/{approval_id}/withdraw"): Permission.DECIDE,  # the agent that sent it (or an admin)
    ("GET", "/api/findings"): Permission.READ,
    # The UI (read-only) and its login.
    ("GET", "/"): Permission.READ,
    ("GET", "/decisions/{decision_id}"): Permission.READ,
    ("GET", "/export.json"): Permission.READ,
    ("GET", "/export.csv"): Permission.READ,
    ("GET", "/scopes"): Permission.READ,
    ("GET", "/specs"): Permission.READ,
    ("GET", "/migrations"): Permission.READ,
    ("GET", "/overview"): Permission.READ,
    ("GET", "/policies/{policy_id}"): Permission.READ,
    ("GET", "/scopes/{scope_id}"): Permission.READ,
    ("GET", "/approvals"): Permission.READ,  # the queue, read-only: approving is POST /api/approvals/…
    ("GET", "/findings"): Permission.READ,
    ("GET", "/login"): PUBLIC,
    ("POST", "/login"): PUBLIC,
    ("POST", "/logout"): PUBLIC,
}
"""(method, path) → the permission a token needs (`tokens.GRANTS` says which roles have it); PUBLIC needs none.
`/api/v1/…` paths share the rule of their `/api/…` twin; HEAD shares GET's."""

FORBIDDEN = "this token may not use that organization or domain (or it does not exist)"


class NoRule(LookupError):
    """A route without an access rule."""


def rule_for(method: str, path: str) -> Permission | None:
    key = (
        "GET" if method == "HEAD" else method,
        "/api/" + path[len("/api/v1/") :] if path.startswith("/api/v1/") else path,
    )
    if key not in RULES:
        raise NoRule(f"{method} {path}")
    return RULES[key]


def route_table(routes: Iterable[BaseRoute], prefix: str = "") -> list[tuple[str, str]]:
    """(method, path) of every API route, in included routers too (HEAD left out: it follows GET)."""
    table = []
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:  # FastAPI's included router: its own routes, under its prefix
            table += route_table(included.routes, prefix + route.include_context.prefix)  # type: ignore[attr-defined]  # _IncludedRouter
        elif isinstance(route, APIRoute):
            table += [(method, prefix + route.path) for method in sorted((route.methods or set()) - {"HEAD"})]
    return sorted(table)


def principal(request: Request) -> Principal:
    """The request's principal (set by the authentication middleware). 401 if there is none."""
    found = request.scope.get("state", {}).get("principal")
    if not isinstance(found, Principal):
        raise ApiError(401, "unauthenticated", "a valid API token is required: send Authorization: Bearer mdt_…")
    return found


async def authorize(request: Request) -> None:
    """The app-wide dependency: the route's rule, the token's role. 403 names the role, never data."""
    route = request.scope.get("route")
    path = getattr(route, "path", request.url.path)
    try:
        needed = rule_for(request.method, path)
    except NoRule:
        raise ApiError(403, "forbidden", f"{request.method} {path} has no access rule; nobody may call it") from None
    if needed is PUBLIC:
        return
    p = principal(request)
    if not p.may(needed):
        raise ApiError(403, "forbidden", f"a token with role {p.role.value} may not do this (it needs {needed.value})")


def forbidden() -> ApiError:
    return ApiError(403, "forbidden", FORBIDDEN)


def organization_for(request: Request, organization_id: UUID | None) -> UUID | None:
    """The organization a request is about: the one it names (403 outside the token's), else the token's own."""
    p = principal(request)
    if organization_id is not None:
        if not p.sees_organization(organization_id):
            raise forbidden()
        return organization_id
    return p.organization_id


def check_domain(request: Request, domain: str | None) -> None:
    """403 when the request names a domain outside the token's set (whether it exists or not)."""
    p = principal(request)
    if domain is not None and p.domains is not None and domain not in p.domains:
        raise forbidden()


def restrict(request: Request, f: DecisionFilter) -> DecisionFilter:
    """A decision filter narrowed to what the token may see: its organization, its domains, an agent's own."""
    p = principal(request)
    return replace(
        f,
        domains=None if p.domains is None else tuple(sorted(p.domains)),
        token_id=p.own_decisions_only,
    )


def visible_rows(request: Request, rows: list[Row], *, decisions: bool = False) -> list[Row]:
    """The rows (with `organization_id` and `domain`, and `token_id` for decisions) the token may see."""
    p = principal(request)
    if decisions:
        return [r for r in rows if p.sees_decision(str(r["organization_id"]), str(r["domain"]), r.get("token_id"))]
    return [r for r in rows if p.sees_domain(str(r["organization_id"]), str(r["domain"]))]
