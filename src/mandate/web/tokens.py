"""`GET /api/tokens`: an admin's view of its organization's tokens — names, roles, domains, expiry, revocation.
Never a secret or its hash. Tokens are issued and revoked with `mandate token create|revoke` (docs/security.md)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from mandate.db import tokens as tq
from mandate.web import doc
from mandate.web.access import principal
from mandate.web.errors import JSONResponse
from mandate.web.inputs import check_parameters
from mandate.web.state import ServerState

router = APIRouter(dependencies=[Depends(check_parameters)])


@router.get("/api/tokens", tags=["tokens"], **doc.items)
@router.get("/api/v1/tokens", include_in_schema=False, **doc.items)
async def list_tokens(request: Request) -> JSONResponse:
    """The tokens of the caller's organization, oldest first (admin only)."""
    s: ServerState = request.app.state.mandate
    async with s.pool.connection() as conn:
        rows = await tq.organization_tokens(conn, principal(request).organization_id)
    return JSONResponse({"items": rows})
