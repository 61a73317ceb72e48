"""API tokens in the database: issue (append a token row), revoke (append a revocation row), list, look up by hash.

The secret never reaches this module: callers pass its SHA-256 (`mandate.tokens.digest`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

import psycopg
from psycopg import AsyncConnection
from psycopg.rows import dict_row

from mandate.tokens import Principal, Role
from mandate.vocabulary import Row

LOOKUP = """SELECT t.token_id, t.name, t.organization_id, t.domains, t.role, t.expires_at, t.teams,
                   r.revoked_at IS NOT NULL AS revoked
            FROM mandate.api_tokens t LEFT JOIN mandate.api_token_revocations r USING (token_id)
            WHERE t.secret_sha256 = %s"""


def principal_of(row: Row) -> Principal | None:
    """The principal of a looked-up row; None when it is revoked."""
    if row["revoked"]:
        return None
    return Principal(
        token_id=row["token_id"],
        name=row["name"],
        organization_id=row["organization_id"],
        domains=None if row["domains"] is None else frozenset(row["domains"]),
        role=Role(row["role"]),
        expires_at=row["expires_at"],
        teams=None if row.get("teams") is None else frozenset(row["teams"]),
    )


async def lookup(conn: AsyncConnection[Row], secret_sha256: bytes) -> Principal | None:
    """The token with this hash, unless it is unknown or revoked (expiry is the caller's check: it has the clock)."""
    row = await (await conn.execute(LOOKUP, [secret_sha256])).fetchone()
    return None if row is None else principal_of(row)


def issue(
    conn: psycopg.Connection[Any],
    *,
    secret_sha256: bytes,
    name: str,
    organization_id: UUID,
    domains: frozenset[str] | None,
    role: Role,
    expires_at: datetime | None,
    teams: frozenset[str] | None = None,
) -> UUID:
    token_id = uuid4()
    conn.execute(
        """INSERT INTO mandate.api_tokens (token_id, secret_sha256, name, organization_id, domains, role, expires_at,
                                         teams)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s)""",
        [
            token_id,
            secret_sha256,
            name,
            organization_id,
            None if domains is None else sorted(domains),
            role.value,
            expires_at,
            None if teams is None else sorted(teams),
        ],
    )
    return token_id


def revoke(conn: psycopg.Connection[Any], token_id: UUID, reason: str | None) -> datetime | None:
    """Append the revocation; its time, or None when the token was already revoked. KeyError: no such token."""
    with conn.transaction():
        exists = conn.execute("SELECT 1 FROM mandate.api_tokens WHERE token_id = %s FOR SHARE", [token_id]).fetchone()
        if exists is None:
            raise KeyError(str(token_id))
        row = conn.execute(
            """INSERT INTO mandate.api_token_revocations (token_id, reason) VALUES (%s, %s)
               ON CONFLICT (token_id) DO NOTHING RETURNING revoked_at""",
            [token_id, reason],
        ).fetchone()
    return None if row is None else row[0]


LIST = """SELECT t.token_id, t.name, t.organization_id, t.domains, t.teams, t.role, t.expires_at, t.created_at,
                 t.created_by,
                 r.revoked_at, r.revoked_by, r.reason
          FROM mandate.api_tokens t LEFT JOIN mandate.api_token_revocations r USING (token_id)
          WHERE %(org)s::uuid IS NULL OR t.organization_id = %(org)s
          ORDER BY t.created_at, t.token_id"""
"""Every token (of one organization, when given), oldest first, with its revocation if any. No secret, no hash."""


def list_tokens(conn: psycopg.Connection[Any], organization_id: UUID | None = None) -> list[Row]:
    return conn.cursor(row_factory=dict_row).execute(LIST, {"org": organization_id}).fetchall()


async def organization_tokens(conn: AsyncConnection[Row], organization_id: UUID | None) -> list[Row]:
    return await (await conn.execute(LIST, {"org": organization_id})).fetchall()


def organization_exists(conn: psycopg.Connection[Any], organization_id: UUID) -> bool:
    row = conn.execute("SELECT 1 FROM mandate.organizations WHERE organization_id = %s", [organization_id]).fetchone()
    return row is not None


def unknown_domains(conn: psycopg.Connection[Any], organization_id: UUID, domains: frozenset[str]) -> list[str]:
    rows = conn.execute(
        "SELECT domain FROM mandate.domains WHERE organization_id = %s AND domain = ANY(%s)",
        [organization_id, sorted(domains)],
    ).fetchall()
    return sorted(domains - {r[0] for r in rows})
