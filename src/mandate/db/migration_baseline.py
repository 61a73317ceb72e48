"""Row counts and content checksums of the eight historical tables, in either shape (before migration 008, after it).

The queries `migrate/baseline.py` compares: per table, its row key that survives 008 and the content columns common
to both shapes (see that module for what is left out and why). Each row's text is hashed twice (hashtextextended,
seeds 0 and 1) and the hashes summed, so the result does not depend on row order and needs constant memory.
"""

from __future__ import annotations

from typing import Any

import psycopg

#: The historical tables 008 rebuilds (and organizations), in the order they are reported.
TABLES = (
    "organizations",
    "domains",
    "scopes",
    "policy_snapshots",
    "mandate_specs",
    "decision_events",
    "verdict_events",
    "audit_timeline_entries",
)

# Per table: the row key that survives 008 (before, after) and the content columns common to both shapes.
_ROWS: dict[str, tuple[str, str, str]] = {
    "organizations": ("organization_id", "organization_id", "name, description, metadata, created_at"),
    "domains": ("domain_id", "legacy_domain_id", "organization_id, name, description, metadata, created_at"),
    "scopes": (
        "scope_id",
        "legacy_scope_uuid",
        "scope_domain, service, agent, scope_system, environment, tenant, created_at, owning_team, owner_contact, "
        "description",
    ),
    "policy_snapshots": (
        "snapshot_id",
        "snapshot_id",
        "version, (SELECT jsonb_agg(CASE WHEN jsonb_typeof(p) = 'object' THEN p - 'scope_id' ELSE p END ORDER BY o) "
        "FROM jsonb_array_elements(policies) WITH ORDINALITY e(p, o)), created_at",
    ),
    "mandate_specs": (
        "spec_id || '@' || version",
        "spec_id || '@' || version",
        "organization_id, intent, stage, allowed_verdicts, signals, enforcement, status, replaced_by, created_at",
    ),
    "decision_events": (
        "decision_id",
        "decision_id",
        'intent, stage, actor, target, context, scope, "timestamp", created_at, spec_id, spec_version',
    ),
    "verdict_events": (
        "verdict_id",
        "verdict_id",
        'decision_id, snapshot_id, verdict, matched_policy_ids, "timestamp", created_at, spec_id, spec_version, '
        "owning_team",
    ),
    "audit_timeline_entries": (
        "entry_id",
        "entry_id",
        "decision_id, intent, stage, actor, target, summary, "
        "CASE WHEN jsonb_typeof(details) = 'object' THEN details - 'scope_id' ELSE details END, severity, "
        'event_source, authority_level, "timestamp", created_at, spec_id, spec_version',
    ),
}

# The one domain 008 may add (--unattributed-to), left out of the domains count and checksum.
_CREATED_BY_008 = 'metadata @> \'{"created_by": "migration 008"}\''


def _where(table: str) -> str:
    return f" WHERE NOT ({_CREATED_BY_008})" if table == "domains" else ""


def checksum(conn: psycopg.Connection[Any], table: str, *, legacy: bool) -> tuple[int, int, int]:
    """(rows, sum of the rows' hashes with seed 0, with seed 1) of `table` (one of TABLES), in the caller's
    transaction; `legacy`: the table still has its shape before 008."""
    before_key, after_key, columns = _ROWS[table]
    key = before_key if legacy else after_key
    row = conn.execute(
        "SELECT count(*), coalesce(sum(hashtextextended(r, 0)), 0), coalesce(sum(hashtextextended(r, 1)), 0) "  # noqa: S608 - constants
        f"FROM (SELECT ROW({key}, {columns})::text AS r FROM mandate.{table}{_where(table)}) t"
    ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2])


def count(conn: psycopg.Connection[Any], table: str) -> int:
    """Rows of `table` (one of TABLES), without the domain 008 may add."""
    row = conn.execute(f"SELECT count(*) FROM mandate.{table}{_where(table)}").fetchone()  # noqa: S608 - constants
    assert row is not None
    return int(row[0])


def domains_created_by_008(conn: psycopg.Connection[Any]) -> list[str]:
    """`organization_id/domain` of the domains migration 008 created (for --unattributed-to)."""
    rows = conn.execute(
        f"SELECT organization_id::text || '/' || domain FROM mandate.domains WHERE {_CREATED_BY_008} ORDER BY 1"  # noqa: S608 - constant
    ).fetchall()
    return [r[0] for r in rows]
