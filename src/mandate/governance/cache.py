"""The in-memory governance the ingestion path reads: specs, scopes and compiled snapshots per domain.

Governance rows are immutable (append-only), so a cache is always right about what it holds; it only has to
learn about new rows. Servers LISTEN on `mandate_governance` (migration 009 NOTIFYs on every governance insert)
and reload; ingestion then needs no query but its own write.

Snapshots are compiled when loaded: a snapshot whose policies break a spec's contract is refused here, once, and
never at request time. The active snapshot of a domain is the one with the highest version (never "latest
created_at").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection

from mandate.evaluator import (
    CompiledSnapshot,
    EvaluatorError,
    Scope,
    ScopeIndex,
    Spec,
    compile_snapshot,
)
from mandate.governance.records import policies_from_records, scope_from_record, spec_from_record

Row = dict[str, Any]


@dataclass
class DomainGovernance:
    """Everything needed to evaluate decisions of one (organization, domain)."""

    organization_id: str
    domain: str
    scopes: list[Scope] = field(default_factory=list)
    scope_created: dict[str, datetime] = field(default_factory=dict)
    active_specs: dict[tuple[str, str], Spec] = field(default_factory=dict)  # (intent, stage) -> spec
    snapshot: CompiledSnapshot | None = None
    snapshot_problem: str | None = None  # why the active snapshot could not be loaded
    scope_index: ScopeIndex = field(default_factory=lambda: ScopeIndex(()))


@dataclass
class Governance:
    """A consistent picture of all governance, loaded at one moment."""

    organizations: set[str] = field(default_factory=set)
    domains: dict[tuple[str, str], DomainGovernance] = field(default_factory=dict)
    specs: dict[tuple[str, str], Spec] = field(default_factory=dict)  # (spec_id, version) -> spec, every version
    snapshot_rows: dict[str, Row] = field(default_factory=dict)  # snapshot_id -> row (for replay)

    def domain(self, organization_id: str, domain: str) -> DomainGovernance | None:
        return self.domains.get((organization_id, domain))

    def sole_organization(self) -> str | None:
        return next(iter(self.organizations)) if len(self.organizations) == 1 else None


async def load(conn: AsyncConnection[Row]) -> Governance:
    """Read all governance in one repeatable-read snapshot of the database."""
    g = Governance()
    async with conn.transaction():
        await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        orgs = await (await conn.execute("SELECT organization_id::text AS id FROM mandate.organizations")).fetchall()
        g.organizations = {r["id"] for r in orgs}
        for r in await (
            await conn.execute("SELECT organization_id::text AS organization_id, domain FROM mandate.domains")
        ).fetchall():
            g.domains[(r["organization_id"], r["domain"])] = DomainGovernance(r["organization_id"], r["domain"])
        for r in await (
            await conn.execute(
                """SELECT scope_id, organization_id::text AS organization_id, domain, environment, scope_system,
                          service, agent, tenant, owning_team, created_at FROM mandate.scopes"""
            )
        ).fetchall():
            d = g.domains.get((r["organization_id"], r["domain"]))
            if d is not None:
                d.scopes.append(scope_from_record(r))
                d.scope_created[r["scope_id"]] = r["created_at"]
        for r in await (
            await conn.execute(
                """SELECT spec_id, version, organization_id::text AS organization_id, domain, intent,
                          stage::text AS stage, allowed_verdicts::text[] AS allowed_verdicts, signals, enforcement,
                          current_status FROM mandate.spec_versions ORDER BY created_at, spec_id, version"""
            )
        ).fetchall():
            spec = spec_from_record(r)
            g.specs[(spec.spec_id, spec.version)] = spec
            d = g.domains.get((spec.organization_id, spec.domain))
            if d is not None and r["current_status"] == "active":
                d.active_specs[(spec.intent, spec.stage)] = spec
        active_rows = await (
            await conn.execute(
                """SELECT DISTINCT ON (organization_id, domain) snapshot_id::text AS snapshot_id, version,
                          organization_id::text AS organization_id, domain, policies
                   FROM mandate.policy_snapshots
                   ORDER BY organization_id, domain, version DESC, created_at DESC, snapshot_id DESC"""
            )
        ).fetchall()
    for d in g.domains.values():
        d.scope_index = ScopeIndex(d.scopes)
    for row in active_rows:
        g.snapshot_rows[row["snapshot_id"]] = row
        d = g.domains.get((row["organization_id"], row["domain"]))
        if d is None:
            continue
        try:
            d.snapshot = compile_row(row, specs_for(g, d), d.scopes)
        except EvaluatorError as exc:
            d.snapshot_problem = f"policy snapshot {row['snapshot_id']} (version {row['version']}) is invalid: {exc}"
    return g


def specs_for(g: Governance, d: DomainGovernance) -> list[Spec]:
    """One version per spec_id of the domain to check policies against: the active one, else the newest."""
    chosen: dict[str, Spec] = {}
    for spec in g.specs.values():  # in creation order: later versions overwrite earlier ones
        if spec.organization_id == d.organization_id and spec.domain == d.domain:
            chosen[spec.spec_id] = spec
    for spec in d.active_specs.values():
        chosen[spec.spec_id] = spec
    return list(chosen.values())


def compile_row(row: Row, specs: list[Spec], scopes: list[Scope]) -> CompiledSnapshot:
    return compile_snapshot(
        str(row["snapshot_id"]),
        int(row["version"]),
        str(row["organization_id"]),
        str(row["domain"]),
        policies_from_records(row["policies"]),
        specs,
        scopes,
    )
