"""Exports of the decisions page's filter (same query string as `/`), streamed from one read-only snapshot:

GET /export.csv, /export.json
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response, StreamingResponse

from mandate.db import decisions as q
from mandate.service import Problem
from mandate.vocabulary import Row
from mandate.web.api import state
from mandate.web.errors import JSONResponse, error_body
from mandate.web.inputs import check_parameters
from mandate.web.ui import (
    EXPORT_PAGE,
    Form,
    Place,
    Problems,
    _clock,
    _form,
    _place,
)

router = APIRouter(include_in_schema=False, dependencies=[Depends(check_parameters)])


CSV_COLUMNS = (
    "timestamp",
    "decision_id",
    "stage",
    "organization_id",
    "domain",
    "intent",
    "actor",
    "target",
    "service",
    "agent",
    "environment",
    "system",
    "tenant",
    "verdict",
    "summary",
    "spec_id",
    "spec_version",
    "scope_id",
    "owning_team",
    "snapshot_id",
    "snapshot_version",
    "matched_policy_ids",
    "verdict_id",
    "created_at",
)
ATTRIBUTION_COLUMNS = frozenset({"service", "agent", "environment", "system", "tenant"})


async def _export_filter(request: Request) -> tuple[Place, Form] | Response:
    problems = Problems()
    clock = _clock(request, problems)
    async with state(request).pool.connection() as conn:
        place = await _place(conn, request, problems)
    form = _form(request, place, clock, problems, paging=False)
    if not problems and place.organization is None:
        problems.add("organization_id", "choose an organization: organization_id is required when several exist")
    elif not problems and not place.ready:
        problems.add("domain", "the organization has no domain yet: there is nothing to export")
    if problems:
        body = error_body(
            "invalid_request",
            "the export filter is invalid; fix it on the decisions page",
            [Problem(name, "invalid", message) for name, message in problems.items],
        )
        return JSONResponse(body, status_code=400)
    return place, form


async def _export_pages(request: Request, f: q.DecisionFilter) -> AsyncIterator[list[Row]]:
    """Every decision of the filter, page by page, from one read-only snapshot of the database."""
    async with state(request).pool.connection() as conn, conn.transaction():
        await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        cursor: q.Cursor | None = None
        while True:
            result = await q.list_decisions(conn, f, limit=EXPORT_PAGE, cursor=cursor)
            # Through JSON, exactly as the API serialises its items.
            yield orjson.loads(orjson.dumps(result.items, option=orjson.OPT_NON_STR_KEYS))
            if result.next_cursor is None:
                return
            cursor = q.Cursor.decode(result.next_cursor)


def _export_name(place: Place, extension: str) -> str:
    where = "all-domains" if place.all_domains else place.domain
    return f"mandate-decisions-{where}-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.{extension}"


def _filter_description(place: Place, form: Form) -> Row:
    f = form.filter
    return {
        "organization_id": str(f.organization_id),
        "domain": f.domain,
        "verdict": f.verdict,
        "intent": f.intent,
        "stage": f.stage,
        "service": f.service,
        "agent": f.agent,
        "actor": f.actor,
        "target": f.target,
        "since": None if f.since is None else f.since.isoformat(),
        "until": None if f.until is None else f.until.isoformat(),
    }


@router.get("/export.json")
async def export_json(request: Request) -> Response:
    """`{"filter": {...}, "items": [...], "count": n}`; items exactly as `GET /api/decisions` lists them."""
    parsed = await _export_filter(request)
    if isinstance(parsed, Response):
        return parsed
    place, form = parsed

    async def body() -> AsyncIterator[bytes]:
        yield b'{"filter":' + orjson.dumps(_filter_description(place, form)) + b',"items":['
        count = 0
        async for items in _export_pages(request, form.filter):
            for item in items:
                yield (b"," if count else b"") + orjson.dumps(item)
                count += 1
        yield b'],"count":' + str(count).encode() + b"}"

    return StreamingResponse(
        body(),
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="{_export_name(place, "json")}"'},
    )


def csv_row(item: Row) -> list[str]:
    """One decision as CSV cells: attribution fields as columns, lists joined with ';', null as empty."""
    cells = []
    for name in CSV_COLUMNS:
        value = (item.get("attribution") or {}).get(name) if name in ATTRIBUTION_COLUMNS else item.get(name)
        if value is None:
            cells.append("")
        elif isinstance(value, list):
            cells.append(";".join(str(v) for v in value))
        else:
            cells.append(str(value))
    return cells


@router.get("/export.csv")
async def export_csv(request: Request) -> Response:
    """One row per decision stage, columns CSV_COLUMNS, values verbatim (an audit export alters nothing)."""
    parsed = await _export_filter(request)
    if isinstance(parsed, Response):
        return parsed
    place, form = parsed

    async def body() -> AsyncIterator[bytes]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(CSV_COLUMNS)
        async for items in _export_pages(request, form.filter):
            writer.writerows(csv_row(item) for item in items)
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
        if buffer.tell():
            yield buffer.getvalue().encode()

    return StreamingResponse(
        body(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{_export_name(place, "csv")}"'},
    )
