"""Governance data: organizations, domains, scopes, specs and policy snapshots — what the API lists, what the
ingestion cache loads, and what an apply reads and writes.

The active snapshot of a domain is its highest version (never "latest created_at"): `ACTIVE_SNAPSHOT_ORDER` is the
one home of that rule, and every query that picks a domain's current snapshot orders by it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from psycopg import AsyncConnection, Connection
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from mandate.governance.cache import Governance, GovernanceRows, build
from mandate.vocabulary import Row

ACTIVE_SNAPSHOT_ORDER = "version DESC, created_at DESC, snapshot_id DESC"
"""The order of a domain's snapshots, the active one first: the highest version (ties, which only legacy data can
hold, broken by the newest row)."""


async def list_organizations(conn: AsyncConnection[Row]) -> list[Row]:
    cur = await conn.execute(
        "SELECT organization_id, name, description, created_at FROM mandate.organizations ORDER BY name"
    )
    return await cur.fetchall()


async def list_domains(conn: AsyncConnection[Row], organization_id: UUID) -> list[Row]:
    cur = await conn.execute(
        """SELECT organization_id, domain, name, description, created_at FROM mandate.domains
           WHERE organization_id = %s ORDER BY domain""",
        [organization_id],
    )
    return await cur.fetchall()


async def list_scopes(conn: AsyncConnection[Row], organization_id: UUID, domain: str | None) -> list[Row]:
    cur = await conn.execute(
        """SELECT scope_id, organization_id, domain, environment, scope_system AS system, service, agent, tenant,
                  owning_team, owner_contact, description, legacy_scope_uuid, created_at
           FROM mandate.scopes
           WHERE organization_id = %s AND (%s::text IS NULL OR domain = %s)
           ORDER BY domain, scope_id""",
        [organization_id, domain, domain],
    )
    return await cur.fetchall()


_SPEC_COLUMNS = """s.spec_id, s.version, s.organization_id, s.domain, s.intent, s.stage::text AS stage,
    s.allowed_verdicts::text[] AS allowed_verdicts, s.signals, s.enforcement, s.current_status AS status,
    s.status AS created_status, s.replaced_by, s.created_at"""


async def list_specs(conn: AsyncConnection[Row], organization_id: UUID, domain: str | None) -> list[Row]:
    cur = await conn.execute(
        f"""SELECT {_SPEC_COLUMNS} FROM mandate.spec_versions s
            WHERE s.organization_id = %s AND (%s::text IS NULL OR s.domain = %s)
            ORDER BY s.domain, s.spec_id, s.created_at, s.version""",  # noqa: S608 - constant column list
        [organization_id, domain, domain],
    )
    return await cur.fetchall()


async def get_spec_versions(conn: AsyncConnection[Row], spec_id: str, organization_id: UUID) -> list[Row]:
    cur = await conn.execute(
        f"""SELECT {_SPEC_COLUMNS} FROM mandate.spec_versions s
            WHERE s.spec_id = %s AND s.organization_id = %s ORDER BY s.created_at, s.version""",  # noqa: S608
        [spec_id, organization_id],
    )
    return await cur.fetchall()


async def spec_status_history(conn: AsyncConnection[Row], spec_id: str) -> list[Row]:
    cur = await conn.execute(
        """SELECT spec_id, version, status, reason, created_at FROM mandate.spec_status_events
           WHERE spec_id = %s ORDER BY event_id""",
        [spec_id],
    )
    return await cur.fetchall()


async def list_spec_status_events(conn: AsyncConnection[Row], organization_id: UUID, domain: str | None) -> list[Row]:
    """Every status change of the specs of an organization (optionally one domain), oldest first per spec."""
    cur = await conn.execute(
        """SELECT e.event_id, e.spec_id, e.version, e.status, e.reason, e.created_at, s.domain
           FROM mandate.spec_status_events e
           JOIN mandate.mandate_specs s ON s.spec_id = e.spec_id AND s.version = e.version
           WHERE s.organization_id = %s AND (%s::text IS NULL OR s.domain = %s)
           ORDER BY e.spec_id, e.event_id""",
        [organization_id, domain, domain],
    )
    return await cur.fetchall()


async def get_snapshot(conn: AsyncConnection[Row], snapshot_id: UUID) -> Row | None:
    cur = await conn.execute(
        """SELECT snapshot_id, version, organization_id, domain, policies, created_at
           FROM mandate.policy_snapshots WHERE snapshot_id = %s""",
        [snapshot_id],
    )
    return await cur.fetchone()


async def list_snapshots(conn: AsyncConnection[Row], organization_id: UUID, domain: str | None) -> list[Row]:
    cur = await conn.execute(
        f"""SELECT snapshot_id, version, organization_id, domain, jsonb_array_length(policies) AS policy_count,
                  created_at
           FROM mandate.policy_snapshots
           WHERE organization_id = %s AND (%s::text IS NULL OR domain = %s)
           ORDER BY domain, {ACTIVE_SNAPSHOT_ORDER}""",  # noqa: S608 - a constant
        [organization_id, domain, domain],
    )
    return await cur.fetchall()


async def policy_versions(conn: AsyncConnection[Row], organization_id: UUID, domain: str, policy_id: str) -> list[Row]:
    """Every snapshot of a domain, oldest first, with the policy `policy_id` as that snapshot stores it (`policy`
    None when the snapshot does not hold it): a policy's history across snapshots."""
    cur = await conn.execute(
        """SELECT s.snapshot_id, s.version, s.organization_id, s.domain, s.created_at,
                  (SELECT p FROM jsonb_array_elements(s.policies) AS p WHERE p->>'id' = %s LIMIT 1) AS policy
           FROM mandate.policy_snapshots s
           WHERE s.organization_id = %s AND s.domain = %s
           ORDER BY s.version, s.created_at""",
        [policy_id, organization_id, domain],
    )
    return await cur.fetchall()


