"""The JSON API: decision ingestion, outcomes, reads, replay. Every route also answers under `/api/v1/…`, the
original project's paths, where `domain_name` is the name of the domain parameter (both names work on both).

Lists are keyset-paginated: `limit` (1–500, default 50) and the `cursor` of the previous page's `next_cursor`.
When exactly one organization exists it is the default; otherwise `organization_id` is required.

Every route answers only within the caller's token (web/access.py): its organization is the default organization,
a named organization or domain outside it is 403, lists hold only its domains (an agent's: only the decisions it
sent), and a decision or snapshot it may not see is 404 exactly like one that does not exist.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, Protocol
from uuid import UUID, uuid4

import psycopg
from fastapi import APIRouter, Depends, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import Response
from psycopg import AsyncConnection
from pydantic import BaseModel, ConfigDict, Field, ValidationError

import mandate
from mandate import service
from mandate.db import decisions as q
from mandate.db import governance as gq
from mandate.errors import DatabaseUnavailable, MandateError
from mandate.migrate.files import head_version
from mandate.replay import MIN_ID_PREFIX, SHOWN_CANDIDATES, replay, shared_prefix_range
from mandate.service import DecisionRequest, IngestError, IngestResult, Problem
from mandate.vocabulary import Row, Stage, is_slug
from mandate.web import doc
from mandate.web.access import check_domain, forbidden, organization_for, principal, restrict, visible_rows
from mandate.web.errors import (
    BATCH_PATHS,
    DECISION_PATHS,
    ApiError,
    JSONResponse,
    attribution_error,
    database_answer,
    error_body,
    ingest_answer,
    invalid_request,
    is_attribution_problem,
    reject_attribution,
    rejection,
    validation_problems,
)
from mandate.web.inputs import JsonBodyRoute, Timestamp, bounded, check_parameters, require_json, storable
from mandate.web.state import ServerState

router = APIRouter(dependencies=[Depends(check_parameters)])
Endpoint = Callable[..., Coroutine[Any, Any, Response]]
JSON_BODY = [Depends(require_json)]
VerdictName = Literal["ALLOW", "PAUSE", "BLOCK", "OBSERVE"]
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


def known_parameters(request: Request, allowed: frozenset[str]) -> None:
    unknown = sorted(set(request.query_params) - allowed)
    if unknown:
        raise ApiError(
            400,
            "unknown_parameter",
            f"unknown query parameter(s): {', '.join(unknown)}; allowed: {', '.join(sorted(allowed)) or 'none'}",
            [Problem(name, "unknown", f"{name} is not a parameter of this endpoint") for name in unknown],
        )


def scoped_organization(request: Request, organization_id: UUID | None) -> UUID:
    """The named organization (403 outside the token's), else the token's, else the only one there is."""
    chosen = organization_for(request, organization_id)
    if chosen is not None:
        return chosen
    s = state(request)
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


def scoped_domain(request: Request, domain: str | None, domain_name: str | None) -> str | None:
    if domain is not None and domain_name is not None and domain != domain_name:
        raise ApiError(
            422,
            "invalid_request",
            "domain and domain_name disagree",
            [Problem("domain", "conflict", "give domain or domain_name, not two different values")],
        )
    value = domain if domain is not None else domain_name
    if value is not None and not is_slug(value):
        raise ApiError(
            422,
            "invalid_request",
            "domain must be a slug (lower-case letters, digits, _ and -)",
            [Problem("domain", "malformed", "domain must match ^[a-z0-9_-]+$")],
        )
    check_domain(request, value)
    return value


# -- health ------------------------------------------------------------------------------------------------------


@router.get("/api/health", tags=["health"], **doc.health)
@router.get("/api/v1/health", include_in_schema=False, **doc.health)
async def health(request: Request) -> JSONResponse:
    """Database reachable, schema version, app version. 503 when the database is down or a migration runs."""
    s = state(request)
    body: Row = {
        "status": "ok",
        "version": mandate.__version__,
        "required_schema_version": head_version(),
        "governance_warnings": len(s.governance.warnings),  # rows contained, not fatal: `mandate governance check`
    }
    try:
        async with s.pool.connection(timeout=3) as conn:
            version = await gq.schema_version(conn)
        body.update(database="reachable", schema_version=version)
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
    organization_id: Annotated[str | None, bounded(64)] = None
    domain_name: Annotated[str | None, bounded(200)] = None
    domain: Annotated[str | None, bounded(200)] = None
    environment: Annotated[str | None, bounded(200)] = None
    service: Annotated[str | None, bounded(200)] = None
    agent: Annotated[str | None, bounded(200)] = None
    system: Annotated[str | None, bounded(200)] = None
    tenant: Annotated[str | None, bounded(200)] = None


class DecisionBody(BaseModel):
    """A decision event, in the original project's flat shape (`domain_name`) or with `domain`. String bounds are
    in UTF-8 bytes; no string (JSON keys included) may hold NUL or a lone surrogate (`web/inputs.py`)."""

    model_config = ConfigDict(extra="forbid")
    decision_id: UUID | None = None
    organization_id: Annotated[str | None, bounded(64)] = None
    domain: Annotated[str | None, bounded(200)] = None
    domain_name: Annotated[str | None, bounded(200)] = None
    intent: Annotated[str | None, bounded(200)] = None
    stage: Annotated[str | None, bounded(64)] = None
    actor: Annotated[str, Field(min_length=1), bounded(512)]
    target: Annotated[str, Field(min_length=1), bounded(2048)]
    context: Annotated[dict[str, Any], storable("context")] = Field(default_factory=dict)
    scope: ScopeBody = Field(default_factory=lambda: ScopeBody())
    timestamp: Timestamp | None = Field(
        None, description="RFC 3339 with an offset; stored in UTC; 1970-01-01 … 9999-12-30 (UTC)"
    )
    unstructured_context: Annotated[str | None, bounded(MAX_UNSTRUCTURED)] = None
    approval_id: UUID | None = Field(
        None,
        description="A resume: the approval this stage proceeds with (docs/approvals.md). Re-evaluated on the current "
        "governance and checked against the approved action; used once.",
    )


class OutcomeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    stage: Stage | None = None
    outcome: Annotated[str, Field(min_length=1), bounded(200)] = "reported"
    success: bool | None = None
    details: Annotated[dict[str, Any], storable("details")] = Field(default_factory=dict)


def to_request(body: DecisionBody, received_at: datetime, token_id: UUID | None = None) -> DecisionRequest:
    """The service's request; IngestError("attribution") when the attribution fields contradict each other."""
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
    if problems:
        raise IngestError("attribution", "decision attribution is contradictory; nothing was stored", problems)
    raw = body.model_dump(mode="json")
    if raw.get("approval_id") is None:  # absent and null hash alike, and like bodies stored before approvals existed
        raw.pop("approval_id", None)
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
        token_id=token_id,
        approval_id=body.approval_id,
    )


