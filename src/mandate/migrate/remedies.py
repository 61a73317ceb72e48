"""Operator remedies for migration 008: explicit choices for legacy data the migration must never guess.

- domain slugs (`--domain-slug NAME=slug`, `--domain-slug-file FILE`): a slug for a domain name that is not one;
- scope ids (`--scope-id-map FILE`): a human-readable id for a scope, by its legacy UUID;
- the unattributed-history target (`--unattributed-to ORG_ID/DOMAIN`): where rows without a domain_id go.

They are parsed and validated before anything touches the database (a malformed option writes nothing), checked
against the database (`validate`), and written into migration 008's remedy tables inside the caller's transaction
(`fill`), which 008 and the pre-migration checks read. What 008 actually used is read back and recorded in
migration_log.details and in the report.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import yaml

from mandate.db import migration_remedies as q
from mandate.errors import ConfigError
from mandate.vocabulary import is_scope_id, is_slug


@dataclass(frozen=True)
class DomainSlug:
    name: str
    slug: str
    organization_id: uuid.UUID | None = None  # None: this name in every organization


@dataclass(frozen=True)
class ScopeId:
    legacy_scope_uuid: uuid.UUID
    scope_id: str


@dataclass(frozen=True)
class Unattributed:
    organization_id: uuid.UUID
    domain: str


@dataclass(frozen=True)
class Remedies:
    domain_slugs: tuple[DomainSlug, ...] = ()
    scope_ids: tuple[ScopeId, ...] = ()
    unattributed_to: Unattributed | None = None
    sources: tuple[str, ...] = ()  # where they came from, for the report

    @classmethod
    def from_options(
        cls,
        domain_slug: Iterable[str] = (),
        domain_slug_file: Path | None = None,
        unattributed_to: str | None = None,
        scope_id_map: Path | None = None,
    ) -> Remedies:
        """Parse the runbook's remedy options; raise ConfigError naming the option and the bad value."""
        slugs = [parse_domain_slug(raw) for raw in domain_slug]
        sources = [f"--domain-slug {raw}" for raw in domain_slug]
        if domain_slug_file is not None:
            slugs.extend(read_domain_slug_file(domain_slug_file))
            sources.append(f"--domain-slug-file {domain_slug_file}")
        seen: dict[tuple[uuid.UUID | None, str], str] = {}
        for s in slugs:
            key = (s.organization_id, s.name)
            if key in seen and seen[key] != s.slug:
                raise ConfigError(f"--domain-slug: {s.name!r} is mapped twice, to {seen[key]!r} and to {s.slug!r}")
            seen[key] = s.slug
        target = None
        if unattributed_to is not None:
            target = parse_unattributed(unattributed_to)
            sources.append(f"--unattributed-to {unattributed_to}")
        scopes: list[ScopeId] = []
        if scope_id_map is not None:
            scopes = read_scope_id_map(scope_id_map)
            sources.append(f"--scope-id-map {scope_id_map}")
        unique_slugs = tuple(dict.fromkeys(slugs))
        return cls(unique_slugs, tuple(scopes), target, tuple(sources))

    @property
    def empty(self) -> bool:
        return not (self.domain_slugs or self.scope_ids or self.unattributed_to)

    def as_json(self) -> dict[str, Any]:
        """The remedies in the shape migration 008 records (migration_log.details.remedies)."""
        return {
            "domain_slugs": [
                {
                    "organization_id": str(s.organization_id) if s.organization_id else None,
                    "name": s.name,
                    "slug": s.slug,
                }
                for s in self.domain_slugs
            ],
            "scope_ids": [
                {"legacy_scope_uuid": str(s.legacy_scope_uuid), "scope_id": s.scope_id} for s in self.scope_ids
            ],
            "unattributed_to": (
                {"organization_id": str(self.unattributed_to.organization_id), "domain": self.unattributed_to.domain}
                if self.unattributed_to
                else None
            ),
        }

    def validate(self, conn: psycopg.Connection[Any]) -> None:
        """Refuse, before anything is written, remedies naming an organization the database does not have. (Names
        and UUIDs that match nothing are reported by the pre-migration checks, PRE-09.)"""
        wanted = [("--unattributed-to", self.unattributed_to.organization_id)] if self.unattributed_to else []
        wanted += [("--domain-slug", s.organization_id) for s in self.domain_slugs if s.organization_id is not None]
        for option, org in wanted:
            if q.organization_exists(conn, org):
                continue
            known = [f"{org_id} ({name})" for org_id, name in q.some_organizations(conn)]
            raise ConfigError(
                f"{option}: organization {org} does not exist in this database; "
                f"known organizations: {', '.join(known) or 'none'}"
            )

    def fill(self, conn: psycopg.Connection[Any]) -> dict[str, Any]:
        """Create 008's remedy tables if needed and add these remedies, in the caller's transaction.

        Returns what the tables hold afterwards (rows an operator inserted by hand included): what 008 will use."""
        q.create_tables(conn)
        if self.domain_slugs:
            q.add_domain_slugs(conn, [(s.organization_id, s.name, s.slug) for s in self.domain_slugs])
        if self.scope_ids:
            q.set_scope_ids(conn, [(s.legacy_scope_uuid, s.scope_id) for s in self.scope_ids])
        if self.unattributed_to is not None:
            q.set_unattributed(conn, self.unattributed_to.organization_id, self.unattributed_to.domain)
        return q.recorded(conn)


