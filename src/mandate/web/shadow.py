"""`POST /api/shadow`: evaluate a candidate governance bundle against the stored history (docs/shadow.md).

The same evaluation as `mandate shadow`, in the server process (a thread, one worker): nothing is written to
governance tables; a bundle that fails validation is answered 422 with every problem, before any evaluation.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

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


@router.post("/api/shadow", tags=["governance"], dependencies=[Depends(require_json)])
async def shadow_candidate(request: Request, body: ShadowRequest) -> JSONResponse:
    """What the candidate bundle would have decided over the stored decisions of the window, compared with
    today's governance: verdict transitions, groupings, examples, decisions it can no longer evaluate, gates."""
    state: ServerState = request.app.state.mandate
    try:
        bundle = parse_bundle(orjson.dumps(body.bundle).decode(), "bundle", json_syntax=True)
        window = Window(parse_since(body.since), body.organization_id, body.domain, body.scope)
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