def post_json_body(path: str, **options: Any) -> Callable[[Endpoint], Endpoint]:
    """Register a `POST (request, body)` route answered by `JsonBodyRoute` (the ingestion routes: no dependency
    machinery on the hot path; the OpenAPI document as for any route)."""

    def register(endpoint: Endpoint) -> Endpoint:
        router.add_api_route(
            path, endpoint, methods=["POST"], dependencies=JSON_BODY, route_class_override=JsonBodyRoute, **options
        )
        return endpoint

    return register


@post_json_body(DECISION_PATHS[0], tags=["decisions"], status_code=201, **doc.decision)
@post_json_body(DECISION_PATHS[1], include_in_schema=False, status_code=201, **doc.decision)
async def post_decision(request: Request, body: DecisionBody) -> JSONResponse:
    """Ingest a decision: resolve → validate → evaluate → store decision, verdict and timeline in one transaction.

    201 with the verdict and its explanation; 200 with the stored verdict for an identical re-send; 409 when the
    same (decision_id, stage) was sent with a different body; 422 when attribution is missing, malformed or
    unknown (answered with verdict OBSERVE and recorded in the rejection log) or the body or its signals are
    invalid (nothing stored); 400 when the body is not JSON; 413 above 256 KiB; 415 when it is not sent as JSON;
    503 when the database does not answer in time (send it again: a decision is stored at most once)."""
    known_parameters(request, frozenset())
    s = state(request)
    _not_migrating(s)
    try:
        result = await _submit(request, s, body, datetime.now(UTC))
    except IngestError as exc:
        if exc.kind == "attribution":
            return await reject_attribution(request, body.model_dump(mode="json"), exc)
        raise
    return JSONResponse(result.body(), status_code=201 if result.created else 200)


