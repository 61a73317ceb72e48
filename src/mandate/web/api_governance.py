"""The JSON API's governance reads: organizations, domains, scopes, specs and policy snapshots, as stored. Like every
route of `web/api.py`, each also answers under `/api/v1/…`, within the caller's token (web/access.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from psycopg import AsyncConnection

from mandate.db import governance as gq
from mandate.governance.in_force import version_in_force
from mandate.vocabulary import Row
from mandate.web import doc
from mandate.web.access import principal, visible_rows
from mandate.web.api import SCOPED, Text, in_scope, known_parameters, scoped_domain, scoped_organization, state
from mandate.web.errors import ApiError, JSONResponse
from mandate.web.inputs import check_parameters

router = APIRouter(dependencies=[Depends(check_parameters)])

ScopedQuery = Callable[[AsyncConnection[Row], UUID, str | None], Awaitable[list[Row]]]
"""A db/governance.py list of an organization's rows, of one domain or all (None)."""


async def _scoped_items(
    request: Request, query: ScopedQuery, organization_id: UUID | None, domain: str | None, domain_name: str | None
) -> JSONResponse:
    """`{"items": [...]}`: the rows of `query` for the organization and domain asked for, those the token may see."""
    known_parameters(request, SCOPED)
    org = scoped_organization(request, organization_id)
    async with state(request).pool.connection() as conn:
        rows = await query(conn, org, scoped_domain(request, domain, domain_name))
    return JSONResponse({"items": visible_rows(request, rows)})


@router.get("/api/organizations", tags=["governance"], **doc.items)
@router.get("/api/v1/organizations", include_in_schema=False, **doc.items)
async def list_organizations(request: Request) -> JSONResponse:
    known_parameters(request, frozenset())
    p = principal(request)
    async with state(request).pool.connection() as conn:
        rows = await gq.list_organizations(conn)
    return JSONResponse({"items": [r for r in rows if p.sees_organization(r["organization_id"])]})


@router.get("/api/domains", tags=["governance"], **doc.items)
@router.get("/api/v1/domains", include_in_schema=False, **doc.items)
async def list_domains(request: Request, organization_id: UUID | None = None) -> JSONResponse:
    """Domains of an organization."""
    known_parameters(request, frozenset({"organization_id"}))
    org = scoped_organization(request, organization_id)
    async with state(request).pool.connection() as conn:
        rows = await gq.list_domains(conn, org)
    return JSONResponse({"organization_id": str(org), "items": visible_rows(request, rows)})


@router.get("/api/scopes", tags=["governance"], **doc.items)
@router.get("/api/v1/scopes", include_in_schema=False, **doc.items)
async def list_scopes(
    request: Request, organization_id: UUID | None = None, domain: Text = None, domain_name: Text = None
) -> JSONResponse:
    """Registered scopes with their owning teams."""
    return await _scoped_items(request, gq.list_scopes, organization_id, domain, domain_name)


@router.get("/api/specs", tags=["governance"], **doc.items)
@router.get("/api/v1/specs", include_in_schema=False, **doc.items)
async def list_specs(
    request: Request, organization_id: UUID | None = None, domain: Text = None, domain_name: Text = None
) -> JSONResponse:
    """Every spec version with its current status."""
    return await _scoped_items(request, gq.list_specs, organization_id, domain, domain_name)


@router.get("/api/specs/{spec_id}", tags=["governance"], **doc.spec_detail)
@router.get("/api/v1/specs/{spec_id}", include_in_schema=False, **doc.spec_detail)
async def get_spec(
    request: Request,
    spec_id: str,
    organization_id: UUID | None = None,
    version: Annotated[str | None, Query(max_length=64)] = None,
    domain: Text = None,
    domain_name: Text = None,
) -> JSONResponse:
    """A spec: the requested version (default: the active one, else the newest), every version, status history."""
    known_parameters(request, SCOPED | {"version"})
    org = scoped_organization(request, organization_id)
    dom = scoped_domain(request, domain, domain_name)
    async with state(request).pool.connection() as conn:
        versions = [v for v in await gq.get_spec_versions(conn, spec_id, org) if dom is None or v["domain"] == dom]
        history = await gq.spec_status_history(conn, spec_id)
    versions = visible_rows(request, versions)
    shown = {(v["spec_id"], v["version"]) for v in versions}
    history = [h for h in history if (h["spec_id"], h["version"]) in shown]
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
        chosen = version_in_force(versions, lambda v: v["status"] == "active")
    return JSONResponse({**chosen, "versions": versions, "status_history": history})


@router.get("/api/policy-snapshots", tags=["governance"], **doc.items)
@router.get("/api/v1/policy-snapshots", include_in_schema=False, **doc.items)
async def list_snapshots(
    request: Request, organization_id: UUID | None = None, domain: Text = None, domain_name: Text = None
) -> JSONResponse:
    """Policy snapshots, highest version first per domain (the first of a domain is the active one)."""
    return await _scoped_items(request, gq.list_snapshots, organization_id, domain, domain_name)


@router.get("/api/policy-snapshots/{snapshot_id}/policies", tags=["governance"], **doc.snapshot)
@router.get("/api/v1/policy-snapshots/{snapshot_id}/policies", include_in_schema=False, **doc.snapshot)
async def snapshot_policies(request: Request, snapshot_id: UUID) -> JSONResponse:
    """The policies of a snapshot, as stored."""
    known_parameters(request, SCOPED)
    async with state(request).pool.connection() as conn:
        row = await gq.get_snapshot(conn, snapshot_id)
    in_scope(request, [] if row is None else [row], f"policy snapshot {snapshot_id}", decisions=False)
    assert row is not None
    return JSONResponse({**row, "items": row["policies"]})
