"""The checks around migration 008 as the database sees them: the results table the check scripts fill, and the
statements of the checklist's constraint tests (each tried in a savepoint that is always rolled back).

The check scripts themselves are files, `migrations/008_*_CHECKS.sql` and `…_VERIFICATION.sql` (`migrate/checks.py`
runs them as they are); this module holds the SQL around them.
"""

from __future__ import annotations

import uuid
from typing import Any

import psycopg

_RESULTS = """
SELECT check_id::text, section::text, title::text, status::text, measured::text, offending_count::bigint,
       coalesce(sample::text[], '{}'), remedy::text
FROM pg_temp.m008_check_results
"""

#: The checklist's constraint tests, as the report shows them (unqualified, as an operator types them in psql).
BAD_SLUG_INSERT = "INSERT INTO domains (organization_id, domain) VALUES (%s, 'Bad-Domain')"
SCOPE_INSERT = "INSERT INTO scopes (scope_id, domain, organization_id, owning_team) VALUES (%s, %s, %s, 'Team')"
BAD_SCOPE_ID = "wrong.prod.system"


def results(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    """(check_id, section, title, status, measured, offending_count, sample, remedy) of every row a check script
    wrote into its temporary table m008_check_results."""
    return conn.execute(_RESULTS).fetchall()


def attempt(conn: psycopg.Connection[Any], statement: str, params: tuple[Any, ...]) -> tuple[str | None, str]:
    """Run one of the constraint tests' statements (qualified with schema mandate) in a savepoint that is always
    rolled back; (SQLSTATE or None, message or 'accepted')."""
    qualified = statement.replace("INTO domains", "INTO mandate.domains", 1).replace(
        "INTO scopes", "INTO mandate.scopes", 1
    )
    try:
        with conn.transaction(force_rollback=True):
            conn.execute(qualified, params)
    except psycopg.Error as exc:
        return exc.sqlstate, (exc.diag.message_primary or str(exc)).strip()
    return None, "accepted"


def first_organization(conn: psycopg.Connection[Any]) -> uuid.UUID | None:
    """The oldest organization (by creation, then name), if any."""
    row = conn.execute("SELECT organization_id FROM mandate.organizations ORDER BY created_at, name LIMIT 1").fetchone()
    return row[0] if row else None


def create_organization(conn: psycopg.Connection[Any], name: str) -> uuid.UUID:
    """A throwaway organization for the tests (the caller rolls it back)."""
    row = conn.execute(
        "INSERT INTO mandate.organizations (name, description) VALUES (%s, 'migration 008 constraint test') "
        "RETURNING organization_id",
        (name,),
    ).fetchone()
    assert row is not None
    organization_id: uuid.UUID = row[0]
    return organization_id


def has_domain(conn: psycopg.Connection[Any], organization_id: uuid.UUID, domain: str) -> bool:
    return (
        conn.execute(
            "SELECT 1 FROM mandate.domains WHERE organization_id = %s AND domain = %s", (organization_id, domain)
        ).fetchone()
        is not None
    )


def create_domain(conn: psycopg.Connection[Any], organization_id: uuid.UUID, domain: str) -> None:
    conn.execute("INSERT INTO mandate.domains (organization_id, domain) VALUES (%s, %s)", (organization_id, domain))


def has_scope(conn: psycopg.Connection[Any], scope_id: str) -> bool:
    return conn.execute("SELECT 1 FROM mandate.scopes WHERE scope_id = %s", (scope_id,)).fetchone() is not None


def leftovers(
    conn: psycopg.Connection[Any],
    *,
    valid_scope_id: str,
    organization_name: str,
    created_domain: bool,
    organization_id: uuid.UUID,
    domain: str,
) -> int:
    """How many of the tests' rows exist (after their rollback: must be 0)."""
    row = conn.execute(
        "SELECT (SELECT count(*) FROM mandate.domains WHERE domain = 'Bad-Domain') "
        "     + (SELECT count(*) FROM mandate.scopes WHERE scope_id IN (%s, %s)) "
        "     + (SELECT count(*) FROM mandate.organizations WHERE name = %s)"
        "     + (CASE WHEN %s THEN (SELECT count(*) FROM mandate.domains WHERE organization_id = %s AND domain = %s)"
        "        ELSE 0 END)",
        (BAD_SCOPE_ID, valid_scope_id, organization_name, created_domain, organization_id, domain),
    ).fetchone()
    assert row is not None
    return int(row[0])
