"""The JSON API: decision ingestion, outcomes, reads, replay. Every route also answers under `/api/v1/…`, the
original project's paths, where `domain_name` is the name of the domain parameter (both names work on both).

Lists are keyset-paginated: `limit` (1–500, default 50) and the `cursor` of the previous page's `next_cursor`.
When exactly one organization exists it is the default; otherwise `organization_id` is required.
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID, uuid4

from fastapi import APIRouter, Depends, Query, Request
from psycopg.types.json import Jsonb
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

import mandate
from mandate import service
from mandate.db import decisions as q
from mandate.db import governance as gq
from mandate.migrate.files import head_version
from mandate.service import DecisionRequest, IngestError, Problem
from mandate.web.errors import ApiError, JSONResponse
from mandate.web.state import ServerState

router = APIRouter()
Row = dict[str, Any]
Stage = Literal["proposed", "pre_commit", "executed"]
VerdictName = Literal["ALLOW", "PAUSE", "BLOCK", "OBSERVE"]
_SLUG = re.compile(r"^[a-z0-9_-]+$")
LIST_PARAMS = frozenset(
    {
        "organization_id",
        "domain",
        "domain_name",
        "verdict",
        "intent",
        "stage",
        "agent",
        "service",
        "actor",
        "target",
        "since",
        "until",
        "limit",
        "cursor",
    }
)
MAX_UNSTRUCTURED = 32_768


def state(request: Request) -> ServerState:
    s: ServerState = request.app.state.mandate
    return s


def _known(request: Request, allowed: frozenset[str]) -> None:
    unknown = sorted(set(request.query_params) - allowed)
    if unknown:
        raise ApiError(
            400,
            "unknown_parameter",
            f"unknown query parameter(s): {', '.join(unknown)}; allowed: {', '.join(sorted(allowed)) or 'none'}",
            [Problem(name, "unknown", f"{name} is not a parameter of this endpoint") for name in unknown],
        )


def _organization(s: ServerState, organization_id: UUID | None) -> UUID:
    if organization_id is not None:
        return organization_id
    sole = s.governance.sole_organization()
    if sole is None:
        count = len(s.governance.organizations)
        raise ApiError(
            422,
            "organization_required",
            f"organization_id is required: {count} organizations exist"
            if count
            else "no organization exists yet; "
            "apply a governance bundle first (mandate apply FILE.yaml, or mandate apply --demo)",
            [Problem("organization_id", "missing", "organization_id is required")],
        )
    return UUID(sole)


def _domain(domain: str | None, domain_name: str | None) -> str | None:
    if domain is not None and domain_name is not None and domain != domain_name:
        raise ApiError(
            422,
            "invalid_request",
            "domain and domain_name disagree",
            [Problem("domain", "conflict", "give domain or domain_name, not two different values")],
        )
    value = domain if domain is not None else domain_name
    if value is not None and not _SLUG.match(value):
        raise ApiError(
            422,
            "invalid_request",
            "domain must be a slug (lower-case letters, digits, _ and -)",
            [Problem("domain", "malformed", "domain must match ^[a-z0-9_-]+$")],
        )
    return value


def _aware(name: str, value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise ApiError(
            422,
            "invalid_request",
            f"{name} must include a time zone, e.g. 2026-01-31T12:00:00Z",
            [Problem(name, "timezone_missing", f"{name} must include a time zone")],
        )
    return value


# -- health ------------------------------------------------------------------------------------------------------


@router.get("/api/health", tags=["health"])
@router.get("/api/v1/health", include_in_schema=False)
async def health(request: Request) -> JSONResponse:
    """Database reachable, schema version, app version. 503 when the database is down or a migration runs."""
    s = state(request)
    body: Row = {"status": "ok", "version": mandate.__version__, "required_schema_version": head_version()}
    try:
        async with s.pool.connection(timeout=3) as conn:
            row = await (await conn.execute("SELECT max(migration_version) AS v FROM mandate.migration_log")).fetchone()
        body.update(database="reachable", schema_version=row["v"] if row else None)
    except Exception as exc:  # any failure to reach the database is "down", reported, not raised
        body.update(status="unavailable", database="unreachable", error=type(exc).__name__)
        return JSONResponse(body, status_code=503)
    if s.migration_holder is not None:
        pid, app = s.migration_holder
        body.update(status="migrating", migration={"pid": pid, "application": app})
        return JSONResponse(body, status_code=503)
    return JSONResponse(body)


# -- ingestion ---------------------------------------------------------------------------------------------------


class ScopeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    organization_id: str | None = None
    domain_name: str | None = None
    domain: str | None = None
    environment: str | None = Field(None, max_length=200)
    service: str | None = Field(None, max_length=200)
    agent: str | None = Field(None, max_length=200)
    system: str | None = Field(None, max_length=200)
    tenant: str | None = Field(None, max_length=200)


def _finite(value: Any) -> Any:
    """Refuse NaN and ±Infinity anywhere in a JSON document (JSON has no such numbers and PostgreSQL refuses them),
    and integers beyond 64 bits (most JSON readers cannot hold them exactly)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            raise ValueError("numbers must be finite (NaN and Infinity are not JSON)")
        if isinstance(item, int) and not -(2**63) <= item < 2**63:
            raise ValueError("integers must fit in 64 bits (between -2^63 and 2^63-1); send larger ones as strings")
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return value