async def _submit(request: Request, s: ServerState, body: DecisionBody, received_at: datetime) -> IngestResult:
    """Check one decision against the token and store it (the single route's and each batch item's path)."""
    p = principal(request)
    req = to_request(body, received_at, p.token_id)
    # Well-formed attribution outside the token is 403; malformed attribution is the service's 422 (§3.1).
    if (_is_uuid(req.organization_id) and not p.sees_organization(str(req.organization_id))) or (
        req.domain is not None and is_slug(req.domain) and p.domains is not None and req.domain not in p.domains
    ):
        raise forbidden()
    return await service.submit(s.governance, req, s.pool, s.writer, received_at=received_at, stages=s.stages)


MAX_BATCH = 1000


class BatchBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    decisions: list[Any] = Field(
        min_length=1,
        max_length=MAX_BATCH,
        description="1 to 1,000 decisions, each a body as `POST /api/decisions` takes; each is checked, stored and "
        "answered on its own",
    )


@post_json_body(BATCH_PATHS[0], tags=["decisions"], status_code=200, **doc.batch)
@post_json_body(BATCH_PATHS[1], include_in_schema=False, status_code=200, **doc.batch)
async def post_decision_batch(request: Request, body: BatchBody) -> JSONResponse:
    """Ingest up to 1,000 decisions in one request, for agents and gateways that record many (`executed` stages).

    200 with one result per decision, in order: the status and the body `POST /api/decisions` would have answered
    for it alone. Each decision is atomic and idempotent on its own (a re-sent one answers 200 with the stored
    verdict), and a bad one fails alone; the valid ones share the database's transactions (group commit). 413 above
    16 MiB; 422 when `decisions` is missing, empty or longer than 1,000."""
    known_parameters(request, frozenset())
    s = state(request)
    _not_migrating(s)
    received_at = datetime.now(UTC)
    answers = await asyncio.gather(*(_batch_item(request, s, item, received_at) for item in body.decisions))
    results = [{"status": status, **answer} for status, answer in answers]
    stored = sum(1 for status, _ in answers if status == 201)
    failed = sum(1 for status, _ in answers if status >= 400)
    return JSONResponse({"results": results, "stored": stored, "failed": failed})


async def _batch_item(request: Request, s: ServerState, item: Any, received_at: datetime) -> tuple[int, Row]:
    """One decision of a batch: what `post_decision` answers for it, as (status, body); never raises for it."""
    if not isinstance(item, dict):
        return 422, invalid_request([Problem("body", "not_an_object", "a decision is a JSON object")])
    try:
        body = DecisionBody.model_validate(item)
    except ValidationError as exc:
        problems = validation_problems(exc.errors()) or [Problem("body", "invalid", "the decision is not valid")]
        if is_attribution_problem(problems):
            return 422, await rejection(request, item, attribution_error(problems))
        return 422, invalid_request(problems)
    try:
        result = await _submit(request, s, body, received_at)
    except IngestError as exc:
        if exc.kind == "attribution":
            return 422, await rejection(request, body.model_dump(mode="json"), exc)
        return ingest_answer(exc)
    except ApiError as exc:
        return exc.status, error_body(exc.code, exc.message, exc.problems)
    except psycopg.Error as exc:
        return database_answer(exc)
    except DatabaseUnavailable as exc:
        return 503, error_body("unavailable", str(exc))
    return (201 if result.created else 200), result.body()


def _is_uuid(text: str | None) -> bool:
    try:
        UUID(str(text))
    except ValueError:
        return False
    return text is not None


def _not_migrating(s: ServerState) -> None:
    if s.migration_holder is not None:
        pid, app = s.migration_holder
        raise ApiError(503, "migrating", f"a schema migration is running (pid {pid}, {app}); retry when it is done")


OUTCOME_PATH = "/api/decisions/{decision_id}/outcome"


