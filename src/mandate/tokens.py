"""API tokens: the secret's shape and hash, the roles, and what a token (a `Principal`) may see and do. Pure.

A secret is `mdt_` followed by 43 URL-safe base64 characters (32 random bytes, 256 bits). The prefix lets secret
scanners recognise a leaked one. Only `digest(secret)`, its SHA-256, is ever stored or compared: a slow or keyed
hash protects low-entropy passwords against guessing; 256 random bits cannot be guessed, so a fast unkeyed hash
loses nothing and keeps each request's check to one hash and one index lookup (docs/security.md).

Roles (docs/security.md): `agent` posts decisions and outcomes for its domains and reads the decisions it sent;
`approver` reads its domains and resolves PAUSEs there; `reader` reads its domains (API and UI); `admin` may do all
of that in every domain of its organization and manages tokens.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from uuid import UUID

from mandate.vocabulary import is_slug

PREFIX = "mdt_"
_SECRET = re.compile(r"^mdt_[A-Za-z0-9_-]{43}$")
_EXPIRY = re.compile(r"^(\d{1,5})([hdw])$")


class Role(StrEnum):
    AGENT = "agent"
    APPROVER = "approver"
    READER = "reader"
    ADMIN = "admin"


class Permission(StrEnum):
    READ = "read"  # governance and decisions of the token's domains (an agent: only the decisions it sent)
    DECIDE = "decide"  # post decisions and outcomes
    APPROVE = "approve"  # resolve PAUSEs
    ADMIN = "admin"  # manage tokens


GRANTS: dict[Role, frozenset[Permission]] = {
    Role.AGENT: frozenset({Permission.READ, Permission.DECIDE}),
    Role.APPROVER: frozenset({Permission.READ, Permission.APPROVE}),
    Role.READER: frozenset({Permission.READ}),
    Role.ADMIN: frozenset(Permission),
}
"""The one home of which role may do what."""


def new_secret() -> str:
    return PREFIX + base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")


def well_formed(secret: str) -> bool:
    return _SECRET.match(secret) is not None


def digest(secret: str) -> bytes:
    """What is stored and looked up: SHA-256 of the secret's UTF-8 bytes."""
    return hashlib.sha256(secret.encode()).digest()


def parse_expiry(text: str, now: datetime) -> datetime | None:
    """`90d`, `12h`, `2w` → the moment it expires; `never` → None. ValueError naming the accepted forms."""
    if text.strip().lower() == "never":
        return None
    match = _EXPIRY.match(text.strip())
    if match is None or int(match.group(1)) == 0:
        raise ValueError(f"expiry must look like 12h, 90d, 2w or never (got {text!r})")
    amount, unit = int(match.group(1)), match.group(2)
    return now + {"h": timedelta(hours=amount), "d": timedelta(days=amount), "w": timedelta(weeks=amount)}[unit]


def parse_domains(text: str) -> frozenset[str]:
    """`a,b` → {a, b}; ValueError unless every name is a slug."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    bad = [name for name in names if not is_slug(name)]
    if not names or bad:
        raise ValueError(f"domains must be slugs separated by commas (got {text!r})")
    return frozenset(names)


@dataclass(frozen=True)
class Principal:
    """Who sent a request: a token's identity and reach (never its secret). `organization_id` None only for the
    local principal of a server running without authentication, which may do and see everything."""

    token_id: UUID | None
    name: str
    organization_id: UUID | None
    domains: frozenset[str] | None  # None: every domain of the organization
    role: Role
    expires_at: datetime | None = None
    teams: frozenset[str] | None = None  # an approver's owning teams (None: every team of its domains)

    @classmethod
    def local(cls) -> Principal:
        return cls(None, "local (authentication off)", None, None, Role.ADMIN)

    def may(self, permission: Permission) -> bool:
        return permission in GRANTS[self.role]

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and now >= self.expires_at

    def sees_organization(self, organization_id: UUID | str) -> bool:
        return self.organization_id is None or str(self.organization_id) == str(organization_id).lower()

    def sees_domain(self, organization_id: UUID | str, domain: str) -> bool:
        return self.sees_organization(organization_id) and (self.domains is None or domain in self.domains)

    def sees_decision(self, organization_id: UUID | str, domain: str, token_id: UUID | None) -> bool:
        """An agent sees only the decisions it sent; every other role, the decisions of its domains."""
        if not self.sees_domain(organization_id, domain):
            return False
        return self.role is not Role.AGENT or (token_id is not None and token_id == self.token_id)

    @property
    def own_decisions_only(self) -> UUID | None:
        """The token whose decisions are the only ones this principal may read (agents), else None."""
        return self.token_id if self.role is Role.AGENT else None