FiniteDocument = Annotated[dict[str, Any], AfterValidator(_finite)]


class DecisionBody(BaseModel):
    """A decision event, in the original project's flat shape (`domain_name`) or with `domain`."""

    model_config = ConfigDict(extra="forbid")
    decision_id: UUID | None = None
    organization_id: str | None = Field(None, max_length=64)
    domain: str | None = Field(None, max_length=200)
    domain_name: str | None = Field(None, max_length=200)
    intent: str | None = Field(None, max_length=200)
    stage: str | None = Field(None, max_length=64)
    actor: str = Field(..., min_length=1, max_length=512)
    target: str = Field(..., min_length=1, max_length=2048)
    context: FiniteDocument = Field(default_factory=dict)
    scope: ScopeBody = Field(default_factory=lambda: ScopeBody())
    timestamp: datetime | None = None
    unstructured_context: str | None = Field(None, max_length=MAX_UNSTRUCTURED)


class OutcomeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    stage: Stage | None = None
    outcome: str = Field("reported", min_length=1, max_length=200)
    success: bool | None = None
    details: FiniteDocument = Field(default_factory=dict)


def to_request(body: DecisionBody, received_at: datetime) -> DecisionRequest:
    problems: list[Problem] = []
    if body.domain and body.domain_name and body.domain != body.domain_name:
        problems.append(Problem("domain", "conflict", "domain and domain_name disagree"))
    domain = body.domain or body.domain_name
    scope = body.scope
    if scope.organization_id and body.organization_id and scope.organization_id.lower() != body.organization_id.lower():
        problems.append(
            Problem("scope.organization_id", "conflict", "scope.organization_id disagrees with organization_id")
        )
    scope_domain = scope.domain or scope.domain_name
    if scope_domain and domain and scope_domain != domain:
        problems.append(
            Problem("scope.domain_name", "conflict", "scope.domain_name disagrees with the decision's domain")
        )
    if body.timestamp is not None and body.timestamp.tzinfo is None:
        problems.append(Problem("timestamp", "timezone_missing", "timestamp must include a time zone (e.g. Z)"))
    if problems:
        raise ApiError(422, "invalid_request", "the request is invalid; nothing was stored", problems)
    raw = body.model_dump(mode="json")
    return DecisionRequest(
        decision_id=body.decision_id or uuid4(),
        organization_id=body.organization_id or scope.organization_id,
        domain=domain or scope_domain,
        intent=body.intent,
        stage=body.stage,
        actor=body.actor,
        target=body.target,
        context=body.context,
        scope=scope.model_dump(exclude_none=True, exclude={"organization_id", "domain_name", "domain"}),
        timestamp=body.timestamp or received_at,
        unstructured_context=body.unstructured_context,
        raw=raw,
    )