@router.post(OUTCOME_PATH, tags=["decisions"], status_code=201, dependencies=JSON_BODY, **doc.outcome)
@router.post(
    "/api/v1" + OUTCOME_PATH[4:], include_in_schema=False, status_code=201, dependencies=JSON_BODY, **doc.outcome
)
async def post_outcome(request: Request, decision_id: UUID, body: OutcomeBody) -> JSONResponse:
    """Record what happened after the verdict (an `outcome reported` timeline entry)."""
    known_parameters(request, frozenset())
    s = state(request)
    _not_migrating(s)
    await _decision_rows(request, decision_id)  # 404 unless the token may see it
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
    since: Annotated[Timestamp | None, Query(description="RFC 3339 with an offset")] = None,
    until: Annotated[Timestamp | None, Query(description="RFC 3339 with an offset")] = None,
) -> q.DecisionFilter:
    """The filters shared by the decision and verdict lists (a FastAPI dependency)."""
    known_parameters(request, LIST_PARAMS)
    f = q.DecisionFilter(
        organization_id=scoped_organization(request, organization_id),
        domain=scoped_domain(request, domain, domain_name),
        verdict=verdict,
        intent=intent,
        stage=stage,
        agent=agent,
        service=service,
        actor=actor,
        target=target,
        since=since,
        until=until,
    )
    return restrict(request, f)


ListFilter = Annotated[q.DecisionFilter, Depends(list_filter)]


class PageQuery(Protocol):
    """A db/decisions.py list: one keyset page of rows under a filter."""

    def __call__(
        self, conn: AsyncConnection[Row], f: q.DecisionFilter, *, limit: int, cursor: q.Cursor | None
    ) -> Awaitable[q.Page]: ...


@router.get("/api/decisions", tags=["decisions"], **doc.page)
@router.get("/api/v1/decisions", include_in_schema=False, **doc.page)
async def list_decisions(
    request: Request, f: ListFilter, limit: Limit = 50, cursor: CursorParam = None
) -> JSONResponse:
    """Decisions, newest first, each with its verdict summary. Filters combine with AND."""
    return await _page(request, q.list_decisions, f, limit, cursor)


@router.get("/api/verdicts", tags=["verdicts"], **doc.page)
@router.get("/api/v1/verdicts", include_in_schema=False, **doc.page)
async def list_verdicts(request: Request, f: ListFilter, limit: Limit = 50, cursor: CursorParam = None) -> JSONResponse:
    """Verdicts, newest first, with the decision they answer. Same filters as decisions."""
    return await _page(request, q.list_verdicts, f, limit, cursor)


async def _page(
    request: Request, query: PageQuery, f: q.DecisionFilter, limit: int, cursor: str | None
) -> JSONResponse:
    """One page of `query` under the filter `f`: its items, and the cursor of the next page."""
    after = q.Cursor.decode(cursor) if cursor else None
    async with state(request).pool.connection() as conn:
        page = await query(conn, f, limit=limit, cursor=after)
    return JSONResponse({"items": page.items, "next_cursor": page.next_cursor, "limit": limit})


SCOPED = frozenset({"organization_id", "domain", "domain_name"})


async def _decision_rows(request: Request, decision_id: UUID) -> list[Row]:
    async with state(request).pool.connection() as conn:
        rows = await q.get_decision(conn, decision_id)
    in_scope(request, rows, f"decision {decision_id}")
    return rows


def in_scope(request: Request, rows: list[Row], what: str, *, decisions: bool = True) -> None:
    """404 unless the thing exists and the token may see it (the same answer for both) — and, when the caller
    names an organization or domain, is in it (403 when the token may not use that organization or domain)."""
    org = request.query_params.get("organization_id")
    dom = request.query_params.get("domain") or request.query_params.get("domain_name")
    if org is not None and not principal(request).sees_organization(org):
        raise forbidden()
    check_domain(request, dom)
    rows = visible_rows(request, rows, decisions=decisions)
    visible = [
        r
        for r in rows
        if (org is None or str(r["organization_id"]) == org.lower()) and (dom is None or r["domain"] == dom)
    ]
    if not visible:
        raise ApiError(404, "not_found", f"{what} does not exist" + (" in that organization or domain" if rows else ""))