def parse_domain_slug(raw: str, option: str = "--domain-slug") -> DomainSlug:
    """`NAME=slug`, or `ORG_ID:NAME=slug` for one organization only."""
    name, sep, slug = raw.rpartition("=")
    if not sep or not name.strip():
        raise ConfigError(f"{option} must be NAME=slug, e.g. 'Customer Support=customer-support' (got {raw!r})")
    organization_id = None
    head, colon, rest = name.partition(":")
    if colon and _is_uuid(head.strip()):
        organization_id, name = uuid.UUID(head.strip()), rest
    return _domain_slug(name, slug.strip(), organization_id, option)


def _domain_slug(name: str, slug: str, organization_id: uuid.UUID | None, option: str) -> DomainSlug:
    if not name:
        raise ConfigError(f"{option}: the domain name is empty")
    if not is_slug(slug):
        raise ConfigError(f"{option}: {slug!r} (for {name!r}) is not a slug: use lower-case a-z, 0-9, '_' and '-'")
    return DomainSlug(name, slug, organization_id)


def read_domain_slug_file(path: Path) -> list[DomainSlug]:
    """YAML (`NAME: slug` mapping, or a list of {name, slug, organization_id?}) or CSV (name,slug[,organization_id])."""
    option = f"--domain-slug-file {path}"
    rows: list[Mapping[str, Any]] = []
    for row in _read_table(path, option, ("name", "slug", "organization_id")):
        rows.append(row)
    slugs = []
    for row in rows:
        org = row.get("organization_id")
        if org not in (None, "") and not _is_uuid(str(org)):
            raise ConfigError(f"{option}: organization_id {org!r} is not a UUID")
        slugs.append(
            _domain_slug(
                str(row.get("name") or ""),
                str(row.get("slug") or ""),
                uuid.UUID(str(org)) if org not in (None, "") else None,
                option,
            )
        )
    return slugs


def read_scope_id_map(path: Path) -> list[ScopeId]:
    """YAML (`<legacy uuid>: <scope id>` mapping, or a list of {legacy_scope_uuid, scope_id}) or CSV
    (legacy_scope_uuid,scope_id, header optional)."""
    option = f"--scope-id-map {path}"
    result: list[ScopeId] = []
    seen: set[uuid.UUID] = set()
    for row in _read_table(path, option, ("legacy_scope_uuid", "scope_id")):
        raw_uuid, scope_id = str(row.get("legacy_scope_uuid") or ""), str(row.get("scope_id") or "")
        if not _is_uuid(raw_uuid):
            raise ConfigError(f"{option}: {raw_uuid!r} is not a scope UUID")
        if not is_scope_id(scope_id):
            raise ConfigError(
                f"{option}: {scope_id!r} (for {raw_uuid}) is not a scope id: <domain>.<part>[.<part>…], "
                "each part a slug (a-z, 0-9, '_', '-')"
            )
        key = uuid.UUID(raw_uuid)
        if key in seen:
            raise ConfigError(f"{option}: scope {key} is mapped twice")
        seen.add(key)
        result.append(ScopeId(key, scope_id))
    if not result:
        raise ConfigError(f"{option}: the file maps no scope")
    return result


def parse_unattributed(raw: str) -> Unattributed:
    org, sep, domain = raw.partition("/")
    if not sep or not _is_uuid(org.strip()):
        raise ConfigError(f"--unattributed-to must be ORG_ID/DOMAIN with ORG_ID a UUID (got {raw!r})")
    if not is_slug(domain.strip()):
        raise ConfigError(f"--unattributed-to: {domain!r} is not a domain slug (a-z, 0-9, '_', '-')")
    return Unattributed(uuid.UUID(org.strip()), domain.strip())


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _read_table(path: Path, option: str, columns: tuple[str, ...]) -> list[Mapping[str, Any]]:
    """Rows of a small YAML or CSV file as dicts keyed by `columns` (a YAML mapping gives the first two)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{option}: cannot read the file: {exc.strerror or exc}") from None
    if path.suffix.lower() in (".yaml", ".yml", ".json"):
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{option}: not valid YAML: {exc}") from None
        if isinstance(data, Mapping):
            return [{columns[0]: str(k), columns[1]: "" if v is None else str(v)} for k, v in data.items()]
        if isinstance(data, list) and all(isinstance(r, Mapping) for r in data):
            return list(data)
        raise ConfigError(f"{option}: expected a mapping or a list of mappings with keys {', '.join(columns)}")
    if path.suffix.lower() not in (".csv", ".txt", ""):
        raise ConfigError(f"{option}: use a .csv or .yaml file")
    reader = csv.reader(io.StringIO(text))
    lines = [[cell.strip() for cell in r] for r in reader if r and any(c.strip() for c in r)]
    if lines and all(c.lower() in columns for c in lines[0]):
        header = [c.lower() for c in lines.pop(0)]
    else:
        header = list(columns)
    rows: list[Mapping[str, Any]] = []
    for n, cells in enumerate(lines, start=1):
        if len(cells) < 2 or len(cells) > len(header):
            raise ConfigError(f"{option}: row {n} has {len(cells)} column(s); expected {', '.join(header)}")
        rows.append(dict(zip(header, cells, strict=False)))
    return rows