@router.post("/api/decisions", tags=["decisions"], status_code=201)
@router.post("/api/v1/decisions", include_in_schema=False, status_code=201)
async def post_decision(request: Request, body: DecisionBody) -> JSONResponse:
    """Ingest a decision: resolve → validate → evaluate → store decision, verdict and timeline in one transaction.

    201 with the verdict and its explanation; 200 with the stored verdict for an identical re-send; 409 when the
    same (decision_id, stage) was sent with a different body; 422 when attribution is missing/unknown (answered
    with verdict OBSERVE and recorded in the rejection log) or signals are invalid (nothing stored)."""
    _known(request, frozenset())
    s = state(request)
    _not_migrating(s)
    received_at = datetime.now().astimezone()
    req = to_request(body, received_at)
    try:
        prepared = service.prepare(s.governance, req, received_at=received_at)
        result = await s.writer.ingest(prepared)
    except IngestError as exc:
        if exc.kind == "attribution":
            await _record_rejection(s, req, exc)
            exc.body = {"verdict": "OBSERVE", "decision_id": str(req.decision_id)}
        raise
    return JSONResponse(result.body(), status_code=201 if result.created else 200)


async def _record_rejection(s: ServerState, req: DecisionRequest, exc: IngestError) -> None:
    async with s.pool.connection() as conn:
        await conn.execute(
            """INSERT INTO mandate.decision_rejections (reason, problems, decision_id, organization_id, domain, intent,
                                                        stage) VALUES (%s, %s, %s, %s, %s, %s, %s)""",
            [
                exc.message,
                Jsonb([p.to_dict() for p in exc.problems]),
                str(req.decision_id),
                req.organization_id,
                req.domain,
                req.intent,
                req.stage,
            ],
        )


def _not_migrating(s: ServerState) -> None:
    if s.migration_holder is not None:
        pid, app = s.migration_holder
        raise ApiError(503, "migrating", f"a schema migration is running (pid {pid}, {app}); retry when it is done")


@router.post("/api/decisions/{decision_id}/outcome", tags=["decisions"], status_code=201)
@router.post("/api/v1/decisions/{decision_id}/outcome", include_in_schema=False, status_code=201)
async def post_outcome(request: Request, decision_id: UUID, body: OutcomeBody) -> JSONResponse:
    """Record what happened after the verdict (an `outcome reported` timeline entry)."""
    _known(request, frozenset())
    s = state(request)
    _not_migrating(s)
    details = dict(body.details)
    if body.success is not None:
        details["success"] = body.success
    async with s.pool.connection() as conn:
        row = await service.record_outcome(conn, decision_id, body.stage, body.outcome, details)
    return JSONResponse(row, status_code=201)


# -- reads -------------------------------------------------------------------------------------------------------


Text = Annotated[str | None, Query(max_length=2048)]
Limit = Annotated[int, Query(ge=1, le=500, description="rows per page (1–500)")]
CursorParam = Annotated[str | None, Query(max_length=512, description="next_cursor of the previous page")]


