"""Migration 008's remedy tables: the operator's explicit choices (domain slugs, scope ids, where unattributed
history goes) that 008 reads and then drops. Written in the caller's transaction."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import psycopg

TABLES_DDL = """
CREATE TABLE IF NOT EXISTS mandate.migration_008_domain_slugs (
    organization_id uuid, name text NOT NULL, slug text NOT NULL);
CREATE TABLE IF NOT EXISTS mandate.migration_008_scope_ids (
    legacy_scope_uuid uuid PRIMARY KEY, scope_id text NOT NULL);
CREATE TABLE IF NOT EXISTS mandate.migration_008_unattributed (
    organization_id uuid NOT NULL, domain text NOT NULL);
"""

_READ_BACK = """
SELECT jsonb_build_object(
    'domain_slugs', (SELECT coalesce(jsonb_agg(to_jsonb(m) ORDER BY m.name, m.organization_id), '[]')
                     FROM mandate.migration_008_domain_slugs m),
    'scope_ids', (SELECT coalesce(jsonb_agg(to_jsonb(m) ORDER BY m.legacy_scope_uuid), '[]')
                  FROM mandate.migration_008_scope_ids m),
    'unattributed_to', (SELECT to_jsonb(m) FROM mandate.migration_008_unattributed m LIMIT 1))
"""


def organization_exists(conn: psycopg.Connection[Any], organization_id: uuid.UUID) -> bool:
    return (
        conn.execute("SELECT 1 FROM mandate.organizations WHERE organization_id = %s", (organization_id,)).fetchone()
        is not None
    )


def some_organizations(conn: psycopg.Connection[Any], limit: int = 10) -> list[tuple[Any, str]]:
    """(organization_id, name) of up to `limit` organizations, by name."""
    return [
        (r[0], r[1])
        for r in conn.execute(
            "SELECT organization_id, name FROM mandate.organizations ORDER BY name LIMIT %s", (limit,)
        )
    ]


def create_tables(conn: psycopg.Connection[Any]) -> None:
    conn.execute(TABLES_DDL)


def add_domain_slugs(conn: psycopg.Connection[Any], slugs: Sequence[tuple[uuid.UUID | None, str, str]]) -> None:
    """(organization_id or None for every organization, name, slug) rows."""
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO mandate.migration_008_domain_slugs (organization_id, name, slug) VALUES (%s, %s, %s)", slugs
        )


def set_scope_ids(conn: psycopg.Connection[Any], scope_ids: Sequence[tuple[uuid.UUID, str]]) -> None:
    """(legacy_scope_uuid, scope_id) rows, replacing those of the same scopes."""
    with conn.cursor() as cur:
        cur.execute(
            "DELETE FROM mandate.migration_008_scope_ids WHERE legacy_scope_uuid = ANY(%s)",
            ([u for u, _ in scope_ids],),
        )
        cur.executemany(
            "INSERT INTO mandate.migration_008_scope_ids (legacy_scope_uuid, scope_id) VALUES (%s, %s)", scope_ids
        )


def set_unattributed(conn: psycopg.Connection[Any], organization_id: uuid.UUID, domain: str) -> None:
    """Where unattributed history goes (one row, replacing any other)."""
    with conn.cursor() as cur:
        cur.execute("DELETE FROM mandate.migration_008_unattributed")
        cur.execute(
            "INSERT INTO mandate.migration_008_unattributed (organization_id, domain) VALUES (%s, %s)",
            (organization_id, domain),
        )


def recorded(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    """What the remedy tables hold: {domain_slugs: [...], scope_ids: [...], unattributed_to: {...} | None}."""
    row = conn.execute(_READ_BACK).fetchone()
    assert row is not None
    found: dict[str, Any] = row[0]
    return found