async def policies_of_scope(conn: AsyncConnection[Row], organization_id: UUID, domain: str, scope_id: str) -> list[Row]:
    """The policies bound to `scope_id` in the domain's newest snapshot, as stored, with that snapshot's id and
    version (none when the domain has no snapshot)."""
    cur = await conn.execute(
        f"""SELECT s.snapshot_id, s.version, p AS policy
           FROM (SELECT snapshot_id, version, policies FROM mandate.policy_snapshots
                 WHERE organization_id = %s AND domain = %s ORDER BY {ACTIVE_SNAPSHOT_ORDER} LIMIT 1) s,
                jsonb_array_elements(s.policies) AS p
           WHERE p->>'scope_id' = %s
           ORDER BY p->>'id'""",  # noqa: S608 - a constant
        [organization_id, domain, scope_id],
    )
    return await cur.fetchall()


async def migration_log(conn: AsyncConnection[Row]) -> list[Row]:
    cur = await conn.execute(
        """SELECT migration_version, name, description, checksum, started_at, finished_at, duration_ms, applied_by,
                  tool_version, baseline, details FROM mandate.migration_log ORDER BY migration_version"""
    )
    return await cur.fetchall()


async def schema_version(conn: AsyncConnection[Row]) -> int | None:
    """The highest migration recorded in `migration_log` (None on an empty log)."""
    row = await (await conn.execute("SELECT max(migration_version) AS v FROM mandate.migration_log")).fetchone()
    return None if row is None else row["v"]


# What the ingestion cache loads ----------------------------------------------------------------------------------

_SCOPE_COLUMNS = """scope_id, organization_id::text AS organization_id, domain, environment, scope_system, service,
    agent, tenant, owning_team"""
_SPEC_ROW = """spec_id, version, organization_id::text AS organization_id, domain, intent, stage::text AS stage,
    allowed_verdicts::text[] AS allowed_verdicts, signals, enforcement, current_status"""
