"""The approvals API (docs/approvals.md): the queue, one request (with long-poll), its event stream, approve /
reject / withdraw, and findings.

    GET  /api/approvals                      requests of the token's domains, oldest first (?state=pending …)
    GET  /api/approvals/{id}?wait=30         one request; with `wait`, answered when it leaves `pending` (≤ 60 s)
    GET  /api/approvals/{id}/events          Server-Sent Events: the request now, then at every change, until it ends
    POST /api/approvals/{id}/approve         {"requirement": "dba-approval", "reason": "…"}   (approver, admin)
    POST /api/approvals/{id}/reject          {"reason": "…"}                                   (approver, admin)
    POST /api/approvals/{id}/withdraw        {"reason": "…"}                    (the agent that sent it, admin)
    GET  /api/findings                       executed stages no ALLOW or approval covered, newest first

An approval of another domain is 404 exactly like one that does not exist (web/access.py).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Literal
from uuid import UUID

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict

from mandate import approval_workflow as workflow
from mandate.approvals.state import ENDINGS, Approval, Refused, State
from mandate.db import approvals as q
from mandate.db.decisions import Cursor
from mandate.web import doc
from mandate.web.access import check_domain, organization_for, principal
from mandate.web.errors import ApiError, JSONResponse
from mandate.web.inputs import bounded, check_parameters, require_json
from mandate.web.state import ServerState

router = APIRouter(dependencies=[Depends(check_parameters)])
JSON_BODY = [Depends(require_json)]
MAX_WAIT_S = 60.0
STREAM_S = 300.0
StateName = Literal["pending", "approved", "rejected", "withdrawn", "expired", "consumed"]


class Resolution(BaseModel):
    model_config = ConfigDict(extra="forbid")
    requirement: Annotated[str | None, bounded(200)] = None
    reason: Annotated[str | None, bounded(2000)] = None


class Withdrawal(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Annotated[str | None, bounded(2000)] = None


def _state(request: Request) -> ServerState:
    s: ServerState = request.app.state.mandate
    return s


def _now() -> datetime:
    return datetime.now(UTC)


def _cursor(text: str | None) -> Cursor | None:
    return Cursor.decode(text) if text else None


@router.get("/api/approvals", tags=["approvals"], **doc.approvals)
async def list_approvals(
    request: Request,
    organization_id: UUID | None = None,
    domain: Annotated[str | None, Query(max_length=200)] = None,
    state: StateName | None = "pending",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> JSONResponse:
    """Approval requests of the token's domains, oldest first (the queue's order); `state` defaults to pending."""
    p = principal(request)
    org = organization_for(request, organization_id)
    check_domain(request, domain)
    now = _now()
    async with _state(request).pool.connection() as conn:
        found, next_cursor = await q.list_requests(
            conn,
            organization_id=org,
            domains=None if p.domains is None else sorted(p.domains),
            domain=domain,
            token_id=p.own_decisions_only,
            state=state,
            now=now,
            limit=limit,
            cursor=_cursor(cursor),
        )
    items = [a.to_dict(now) for a in found if workflow.visible(p, a)]
    return JSONResponse({"items": items, "next_cursor": next_cursor, "limit": limit})


async def _get(request: Request, approval_id: UUID) -> Approval:
    async with _state(request).pool.connection() as conn:
        try:
            return await workflow.get(conn, principal(request), approval_id)
        except workflow.NotFound as exc:
            raise ApiError(404, "not_found", str(exc)) from None


@router.get("/api/approvals/{approval_id}", tags=["approvals"], **doc.approval)
async def get_approval(
    request: Request,
    approval_id: UUID,
    wait: Annotated[
        float, Query(ge=0, le=MAX_WAIT_S, description="seconds to wait for it to leave `pending` (long-poll)")
    ] = 0,
) -> JSONResponse:
    """One approval request with its state now. With `wait`, the answer comes when it is no longer pending, or when
    `wait` seconds have passed (then it is still pending) — one request per waiting agent."""
    s = _state(request)
    deadline = asyncio.get_running_loop().time() + wait
    while True:
        changed = s.approval_event(str(approval_id))
        approval = await _get(request, approval_id)
        now = _now()
        left = deadline - asyncio.get_running_loop().time()
        if approval.state(now) is not State.PENDING or left <= 0:
            return JSONResponse(approval.to_dict(now))
        if approval.expires_at is not None:  # it reads as expired from then on, whether or not anyone writes it
            left = min(left, max(0.0, (approval.expires_at - now).total_seconds()) + 0.01)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(left):
                await changed.wait()


@router.get("/api/approvals/{approval_id}/events", tags=["approvals"], responses=doc.approval["responses"])
async def approval_events(request: Request, approval_id: UUID) -> StreamingResponse:
    """Server-Sent Events for UIs: `event: approval` with the request now, then at every change, until it ends
    (rejected, withdrawn, expired, consumed) or five minutes pass; a comment every 15 s keeps proxies open."""
    s = _state(request)
    first = await _get(request, approval_id)

    async def stream() -> AsyncIterator[bytes]:
        approval: Approval | None = first
        end = asyncio.get_running_loop().time() + STREAM_S
        last: bytes | None = None
        while True:
            changed = s.approval_event(str(approval_id))
            if approval is None:
                approval = await _get(request, approval_id)
            now = _now()
            body = orjson.dumps(approval.to_dict(now))
            if body != last:
                yield b"event: approval\ndata: " + body + b"\n\n"
                last = body
            current = approval.state(now)
            left = end - asyncio.get_running_loop().time()
            if current in ENDINGS or current is State.CONSUMED or left <= 0 or await request.is_disconnected():
                return
            timeout = min(left, 15.0)
            if current is State.PENDING and approval.expires_at is not None:
                timeout = min(timeout, max(0.0, (approval.expires_at - now).total_seconds()) + 0.01)
            try:
                async with asyncio.timeout(timeout):
                    await changed.wait()
            except TimeoutError:
                yield b": keep-alive\n\n"
            approval = None

    return StreamingResponse(
        stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    )


async def _resolve(
    request: Request, approval_id: UUID, kind: str, requirement: str | None, reason: str | None
) -> JSONResponse:
    s = _state(request)
    if s.migration_holder is not None:
        raise ApiError(503, "migrating", "a schema migration is running; retry when it is done")
    now = _now()
    async with s.pool.connection() as conn:
        try:
            approval = await workflow.resolve(
                conn, principal(request), approval_id, kind=kind, requirement=requirement, reason=reason, now=now
            )
        except workflow.NotFound as exc:
            raise ApiError(404, "not_found", str(exc)) from None
        except Refused as exc:
            raise ApiError(409, exc.code, exc.message) from None
    return JSONResponse(approval.to_dict(now), status_code=201)


@router.post(
    "/api/approvals/{approval_id}/approve",
    tags=["approvals"],
    status_code=201,
    dependencies=JSON_BODY,
    **doc.approval_action,
)
async def approve(request: Request, approval_id: UUID, body: Resolution) -> JSONResponse:
    """Satisfy one requirement (name it when there are several). Approved once every requirement is, each by a
    different approver; 409 when it is not pending (expired says so: expired is not rejected)."""
    return await _resolve(request, approval_id, "approved", body.requirement, body.reason)


@router.post(
    "/api/approvals/{approval_id}/reject",
    tags=["approvals"],
    status_code=201,
    dependencies=JSON_BODY,
    **doc.approval_action,
)
async def reject(request: Request, approval_id: UUID, body: Withdrawal) -> JSONResponse:
    """Reject the request (only while pending). The agent must not proceed; a resume with it is refused."""
    return await _resolve(request, approval_id, "rejected", None, body.reason)


@router.post(
    "/api/approvals/{approval_id}/withdraw",
    tags=["approvals"],
    status_code=201,
    dependencies=JSON_BODY,
    **doc.approval_action,
)
async def withdraw(request: Request, approval_id: UUID, body: Withdrawal) -> JSONResponse:
    """The agent no longer wants to act (while pending, or approved and not yet used)."""
    return await _resolve(request, approval_id, "withdrawn", None, body.reason)


@router.get("/api/findings", tags=["approvals"], **doc.findings)
async def list_findings(
    request: Request,
    organization_id: UUID | None = None,
    domain: Annotated[str | None, Query(max_length=200)] = None,
    decision_id: UUID | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> JSONResponse:
    """Executed stages that no ALLOW or approval covered, or that did another action than the one allowed."""
    p = principal(request)
    org = organization_for(request, organization_id)
    check_domain(request, domain)
    async with _state(request).pool.connection() as conn:
        rows, next_cursor = await q.list_findings(
            conn,
            organization_id=org,
            domains=None if p.domains is None else sorted(p.domains),
            domain=domain,
            decision_id=decision_id,
            token_id=p.own_decisions_only,
            limit=limit,
            cursor=_cursor(cursor),
        )
    return JSONResponse({"items": rows, "next_cursor": next_cursor, "limit": limit})
