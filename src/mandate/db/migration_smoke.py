"""What the migration's smoke tests filter on: a real domain of the database, `finance` when there is one."""

from __future__ import annotations

from typing import Any

import psycopg


def busiest_domain(conn: psycopg.Connection[Any]) -> tuple[str, str, int] | None:
    """(organization_id, domain, decisions) of finance when it has decisions, else of the domain with the most."""
    row = conn.execute(
        "SELECT organization_id::text, domain, count(*) FROM mandate.decision_events GROUP BY 1, 2 "
        "ORDER BY (domain = 'finance') DESC, count(*) DESC, 1, 2 LIMIT 1"
    ).fetchone()
    return (str(row[0]), str(row[1]), int(row[2])) if row else None


def first_domain(conn: psycopg.Connection[Any]) -> tuple[str, str] | None:
    """(organization_id, domain) of finance when there is one, else the first domain."""
    row = conn.execute(
        "SELECT organization_id::text, domain FROM mandate.domains ORDER BY (domain = 'finance') DESC, 1, 2 LIMIT 1"
    ).fetchone()
    return (str(row[0]), str(row[1])) if row else None