_ACTIVE_SNAPSHOTS = f"""SELECT DISTINCT ON (organization_id, domain) snapshot_id::text AS snapshot_id, version,
           organization_id::text AS organization_id, domain, policies
    FROM mandate.policy_snapshots {{where}}
    ORDER BY organization_id, domain, {ACTIVE_SNAPSHOT_ORDER}"""  # noqa: S608 - constants

_GOVERNANCE = (
    "SELECT organization_id::text AS id FROM mandate.organizations",
    "SELECT organization_id::text AS organization_id, domain FROM mandate.domains",
    f"SELECT {_SCOPE_COLUMNS} FROM mandate.scopes",  # noqa: S608 - constants
    f"SELECT {_SPEC_ROW} FROM mandate.spec_versions ORDER BY created_at, spec_id, version",  # noqa: S608 - constants
    _ACTIVE_SNAPSHOTS.format(where=""),
)


async def load_governance(conn: AsyncConnection[Row]) -> Governance:
    """All governance, read in one repeatable-read snapshot of the database and built (`cache.build`). Never fails
    on what a row holds."""
    async with conn.transaction():
        await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        rows = [await (await conn.execute(query)).fetchall() for query in _GOVERNANCE]
    return build(*rows)


def governance_rows(conn: Connection[Any]) -> GovernanceRows:
    """The rows `load_governance` builds from, from a synchronous connection, in the caller's transaction if any."""
    with conn.cursor(row_factory=dict_row) as cur:
        orgs, domains, scopes, specs, snapshots = (cur.execute(query).fetchall() for query in _GOVERNANCE)
    return orgs, domains, scopes, specs, snapshots


# What an apply reads and writes ----------------------------------------------------------------------------------

_APPLY_LOCK = 0x4D414E44_41505059  # pg_advisory_xact_lock key: one apply at a time ("MANDAPPY")

StoredRows = tuple[list[Row], list[Row], list[Row], list[Row], list[Row], list[Row]]
"""Organizations, domains, scopes, specs, the active snapshot of each domain, and the snapshot versions asked for."""


def lock_applies(conn: Connection[Any]) -> None:
    """Wait for, then hold until the transaction ends, the right to apply: one apply at a time."""
    conn.execute("SELECT pg_advisory_xact_lock(%s)", [_APPLY_LOCK])


def check_deferred(conn: Connection[Any]) -> None:
    """Run now the deferred constraint checks that a commit of the transaction would run."""
    conn.execute("SET CONSTRAINTS ALL IMMEDIATE")


def stored_rows(
    conn: Connection[Any],
    *,
    organization_ids: Sequence[str],
    names: Sequence[str],
    scope_ids: Sequence[str],
    spec_ids: Sequence[str],
    snapshot_versions: Sequence[tuple[str, str, int]],
) -> StoredRows:
    """The governance of `organization_ids` (and of the organizations called `names`), the scopes and specs named by
    id wherever they are, and the snapshot versions (organization_id, domain, version) named."""
    orgs = list(organization_ids)
    with conn.cursor(row_factory=dict_row) as cur:
        organizations = cur.execute(
            """SELECT organization_id::text AS organization_id, name, description FROM mandate.organizations
               WHERE organization_id = ANY(%s::uuid[]) OR name = ANY(%s::text[])""",
            [orgs, list(names)],
        ).fetchall()
        domains = cur.execute(
            """SELECT organization_id::text AS organization_id, domain, name, description FROM mandate.domains
               WHERE organization_id = ANY(%s::uuid[])""",
            [orgs],
        ).fetchall()
        scopes = cur.execute(
            f"""SELECT {_SCOPE_COLUMNS}, owner_contact, description
               FROM mandate.scopes WHERE organization_id = ANY(%s::uuid[]) OR scope_id = ANY(%s::text[])""",  # noqa: S608 - constants
            [orgs, list(scope_ids)],
        ).fetchall()
        specs = cur.execute(
            f"""SELECT {_SPEC_ROW}
               FROM mandate.spec_versions WHERE organization_id = ANY(%s::uuid[]) OR spec_id = ANY(%s::text[])
               ORDER BY created_at, spec_id, version""",  # noqa: S608 - constants
            [orgs, list(spec_ids)],
        ).fetchall()
        latest = cur.execute(_ACTIVE_SNAPSHOTS.format(where="WHERE organization_id = ANY(%s::uuid[])"), [orgs])
        latest_rows = latest.fetchall()
        versions = cur.execute(
            """SELECT DISTINCT ON (s.organization_id, s.domain, s.version) s.snapshot_id::text AS snapshot_id,
                      s.version, s.organization_id::text AS organization_id, s.domain, s.policies
               FROM mandate.policy_snapshots s
               JOIN unnest(%s::uuid[], %s::text[], %s::int[]) AS k(organization_id, domain, version)
                 ON s.organization_id = k.organization_id AND s.domain = k.domain AND s.version = k.version
               ORDER BY s.organization_id, s.domain, s.version, s.created_at DESC, s.snapshot_id DESC""",
            [[n[0] for n in snapshot_versions], [n[1] for n in snapshot_versions], [n[2] for n in snapshot_versions]],
        ).fetchall()
    return organizations, domains, scopes, specs, latest_rows, versions


