"""`POST /api/shadow`: evaluate a candidate governance bundle against the stored history (docs/shadow.md).

The same evaluation as `mandate shadow`, in the server process (a thread, one worker): nothing is written to
governance tables; a bundle that fails validation is answered 422 with every problem, before any evaluation.
Admin tokens only (web/access.py); the window is narrowed to the token's organization and domains, and a bundle
that names another organization is refused (403).
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any
from uuid import UUID

import orjson
from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from mandate.db.history import Window
from mandate.errors import ConfigError
from mandate.governance.bundle import BundleError, parse_bundle
from mandate.service import Problem
from mandate.shadow import gates as gating
from mandate.shadow.commands import parse_since
from mandate.shadow.report import to_json
from mandate.shadow.run import shadow
from mandate.web import access, doc
from mandate.web.errors import ApiError, JSONResponse
from mandate.web.inputs import bounded, check_parameters, require_json, storable
from mandate.web.state import ServerState

router = APIRouter(dependencies=[Depends(check_parameters)])
Short = Annotated[str | None, bounded(200)]


class ShadowRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    bundle: Annotated[dict[str, Any], storable("bundle")] = Field(
        description="The candidate governance bundle, as JSON (the sections of docs/bundles.md)."
    )
    since: Annotated[str, bounded(64)] = Field("30d", description="30d, 12h, 90m, 2w, an ISO 8601 time, or all.")
    organization_id: Short = None
    domain: Short = None
    scope: Short = None
    examples: int = Field(5, ge=0, le=100, description="Examples kept per verdict change.")
    gates: list[gating.Gate] | None = Field(None, description="Publish gates to measure (docs/shadow.md).")


@router.post("/api/shadow", tags=["governance"], dependencies=[Depends(require_json)], **doc.shadow)
async def shadow_candidate(request: Request, body: ShadowRequest) -> JSONResponse:
    """What the candidate bundle would have decided over the stored decisions of the window, compared with
    today's governance: verdict transitions, groupings, examples, decisions it can no longer evaluate, gates."""
    state: ServerState = request.app.state.mandate
    who = access.principal(request)
    organization = access.organization_for(request, _uuid(body.organization_id))
    access.check_domain(request, body.domain)
    try:
        bundle = parse_bundle(orjson.dumps(body.bundle).decode(), "bundle", json_syntax=True)
        if not all(who.sees_organization(org) for org in bundle.organization_ids()):
            raise access.forbidden()  # a candidate may only touch the token's own organization
        window = Window(
            parse_since(body.since),
            None if organization is None else str(organization),
            body.domain,
            body.scope,
            None if who.domains is None else tuple(sorted(who.domains)),
        )
        result = await asyncio.to_thread(shadow, state.database_url, bundle, window, examples=body.examples, workers=1)
    except BundleError as exc:
        problems = [
            Problem(".".join(x for x in ("bundle", p.subject, p.field) if x), "invalid", p.message)
            for p in exc.problems
        ]
        raise ApiError(
            422, "invalid_bundle", "the candidate bundle is refused; nothing was evaluated", problems
        ) from None
    except ConfigError as exc:
        raise ApiError(422, "invalid_window", str(exc), [Problem("since", "invalid", str(exc))]) from None
    checked = gating.check(body.gates, result.tally) if body.gates is not None else None
    return JSONResponse(to_json(result, checked))


def _uuid(text: str | None) -> UUID | None:
    if text is None:
        return None
    try:
        return UUID(text)
    except ValueError:
        raise ApiError(
            422,
            "invalid_window",
            "organization_id must be a UUID",
            [Problem("organization_id", "malformed", "not a UUID")],
        ) from None
