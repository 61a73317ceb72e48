"""Row counts and content checksums of the historical tables, captured before migration 008 and compared after.

"Content" is every column apart from the identity columns 008 converts or fills (domain_id → domain, UUID scope ids
→ human-readable ones, including the scope ids inside policy and timeline JSON, and the attribution columns
organization_id/domain of the event and governance rows, which --unattributed-to fills where they were NULL), so the
same query gives the same checksum before and after a correct migration; the post-migration checks verify the
attribution itself. Each row's columns are hashed (two 64-bit hashes of the row's text, PostgreSQL's
hashtextextended with two seeds) and the hashes summed: the result does not depend on row order and needs constant
memory, so it works on tens of millions of rows (a `string_agg` of the whole table would not).

Migration 008 may add exactly one row: the domain that holds unattributed history (--unattributed-to), marked
`metadata.created_by = 'migration 008'`. It is left out of the domains count and checksum. The queries are in
`db/migration_baseline.py`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

from mandate.db import catalog as pg_catalog
from mandate.db import migration_baseline as q
from mandate.db.migration_baseline import TABLES as TABLES  # the eight tables; their home is db/

_MOD = 1 << 96  # checksums are shown as two 96-bit hex numbers


@dataclass(frozen=True)
class TableState:
    rows: int
    checksum: str

    def as_json(self) -> dict[str, Any]:
        return {"rows": self.rows, "checksum": self.checksum}


def is_legacy(conn: psycopg.Connection[Any]) -> bool:
    """True while mandate.domains still has its domain_id (before 008)."""
    return pg_catalog.has_column(conn, "domains", "domain_id")


def capture(conn: psycopg.Connection[Any]) -> dict[str, TableState]:
    """Row count and content checksum of every historical table, in the caller's transaction."""
    legacy = is_legacy(conn)
    states = {}
    for table in TABLES:
        rows, h0, h1 = q.checksum(conn, table, legacy=legacy)
        states[table] = TableState(rows, f"{h0 % _MOD:024x}{h1 % _MOD:024x}")
    return states


def counts(conn: psycopg.Connection[Any]) -> dict[str, int]:
    """Row counts only (cheap: no row is converted to text), e.g. to re-check after COMMIT."""
    return {table: q.count(conn, table) for table in TABLES}


def created_by_remedies(conn: psycopg.Connection[Any]) -> dict[str, list[str]]:
    """The rows migration 008 created for the operator's remedies (left out of the counts above), per table."""
    if is_legacy(conn):
        return {}
    rows = q.domains_created_by_008(conn)
    return {"domains": [f"domain {r} (--unattributed-to)" for r in rows]} if rows else {}


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