def insert_governance(
    conn: Connection[Any],
    *,
    organizations: Sequence[Row] = (),
    domains: Sequence[Row] = (),
    scopes: Sequence[Row] = (),
    specs: Sequence[Row] = (),
    status_events: Sequence[Row] = (),
    snapshots: Sequence[Row] = (),
) -> None:
    """Insert governance rows, in dependency order. The caller owns the transaction."""
    with conn.cursor() as cur:
        if organizations:
            cur.executemany(
                """INSERT INTO mandate.organizations (organization_id, name, description)
                   VALUES (%(organization_id)s, %(name)s, %(description)s)""",
                organizations,
            )
        if domains:
            cur.executemany(
                """INSERT INTO mandate.domains (organization_id, domain, name, description)
                   VALUES (%(organization_id)s, %(domain)s, %(name)s, %(description)s)""",
                domains,
            )
        if scopes:
            cur.executemany(
                """INSERT INTO mandate.scopes (scope_id, organization_id, domain, environment, scope_system, service,
                                               agent, tenant, owning_team, owner_contact, description)
                   VALUES (%(scope_id)s, %(organization_id)s, %(domain)s, %(environment)s, %(scope_system)s,
                           %(service)s, %(agent)s, %(tenant)s, %(owning_team)s, %(owner_contact)s, %(description)s)""",
                scopes,
            )
        if specs:
            cur.executemany(
                """INSERT INTO mandate.mandate_specs (spec_id, version, organization_id, domain, intent, stage,
                                                      allowed_verdicts, signals, enforcement, status, replaced_by)
                   VALUES (%(spec_id)s, %(version)s, %(organization_id)s, %(domain)s, %(intent)s,
                           %(stage)s::mandate.stage, %(allowed_verdicts)s::mandate.verdict[], %(signals)s,
                           %(enforcement)s, %(status)s, %(replaced_by)s)""",
                [{**row, "signals": Jsonb(row["signals"]), "enforcement": Jsonb(row["enforcement"])} for row in specs],
            )
        if status_events:
            cur.executemany(
                """INSERT INTO mandate.spec_status_events (spec_id, version, status, reason)
                   VALUES (%(spec_id)s, %(version)s, %(status)s, %(reason)s)""",
                status_events,
            )
        if snapshots:
            cur.executemany(
                """INSERT INTO mandate.policy_snapshots (snapshot_id, version, policies, organization_id, domain)
                   VALUES (%(snapshot_id)s, %(version)s, %(policies)s, %(organization_id)s, %(domain)s)""",
                [{**row, "policies": Jsonb(row["policies"])} for row in snapshots],
            )
