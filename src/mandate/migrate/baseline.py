"""Row counts and content checksums of the historical tables, captured before migration 008 and compared after.

"Content" is every column apart from the identity columns 008 converts or fills (domain_id → domain, UUID scope ids
→ human-readable ones, including the scope ids inside policy and timeline JSON, and the attribution columns
organization_id/domain of the event and governance rows, which --unattributed-to fills where they were NULL), so the
same query gives the same checksum before and after a correct migration; the post-migration checks verify the
attribution itself. Each row's columns are hashed (two 64-bit hashes of the row's text, PostgreSQL's
hashtextextended with two seeds) and the hashes summed: the result does not depend on row order and needs constant
memory, so it works on tens of millions of rows (a `string_agg` of the whole table would not).

Migration 008 may add exactly one row: the domain that holds unattributed history (--unattributed-to), marked
`metadata.created_by = 'migration 008'`. It is left out of the domains count and checksum.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

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

_CREATED_BY_008 = 'metadata @> \'{"created_by": "migration 008"}\''

_MOD = 1 << 96  # checksums are shown as two 96-bit hex numbers


@dataclass(frozen=True)
class TableState:
    rows: int
    checksum: str

    def as_json(self) -> dict[str, Any]:
        return {"rows": self.rows, "checksum": self.checksum}


def _query(table: str, legacy: bool) -> str:
    before_key, after_key, columns = _ROWS[table]
    key = before_key if legacy else after_key
    where = f" WHERE NOT ({_CREATED_BY_008})" if table == "domains" else ""
    return (
        "SELECT count(*), coalesce(sum(hashtextextended(r, 0)), 0), coalesce(sum(hashtextextended(r, 1)), 0) "  # noqa: S608 - constants
        f"FROM (SELECT ROW({key}, {columns})::text AS r FROM mandate.{table}{where}) t"
    )


def is_legacy(conn: psycopg.Connection[Any]) -> bool:
    """True while mandate.domains still has its domain_id (before 008)."""
    row = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM information_schema.columns "
        "WHERE table_schema = 'mandate' AND table_name = 'domains' AND column_name = 'domain_id')"
    ).fetchone()
    return bool(row and row[0])


def capture(conn: psycopg.Connection[Any]) -> dict[str, TableState]:
    """Row count and content checksum of every historical table, in the caller's transaction."""
    legacy = is_legacy(conn)
    states = {}
    for table in TABLES:
        row = conn.execute(_query(table, legacy)).fetchone()
        assert row is not None
        states[table] = TableState(int(row[0]), f"{int(row[1]) % _MOD:024x}{int(row[2]) % _MOD:024x}")
    return states


def counts(conn: psycopg.Connection[Any]) -> dict[str, int]:
    """Row counts only (cheap: no row is converted to text), e.g. to re-check after COMMIT."""
    found = {}
    for table in TABLES:
        where = f" WHERE NOT ({_CREATED_BY_008})" if table == "domains" else ""
        row = conn.execute(f"SELECT count(*) FROM mandate.{table}{where}").fetchone()  # noqa: S608 - constants
        assert row is not None
        found[table] = int(row[0])
    return found


def created_by_remedies(conn: psycopg.Connection[Any]) -> dict[str, list[str]]:
    """The rows migration 008 created for the operator's remedies (left out of the counts above), per table."""
    if is_legacy(conn):
        return {}
    rows = conn.execute(
        f"SELECT organization_id::text || '/' || domain FROM mandate.domains WHERE {_CREATED_BY_008} ORDER BY 1"  # noqa: S608 - constant
    ).fetchall()
    return {"domains": [f"domain {r[0]} (--unattributed-to)" for r in rows]} if rows else {}


def compare(before: dict[str, TableState], after: dict[str, TableState]) -> list[str]:
    """What differs, one line per table (empty: every row and its content is there)."""
    problems = []
    for table, b in before.items():
        a = after.get(table)
        if a is None:
            problems.append(f"{table}: not measured after the migration")
        elif a.rows != b.rows:
            problems.append(f"{table}: {b.rows} rows before, {a.rows} after")
        elif a.checksum != b.checksum:
            problems.append(
                f"{table}: same {a.rows} rows, but their content changed (checksum {b.checksum} → {a.checksum})"
            )
    return problems


def as_json(states: dict[str, TableState]) -> dict[str, Any]:
    return {t: s.as_json() for t, s in states.items()}


def from_json(data: dict[str, Any]) -> dict[str, TableState]:
    return {t: TableState(int(s["rows"]), str(s["checksum"])) for t, s in data.items()}