async def list_filter(
    request: Request,
    organization_id: UUID | None = None,
    domain: Text = None,
    domain_name: Text = None,
    verdict: VerdictName | None = None,
    intent: Text = None,
    stage: Stage | None = None,
    agent: Text = None,
    service: Text = None,
    actor: Text = None,
    target: Text = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> q.DecisionFilter:
    """The filters shared by the decision and verdict lists (a FastAPI dependency)."""
    _known(request, LIST_PARAMS)
    return q.DecisionFilter(
        organization_id=_organization(state(request), organization_id),
        domain=_domain(domain, domain_name),
        verdict=verdict,
        intent=intent,
        stage=stage,
        agent=agent,
        service=service,
        actor=actor,
        target=target,
        since=_aware("since", since),
        until=_aware("until", until),
    )


ListFilter = Annotated[q.DecisionFilter, Depends(list_filter)]


@router.get("/api/decisions", tags=["decisions"])
@router.get("/api/v1/decisions", include_in_schema=False)
async def list_decisions(
    request: Request, f: ListFilter, limit: Limit = 50, cursor: CursorParam = None
) -> JSONResponse:
    """Decisions, newest first, each with its verdict summary. Filters combine with AND."""
    after = q.Cursor.decode(cursor) if cursor else None
    async with state(request).pool.connection() as conn:
        page = await q.list_decisions(conn, f, limit=limit, cursor=after)
    return JSONResponse({"items": page.items, "next_cursor": page.next_cursor, "limit": limit})


@router.get("/api/verdicts", tags=["verdicts"])
@router.get("/api/v1/verdicts", include_in_schema=False)
async def list_verdicts(request: Request, f: ListFilter, limit: Limit = 50, cursor: CursorParam = None) -> JSONResponse:
    """Verdicts, newest first, with the decision they answer. Same filters as decisions."""
    after = q.Cursor.decode(cursor) if cursor else None
    async with state(request).pool.connection() as conn:
        page = await q.list_verdicts(conn, f, limit=limit, cursor=after)
    return JSONResponse({"items": page.items, "next_cursor": page.next_cursor, "limit": limit})


SCOPED = frozenset({"organization_id", "domain", "domain_name"})


async def _decision_rows(request: Request, decision_id: UUID) -> list[Row]:
    async with state(request).pool.connection() as conn:
        rows = await q.get_decision(conn, decision_id)
    _in_scope(request, rows, f"decision {decision_id}")
    return rows


def _in_scope(request: Request, rows: list[Row], what: str) -> None:
    """404 unless the thing exists — and, when the caller names an organization or domain, is in it."""
    org = request.query_params.get("organization_id")
    dom = request.query_params.get("domain") or request.query_params.get("domain_name")
    visible = [
        r
        for r in rows
        if (org is None or str(r["organization_id"]) == org.lower()) and (dom is None or r["domain"] == dom)
    ]
    if not visible:
        raise ApiError(404, "not_found", f"{what} does not exist" + (" in that organization or domain" if rows else ""))


@router.get("/api/decisions/{decision_id}", tags=["decisions"])
@router.get("/api/v1/decisions/{decision_id}", include_in_schema=False)
async def get_decision(request: Request, decision_id: UUID) -> JSONResponse:
    """A decision with every stage it went through (each with its verdict summary and context)."""
    _known(request, SCOPED)
    rows = await _decision_rows(request, decision_id)
    return JSONResponse({"decision_id": str(decision_id), "stages": rows, **rows[-1]})


@router.get("/api/decisions/{decision_id}/verdict", tags=["decisions"])
@router.get("/api/v1/decisions/{decision_id}/verdict", include_in_schema=False)
async def get_verdict(request: Request, decision_id: UUID) -> JSONResponse:
    """The decision's latest verdict with its full structured explanation; `verdicts` lists every stage's."""
    _known(request, SCOPED)
    async with state(request).pool.connection() as conn:
        rows = await q.get_verdicts(conn, decision_id)
    _in_scope(request, rows, f"decision {decision_id}")
    return JSONResponse({**rows[-1], "verdicts": rows})


@router.get("/api/decisions/{decision_id}/timeline", tags=["decisions"])
@router.get("/api/v1/decisions/{decision_id}/timeline", include_in_schema=False)
async def get_timeline(request: Request, decision_id: UUID) -> JSONResponse:
    """The append-only story of a decision, in order: received, evaluated, outcomes, failures."""
    _known(request, SCOPED)
    async with state(request).pool.connection() as conn:
        rows = await q.get_timeline(conn, decision_id)
    _in_scope(request, rows, f"decision {decision_id}")
    return JSONResponse({"decision_id": str(decision_id), "entries": rows})


@router.get("/api/decisions/{decision_id}/replay", tags=["decisions"])
@router.get("/api/v1/decisions/{decision_id}/replay", include_in_schema=False)
async def replay_decision(request: Request, decision_id: UUID) -> JSONResponse:
    """Re-evaluate a stored decision with its stored spec version, signals and snapshot; report whether the verdict
    and the explanation are identical."""
    _known(request, frozenset())
    s = state(request)
    async with s.pool.connection() as conn:
        results = await service.replay(conn, s.governance, decision_id)
    return JSONResponse(
        {
            "decision_id": str(decision_id),
            "identical": all(r.identical for r in results),
            "stages": [r.to_dict() for r in results],
        }
    )


@router.get("/api/organizations", tags=["governance"])
@router.get("/api/v1/organizations", include_in_schema=False)
async def list_organizations(request: Request) -> JSONResponse:
    _known(request, frozenset())
    async with state(request).pool.connection() as conn:
        return JSONResponse({"items": await gq.list_organizations(conn)})


@router.get("/api/domains", tags=["governance"])
@router.get("/api/v1/domains", include_in_schema=False)
async def list_domains(request: Request, organization_id: UUID | None = None) -> JSONResponse:
    """Domains of an organization."""
    _known(request, frozenset({"organization_id"}))
    org = _organization(state(request), organization_id)
    async with state(request).pool.connection() as conn:
        return JSONResponse({"organization_id": str(org), "items": await gq.list_domains(conn, org)})


@router.get("/api/scopes", tags=["governance"])
@router.get("/api/v1/scopes", include_in_schema=False)
async def list_scopes(
    request: Request, organization_id: UUID | None = None, domain: Text = None, domain_name: Text = None
) -> JSONResponse:
    """Registered scopes with their owning teams."""
    _known(request, SCOPED)
    org = _organization(state(request), organization_id)
    async with state(request).pool.connection() as conn:
        return JSONResponse({"items": await gq.list_scopes(conn, org, _domain(domain, domain_name))})


@router.get("/api/specs", tags=["governance"])
@router.get("/api/v1/specs", include_in_schema=False)
async def list_specs(
    request: Request, organization_id: UUID | None = None, domain: Text = None, domain_name: Text = None
) -> JSONResponse:
    """Every spec version with its current status."""
    _known(request, SCOPED)
    org = _organization(state(request), organization_id)
    async with state(request).pool.connection() as conn:
        return JSONResponse({"items": await gq.list_specs(conn, org, _domain(domain, domain_name))})


@router.get("/api/specs/{spec_id}", tags=["governance"])
@router.get("/api/v1/specs/{spec_id}", include_in_schema=False)
async def get_spec(
    request: Request,
    spec_id: str,
    organization_id: UUID | None = None,
    version: Annotated[str | None, Query(max_length=64)] = None,
    domain: Text = None,
    domain_name: Text = None,
) -> JSONResponse:
    """A spec: the requested version (default: the active one, else the newest), every version, status history."""
    _known(request, SCOPED | {"version"})
    org = _organization(state(request), organization_id)
    dom = _domain(domain, domain_name)
    async with state(request).pool.connection() as conn:
        versions = [v for v in await gq.get_spec_versions(conn, spec_id, org) if dom is None or v["domain"] == dom]
        history = await gq.spec_status_history(conn, spec_id)
    if not versions:
        raise ApiError(404, "not_found", f"spec {spec_id} does not exist")
    if version is not None:
        chosen = next((v for v in versions if v["version"] == version), None)
        if chosen is None:
            raise ApiError(
                404,
                "not_found",
                f"spec {spec_id} has no version {version}; it has " + ", ".join(v["version"] for v in versions),
            )
    else:
        chosen = next((v for v in reversed(versions) if v["status"] == "active"), versions[-1])
    return JSONResponse({**chosen, "versions": versions, "status_history": history})


@router.get("/api/policy-snapshots", tags=["governance"])
@router.get("/api/v1/policy-snapshots", include_in_schema=False)
async def list_snapshots(
    request: Request, organization_id: UUID | None = None, domain: Text = None, domain_name: Text = None
) -> JSONResponse:
    """Policy snapshots, highest version first per domain (the first of a domain is the active one)."""
    _known(request, SCOPED)
    org = _organization(state(request), organization_id)
    async with state(request).pool.connection() as conn:
        return JSONResponse({"items": await gq.list_snapshots(conn, org, _domain(domain, domain_name))})


@router.get("/api/policy-snapshots/{snapshot_id}/policies", tags=["governance"])
@router.get("/api/v1/policy-snapshots/{snapshot_id}/policies", include_in_schema=False)
async def snapshot_policies(request: Request, snapshot_id: UUID) -> JSONResponse:
    """The policies of a snapshot, as stored."""
    _known(request, SCOPED)
    async with state(request).pool.connection() as conn:
        row = await gq.get_snapshot(conn, snapshot_id)
    if row is None:
        raise ApiError(404, "not_found", f"policy snapshot {snapshot_id} does not exist")
    _in_scope(request, [row], f"policy snapshot {snapshot_id}")
    return JSONResponse({**row, "items": row["policies"]})
