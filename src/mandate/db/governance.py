"""Read queries over governance data: organizations, domains, scopes, specs and policy snapshots."""

from __future__ import annotations

from uuid import UUID

from psycopg import AsyncConnection

from mandate.vocabulary import Row


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
        """SELECT snapshot_id, version, organization_id, domain, jsonb_array_length(policies) AS policy_count,
                  created_at
           FROM mandate.policy_snapshots
           WHERE organization_id = %s AND (%s::text IS NULL OR domain = %s)
           ORDER BY domain, version DESC, created_at DESC""",
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
        """SELECT s.snapshot_id, s.version, p AS policy
           FROM (SELECT snapshot_id, version, policies FROM mandate.policy_snapshots
                 WHERE organization_id = %s AND domain = %s ORDER BY version DESC, created_at DESC LIMIT 1) s,
                jsonb_array_elements(s.policies) AS p
           WHERE p->>'scope_id' = %s
           ORDER BY p->>'id'""",
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