@router.get("/api/decisions/{decision_id}", tags=["decisions"], **doc.decision_detail)
@router.get("/api/v1/decisions/{decision_id}", include_in_schema=False, **doc.decision_detail)
async def get_decision(
    request: Request,
    decision_id: Annotated[
        str,
        PathParam(
            max_length=64,
            description="the decision id, or a unique prefix of it (at least 6 hex digits, as the UI and the demo "
            "show them): answered with a redirect to the whole id, or 409 listing the matches",
        ),
    ],
) -> Response:
    """A decision with every stage it went through (each with its verdict summary and context)."""
    known_parameters(request, SCOPED)
    try:
        key = UUID(decision_id)
    except ValueError:
        whole = await _unique_prefix(request, decision_id)
        query = f"?{request.url.query}" if request.url.query else ""
        location = f"{request.url.path.rsplit('/', 1)[0]}/{whole}{query}"
        body = {"decision_id": str(whole), "location": location}
        return JSONResponse(body, status_code=307, headers={"location": location})
    rows = await _decision_rows(request, key)
    return JSONResponse({"decision_id": str(key), "stages": rows, **rows[-1]})


async def _unique_prefix(request: Request, typed: str) -> UUID:
    """The one decision this token may see whose id starts with `typed`; 422 not a prefix, 404 none, 409 several."""
    digits = typed.strip().lower().replace("-", "")
    try:
        low, high = shared_prefix_range(typed)
    except MandateError:
        raise ApiError(
            422,
            "invalid_request",
            f"not a decision id: give the whole id or its first {MIN_ID_PREFIX} or more hex digits",
            [Problem("decision_id", "invalid", "a UUID, or a prefix of at least 6 hex digits")],
        ) from None
    found: list[UUID] = []
    async with state(request).pool.connection() as conn:
        for key in await q.decision_ids_between(conn, low, high, limit=(SHOWN_CANDIDATES + 1) * 4):
            if visible_rows(request, await q.get_decision(conn, key), decisions=True):
                found.append(key)
            if len(found) > SHOWN_CANDIDATES:
                break
    if not found:
        raise ApiError(404, "not_found", f"no decision id starts with {digits!r}")
    if len(found) > 1:
        more = " (and more)" if len(found) > SHOWN_CANDIDATES else ""
        raise ApiError(
            409,
            "ambiguous_id",
            f"several decision ids start with {digits!r}{more}: type more of the id",
            [Problem("decision_id", "candidate", str(key)) for key in found[:SHOWN_CANDIDATES]],
        )
    return found[0]


@router.get("/api/decisions/{decision_id}/verdict", tags=["decisions"], **doc.verdict_detail)
@router.get("/api/v1/decisions/{decision_id}/verdict", include_in_schema=False, **doc.verdict_detail)
async def get_verdict(request: Request, decision_id: UUID) -> JSONResponse:
    """The decision's latest verdict with its full structured explanation; `verdicts` lists every stage's."""
    known_parameters(request, SCOPED)
    async with state(request).pool.connection() as conn:
        rows = await q.get_verdicts(conn, decision_id)
    in_scope(request, rows, f"decision {decision_id}")
    governance = state(request).governance
    rows = [{**row, "flips": service.stored_flips(governance, row)} for row in rows]  # what would change each
    return JSONResponse({**rows[-1], "verdicts": rows})


@router.get("/api/decisions/{decision_id}/timeline", tags=["decisions"], **doc.timeline)
@router.get("/api/v1/decisions/{decision_id}/timeline", include_in_schema=False, **doc.timeline)
async def get_timeline(request: Request, decision_id: UUID) -> JSONResponse:
    """The append-only story of a decision, in order: received, evaluated, outcomes, failures."""
    known_parameters(request, SCOPED)
    await _decision_rows(request, decision_id)
    async with state(request).pool.connection() as conn:
        rows = await q.get_timeline(conn, decision_id)
    return JSONResponse({"decision_id": str(decision_id), "entries": rows})


@router.get("/api/decisions/{decision_id}/replay", tags=["decisions"], **doc.replay)
@router.get("/api/v1/decisions/{decision_id}/replay", include_in_schema=False, **doc.replay)
async def replay_decision(request: Request, decision_id: UUID) -> JSONResponse:
    """Re-evaluate a stored decision with its stored spec version, signals and snapshot; report whether the verdict
    and the explanation are identical."""
    known_parameters(request, frozenset())
    await _decision_rows(request, decision_id)
    s = state(request)
    async with s.pool.connection() as conn:
        results = await replay(conn, s.governance, decision_id)
    return JSONResponse(
        {
            "decision_id": str(decision_id),
            "identical": all(r.identical for r in results),
            "replayable": all(r.replayable for r in results),
            "stages": [r.to_dict() for r in results],
        }
    )
