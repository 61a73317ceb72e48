"""Data in the shape of the legacy schema (migrations 001-007), for testing and benchmarking migration 008.

Every function takes a psycopg connection to a database at legacy schema version 007 and appends rows to the
``mandate`` schema. Nothing here commits: the rows land in the caller's transaction (or are committed statement by
statement if the connection is in autocommit mode).

- :func:`insert_sample_governance` writes the original project's sample governance (organization ``example-org``,
  domain ``config-management``, its scopes, five specs and one policy snapshot with eight policies), with the
  identifiers its example agents rely on.
- :func:`generate_events` writes clean, realistic volume: several organizations whose domains share names, scopes
  with owning teams, specs, one policy snapshot per domain, and any number of decisions, each with one verdict and
  two timeline entries. The bulk is set-based SQL over ``generate_series`` and every identifier is derived from
  the series index with ``md5``, so a run is fast at millions of rows and reproducible byte for byte.
- The ``add_*`` functions each add a handful of rows showing one kind of mess that real legacy databases contain
  (see LEGACY-SCHEMA.md, "What real legacy data looks like"). They are independent of each other and of the data
  above, so test fixtures can combine them freely; each may be called once per database (a second call violates a
  unique index). Each returns the number of rows it inserted per table.

Three helpers (:func:`add_orphaned_domain_refs`, :func:`add_verdicts_missing_scope` and
:func:`add_verdicts_missing_decision`) write rows that the foreign keys forbid, as old databases contain them
(written before a constraint existed, or after a manual repair). They bypass the foreign keys for that one insert
with ``SET LOCAL session_replication_role = replica`` inside a savepoint and restore the previous value right
after; this needs a superuser (or a role granted SET on that parameter).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

__all__ = [
    "AUDIT_LOGGER_SCOPE_ID",
    "CONFIG_MANAGEMENT_DOMAIN_ID",
    "CONFIG_MANAGEMENT_SCOPE_ID",
    "CONFIG_WRITER_SCOPE_ID",
    "CORPUS_MESSES",
    "DB_ADMIN_SCOPE_ID",
    "EXAMPLE_ORG_ID",
    "PLACEHOLDER_OWNING_TEAM",
    "SAMPLE_SNAPSHOT_ID",
    "GeneratedCounts",
    "add_colliding_domain_names",
    "add_colliding_scopes",
    "add_non_slug_domains",
    "add_original_server_history",
    "add_orphaned_domain_refs",
    "add_outcome_reports",
    "add_scope_domain_mismatch",
    "add_scopes_without_owner",
    "add_unattributed_rows",
    "add_verdicts_missing_decision",
    "add_verdicts_missing_scope",
    "add_verdicts_without_scope_attribution",
    "build_corpus",
    "corpus_remedies",
    "generate_events",
    "insert_sample_governance",
]

Connection = psycopg.Connection[Any]
RowCounts = Mapping[str, int]

# ---------------------------------------------------------------------------------------------------------------
# The original project's sample governance
# ---------------------------------------------------------------------------------------------------------------

EXAMPLE_ORG_ID = uuid.UUID("550e8400-e29b-41d4-a716-446655440000")
CONFIG_MANAGEMENT_DOMAIN_ID = uuid.UUID("550e8400-e29b-41d4-a716-446655440001")
CONFIG_MANAGEMENT_SCOPE_ID = uuid.UUID("550e8400-e29b-41d4-a716-446655440002")  # the domain-wide scope
CONFIG_WRITER_SCOPE_ID = uuid.UUID("550e8400-e29b-41d4-a716-446655440100")
DB_ADMIN_SCOPE_ID = uuid.UUID("550e8400-e29b-41d4-a716-446655440101")
AUDIT_LOGGER_SCOPE_ID = uuid.UUID("550e8400-e29b-41d4-a716-446655440102")
# The original's snapshot id is not part of the identifiers its agents use; this one continues the same series.
SAMPLE_SNAPSHOT_ID = uuid.UUID("550e8400-e29b-41d4-a716-446655440200")

_SAMPLE_DOMAIN = "config-management"

# (scope_id, service, agent, owning_team); environment "production", system "prod".
_SAMPLE_AGENT_SCOPES: tuple[tuple[uuid.UUID, str, str, str], ...] = (
    (CONFIG_WRITER_SCOPE_ID, "config-writer", "pre-commit-agent", "config-team"),
    (DB_ADMIN_SCOPE_ID, "db-admin-tool", "pause-escalation-agent", "dba-team"),
    (AUDIT_LOGGER_SCOPE_ID, "audit-logger", "observe-agent", "audit-team"),
)


def _signal(
    name: str, type_: str, *, required: bool, source: str = "context", values: Sequence[str] = ()
) -> dict[str, Any]:
    signal: dict[str, Any] = {"name": name, "type": type_, "required": required, "source": source}
    if values:
        signal["values"] = list(values)
    return signal


@dataclass(frozen=True)
class _SampleSpec:
    spec_id: str
    intent: str
    stage: str
    signals: tuple[dict[str, Any], ...]
    allowed_verdicts: tuple[str, ...]
    enforcement: dict[str, Any]


_ALL_VERDICTS = ("ALLOW", "PAUSE", "BLOCK", "OBSERVE")

_SAMPLE_SPECS: tuple[_SampleSpec, ...] = (
    _SampleSpec(
        "spec-pre-commit-file-write-v1",
        "file.write",
        "pre_commit",
        (
            _signal("content_length", "number", required=True),
            _signal("content_type", "string", required=True),
            _signal("target", "string", required=False),
            _signal("service", "string", required=False, source="scope"),
        ),
        _ALL_VERDICTS,
        {"pause_requires": ["compliance-review"], "resolution_timeout_minutes": 60},
    ),
    _SampleSpec(
        "spec-pre-commit-database-drop-table-v1",
        "database.drop_table",
        "pre_commit",
        (
            _signal("risk_level", "enum", required=True, values=("low", "medium", "high", "critical")),
            _signal("reversible", "boolean", required=True),
            _signal("backup_first", "boolean", required=True),
            _signal("target", "string", required=False),
        ),
        _ALL_VERDICTS,
        {"pause_requires": ["dba-approval", "compliance-review"], "resolution_timeout_minutes": 120},
    ),
    _SampleSpec(
        "spec-executed-user-login-v1",
        "user.login",
        "executed",
        (
            _signal("user_id", "string", required=True),
            _signal("ip_address", "string", required=True),
            _signal("auth_method", "enum", required=True, values=("password", "oauth", "mfa")),
        ),
        ("OBSERVE",),
        {},
    ),
    _SampleSpec(
        "spec-executed-data-export-v1",
        "data.export",
        "executed",
        (
            _signal("format", "enum", required=True, values=("csv", "json", "parquet")),
            _signal("record_count", "number", required=True),
            _signal("includes_pii", "boolean", required=True),
        ),
        ("OBSERVE",),
        {},
    ),
    _SampleSpec(
        "spec-executed-config-update-v1",
        "config.update",
        "executed",
        (
            _signal("key", "string", required=True),
            _signal("old_value", "string", required=True),
            _signal("new_value", "string", required=True),
        ),
        ("OBSERVE",),
        {},
    ),
)


def _condition(field: str, operator: str, value: Any) -> dict[str, Any]:
    return {"field": field, "operator": operator, "value": value}


# (policy id, name, description, spec id, scope id, conditions, verdict)
_SAMPLE_POLICIES: tuple[tuple[str, str, str, str, uuid.UUID, tuple[dict[str, Any], ...], str], ...] = (
    (
        "policy-allow-small-files-v1",
        "Allow small config files",
        "Config files under 1 MiB in a known format may be written.",
        "spec-pre-commit-file-write-v1",
        CONFIG_WRITER_SCOPE_ID,
        (
            _condition("content_length", "<", 1048576),
            _condition("content_type", "in", ["yaml", "json", "toml"]),
        ),
        "ALLOW",
    ),
    (
        "policy-pause-large-files-v1",
        "Pause large file writes",
        "Files of 1 MiB or more need a compliance review.",
        "spec-pre-commit-file-write-v1",
        CONFIG_WRITER_SCOPE_ID,
        (_condition("content_length", ">=", 1048576),),
        "PAUSE",
    ),
    (
        "policy-block-unbackedup-drops-v1",
        "Block drops without backup",
        "A table may not be dropped unless it was backed up first.",
        "spec-pre-commit-database-drop-table-v1",
        DB_ADMIN_SCOPE_ID,
        (_condition("backup_first", "==", False),),
        "BLOCK",
    ),
    (
        "policy-pause-critical-db-ops-v1",
        "Pause critical database operations",
        "Critical-risk drops need DBA approval.",
        "spec-pre-commit-database-drop-table-v1",
        DB_ADMIN_SCOPE_ID,
        (_condition("risk_level", "==", "critical"),),
        "PAUSE",
    ),
    (
        "policy-allow-low-risk-drops-v1",
        "Allow low-risk reversible drops",
        "Low-risk, reversible drops may proceed.",
        "spec-pre-commit-database-drop-table-v1",
        DB_ADMIN_SCOPE_ID,
        (_condition("risk_level", "==", "low"), _condition("reversible", "==", True)),
        "ALLOW",
    ),
    (
        "policy-observe-user-login-v1",
        "Observe user logins",
        "Record every login.",
        "spec-executed-user-login-v1",
        AUDIT_LOGGER_SCOPE_ID,
        (_condition("auth_method", "in", ["password", "oauth", "mfa"]),),
        "OBSERVE",
    ),
    (
        "policy-observe-data-exports-v1",
        "Observe data exports",
        "Record every data export.",
        "spec-executed-data-export-v1",
        AUDIT_LOGGER_SCOPE_ID,
        (_condition("format", "in", ["csv", "json", "parquet"]),),
        "OBSERVE",
    ),
    (
        "policy-observe-config-updates-v1",
        "Observe config updates",
        "Record every configuration change.",
        "spec-executed-config-update-v1",
        AUDIT_LOGGER_SCOPE_ID,
        (),
        "OBSERVE",
    ),
)


def _sample_policies() -> list[dict[str, Any]]:
    """The eight sample policies in the legacy JSON shape (scope referenced by UUID, as text)."""
    selectors = {scope_id: (service, agent) for scope_id, service, agent, _team in _SAMPLE_AGENT_SCOPES}
    policies = []
    for policy_id, name, description, spec_id, scope_id, conditions, verdict in _SAMPLE_POLICIES:
        service, agent = selectors[scope_id]
        policies.append(
            {
                "id": policy_id,
                "name": name,
                "description": description,
                "spec_id": spec_id,
                "scope_id": str(scope_id),
                "scope": {
                    "domain": _SAMPLE_DOMAIN,
                    "service": service,
                    "agent": agent,
                    "environment": "production",
                },
                "conditions": list(conditions),
                "verdict": verdict,
            }
        )
    return policies


def insert_sample_governance(conn: Connection) -> None:
    """Insert the original project's sample organization, domain, scopes, specs and policy snapshot."""
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO mandate.organizations (organization_id, name, description) VALUES (%s, %s, %s)",
            (EXAMPLE_ORG_ID, "example-org", "Sample organization of the original Mandate project"),
        )
        cur.execute(
            """
            INSERT INTO mandate.domains (domain_id, organization_id, name, description)
            VALUES (%s, %s, %s, %s)
            """,
            (CONFIG_MANAGEMENT_DOMAIN_ID, EXAMPLE_ORG_ID, _SAMPLE_DOMAIN, "Configuration and database changes"),
        )
        # The domain-wide scope sets only scope_domain: every other selector is a wildcard.
        cur.execute(
            """
            INSERT INTO mandate.scopes (scope_id, scope_domain, organization_id, domain_id, owning_team, description)
            VALUES (%s, %s, %s, %s, %s, %s)
            """,
            (
                CONFIG_MANAGEMENT_SCOPE_ID,
                _SAMPLE_DOMAIN,
                EXAMPLE_ORG_ID,
                CONFIG_MANAGEMENT_DOMAIN_ID,
                "config-team",
                "Everything in config-management",
            ),
        )
        cur.executemany(
            """
            INSERT INTO mandate.scopes (
                scope_id, scope_domain, service, agent, scope_system, environment,
                organization_id, domain_id, owning_team, owner_contact
            )
            VALUES (%s, %s, %s, %s, 'prod', 'production', %s, %s, %s, %s)
            """,
            [
                (
                    scope_id,
                    _SAMPLE_DOMAIN,
                    service,
                    agent,
                    EXAMPLE_ORG_ID,
                    CONFIG_MANAGEMENT_DOMAIN_ID,
                    team,
                    f"{team}@example.org",
                )
                for scope_id, service, agent, team in _SAMPLE_AGENT_SCOPES
            ],
        )
        cur.executemany(
            """
            INSERT INTO mandate.mandate_specs (
                spec_id, version, organization_id, domain, intent, stage,
                allowed_verdicts, signals, enforcement, status
            )
            VALUES (%s, '1', %s, %s, %s, %s::mandate.stage, %s::mandate.verdict[], %s, %s, 'active')
            """,
            [
                (
                    spec.spec_id,
                    EXAMPLE_ORG_ID,
                    _SAMPLE_DOMAIN,
                    spec.intent,
                    spec.stage,
                    list(spec.allowed_verdicts),
                    Jsonb(list(spec.signals)),
                    Jsonb(spec.enforcement),
                )
                for spec in _SAMPLE_SPECS
            ],
        )
        cur.execute(
            """
            INSERT INTO mandate.policy_snapshots (snapshot_id, version, policies, organization_id, domain_id)
            VALUES (%s, 1, %s, %s, %s)
            """,
            (SAMPLE_SNAPSHOT_ID, Jsonb(_sample_policies()), EXAMPLE_ORG_ID, CONFIG_MANAGEMENT_DOMAIN_ID),
        )


# ---------------------------------------------------------------------------------------------------------------
# Generated volume
# ---------------------------------------------------------------------------------------------------------------

# Domain names shared by every generated organization; beyond these, "domain-<n>".
_DOMAIN_NAMES = (
    "finance",
    "hr",
    "customer-support",
    "engineering",
    "legal",
    "sales",
    "marketing",
    "security",
    "operations",
    "procurement",
)
_SERVICES = ("billing", "payroll", "ledger", "reporting", "onboarding", "chat-api", "crm", "etl")

# (intent, stage); scope k of a domain acts on intent number (k - 1) % 3, and its policies govern that intent.
_INTENTS = (("record.update", "pre_commit"), ("data.export", "executed"), ("database.drop_table", "pre_commit"))

_GENERATED_BATCH = 250_000


@dataclass(frozen=True)
class GeneratedCounts:
    """How many rows :func:`generate_events` inserted, per kind."""

    organizations: int
    domains: int
    scopes: int
    mandate_specs: int
    policy_snapshots: int
    decision_events: int
    verdict_events: int
    audit_timeline_entries: int


# Every generated identifier is md5(<kind>/<seed>/<position>)::uuid, so the same arguments give the same rows.
# The governance statements walk (o, d, k) = (organization, domain, scope) numbers; the event statements map
# decision number g to a scope with the same arithmetic, so the UUIDs they compute always exist.

_INSERT_ORGANIZATIONS = """
INSERT INTO mandate.organizations (organization_id, name, description, metadata, created_at)
SELECT md5(format('legacy-org/%%s/%%s', %(seed)s::int, o))::uuid,
       format('org-%%s-%%s', %(seed)s::int, o),
       format('Generated organization %%s', o),
       jsonb_build_object('generated', true, 'seed', %(seed)s::int),
       TIMESTAMPTZ '2024-10-01 00:00:00+00'
FROM generate_series(1, %(organizations)s::int) AS o
"""

_INSERT_DOMAINS = """
INSERT INTO mandate.domains (domain_id, organization_id, name, description, created_at)
SELECT md5(format('legacy-domain/%%s/%%s/%%s', %(seed)s::int, o, d))::uuid,
       md5(format('legacy-org/%%s/%%s', %(seed)s::int, o))::uuid,
       (%(domain_names)s::text[])[d],
       format('The %%s domain', (%(domain_names)s::text[])[d]),
       TIMESTAMPTZ '2024-10-02 00:00:00+00'
FROM generate_series(1, %(organizations)s::int) AS o,
     generate_series(1, %(domains_per_org)s::int) AS d
"""

# Scope selectors: service from a fixed list, an agent name unique across organizations and seeds (so derived
# human-readable ids never collide), three scopes in four in production.
_INSERT_SCOPES = """
INSERT INTO mandate.scopes (
    scope_id, scope_domain, service, agent, scope_system, environment, tenant, created_at,
    organization_id, domain_id, owning_team, owner_contact, description
)
SELECT md5(format('legacy-scope/%%s/%%s/%%s/%%s', %(seed)s::int, o, d, k))::uuid,
       (%(domain_names)s::text[])[d],
       (%(services)s::text[])[(k - 1) %% cardinality(%(services)s::text[]) + 1],
       format('agent-s%%s-o%%s-%%s', %(seed)s::int, o, k),
       CASE WHEN k %% 4 = 0 THEN 'stage' ELSE 'prod' END,
       CASE WHEN k %% 4 = 0 THEN 'staging' ELSE 'production' END,
       NULL,
       TIMESTAMPTZ '2024-10-03 00:00:00+00',
       md5(format('legacy-org/%%s/%%s', %(seed)s::int, o))::uuid,
       md5(format('legacy-domain/%%s/%%s/%%s', %(seed)s::int, o, d))::uuid,
       format('%%s-team', (%(domain_names)s::text[])[d]),
       format('%%s-team@org-%%s.example', (%(domain_names)s::text[])[d], o),
       format('Agent %%s of %%s', k, (%(domain_names)s::text[])[d])
FROM generate_series(1, %(organizations)s::int) AS o,
     generate_series(1, %(domains_per_org)s::int) AS d,
     generate_series(1, %(scopes_per_domain)s::int) AS k
"""

_INSERT_SPECS = """
INSERT INTO mandate.mandate_specs (
    spec_id, version, organization_id, domain, intent, stage, allowed_verdicts, signals, enforcement, status,
    created_at
)
SELECT format('spec-s%%s-o%%s-%%s-%%s', %(seed)s::int, o, (%(domain_names)s::text[])[d], replace(i.intent, '.', '-')),
       '1',
       md5(format('legacy-org/%%s/%%s', %(seed)s::int, o))::uuid,
       (%(domain_names)s::text[])[d],
       i.intent,
       i.stage::mandate.stage,
       CASE WHEN i.stage = 'executed' THEN '{OBSERVE}' ELSE '{ALLOW,PAUSE,BLOCK,OBSERVE}' END::mandate.verdict[],
       CASE i.intent
           WHEN 'record.update' THEN
               '[{"name": "risk_level", "type": "enum", "required": true, "source": "context",
                  "values": ["low", "medium", "high", "critical"]},
                 {"name": "fields_changed", "type": "number", "required": true, "source": "context"},
                 {"name": "service", "type": "string", "required": false, "source": "scope"}]'
           WHEN 'data.export' THEN
               '[{"name": "format", "type": "enum", "required": true, "source": "context",
                  "values": ["csv", "json", "parquet"]},
                 {"name": "record_count", "type": "number", "required": true, "source": "context"},
                 {"name": "includes_pii", "type": "boolean", "required": true, "source": "context"}]'
           ELSE
               '[{"name": "risk_level", "type": "enum", "required": true, "source": "context",
                  "values": ["low", "medium", "high", "critical"]},
                 {"name": "reversible", "type": "boolean", "required": true, "source": "context"},
                 {"name": "backup_first", "type": "boolean", "required": true, "source": "context"}]'
       END::jsonb,
       CASE WHEN i.stage = 'executed' THEN '{}'
            ELSE '{"pause_requires": ["change-review"], "resolution_timeout_minutes": 60}'
       END::jsonb,
       'active',
       TIMESTAMPTZ '2024-10-04 00:00:00+00'
FROM generate_series(1, %(organizations)s::int) AS o,
     generate_series(1, %(domains_per_org)s::int) AS d,
     unnest(%(intents)s::text[], %(stages)s::text[]) AS i (intent, stage)
"""

# One snapshot per domain. Each scope gets the policies of its intent, bound to that intent's spec and to the
# scope's UUID: an executed intent one OBSERVE policy that always matches; a pre-commit intent an ALLOW policy for
# low and medium risk and a guard (PAUSE on even scopes, BLOCK on odd ones) for critical risk. High risk matches
# nothing and falls to the spec default, OBSERVE. The event statements give each verdict accordingly.
_INSERT_SNAPSHOTS = """
INSERT INTO mandate.policy_snapshots (snapshot_id, version, policies, created_at, organization_id, domain_id)
SELECT md5(format('legacy-snapshot/%%s/%%s/%%s', %(seed)s::int, p.o, p.d))::uuid,
       1,
       jsonb_agg(
           jsonb_build_object(
               'id', format('pol-%%s-%%s-%%s', p.scope_domain, lpad(p.k::text, 3, '0'), p.kind),
               'name', format('%%s %%s for %%s', initcap(p.verdict), p.intent, p.agent),
               'description', format('%%s rule for %%s by %%s in %%s', p.kind, p.intent, p.agent, p.scope_domain),
               'spec_id', format('spec-s%%s-o%%s-%%s-%%s', %(seed)s::int, p.o, p.scope_domain,
                                 replace(p.intent, '.', '-')),
               'scope_id', p.scope_id::text,
               'scope', jsonb_build_object('domain', p.scope_domain, 'service', p.service, 'agent', p.agent,
                                           'environment', p.environment),
               'conditions', CASE p.kind
                   WHEN 'observe' THEN
                       '[{"field": "format", "operator": "in", "value": ["csv", "json", "parquet"]}]'::jsonb
                   WHEN 'allow' THEN
                       '[{"field": "risk_level", "operator": "in", "value": ["low", "medium"]}]'::jsonb
                   ELSE
                       '[{"field": "risk_level", "operator": "==", "value": "critical"}]'::jsonb
               END,
               'verdict', p.verdict
           )
           ORDER BY p.k, p.kind
       ),
       TIMESTAMPTZ '2024-10-05 00:00:00+00',
       md5(format('legacy-org/%%s/%%s', %(seed)s::int, p.o))::uuid,
       md5(format('legacy-domain/%%s/%%s/%%s', %(seed)s::int, p.o, p.d))::uuid
FROM (
    SELECT o, d, k, sc.scope_id, sc.scope_domain, sc.service, sc.agent, sc.environment, i.intent, kind,
           CASE kind WHEN 'observe' THEN 'OBSERVE' WHEN 'allow' THEN 'ALLOW'
                     ELSE CASE WHEN k %% 2 = 0 THEN 'PAUSE' ELSE 'BLOCK' END
           END AS verdict
    FROM generate_series(1, %(organizations)s::int) AS o,
         generate_series(1, %(domains_per_org)s::int) AS d,
         generate_series(1, %(scopes_per_domain)s::int) AS k,
         LATERAL (SELECT (%(intents)s::text[])[(k - 1) %% 3 + 1] AS intent,
                         (%(stages)s::text[])[(k - 1) %% 3 + 1] AS stage) AS i,
         LATERAL unnest(CASE WHEN i.stage = 'executed' THEN ARRAY['observe'] ELSE ARRAY['allow', 'guard'] END)
             AS kind,
         LATERAL (SELECT * FROM mandate.scopes
                  WHERE scope_id = md5(format('legacy-scope/%%s/%%s/%%s/%%s', %(seed)s::int, o, d, k))::uuid) AS sc
) AS p
GROUP BY p.o, p.d
"""

# The event statements below share this prefix. scope_map holds, once per generated scope, everything an event
# copies from its scope (computed with the same expressions as the governance statements above, so every UUID
# it names exists); base maps decision number g of the batch [first, last] round-robin to a scope and adds what
# varies per decision. Per-row work is kept to a few md5() calls and one JSON object: this runs millions of times.
_EVENT_BASE = """
WITH scope_map AS MATERIALIZED (
    SELECT (o - 1) * %(scopes_per_org)s + (d - 1) * %(scopes_per_domain)s + (k - 1) AS idx,
           k,
           dn.domain,
           md5(format('legacy-org/%%s/%%s', %(seed)s::int, o))::uuid AS organization_id,
           md5(format('legacy-domain/%%s/%%s/%%s', %(seed)s::int, o, d))::uuid AS domain_id,
           md5(format('legacy-scope/%%s/%%s/%%s/%%s', %(seed)s::int, o, d, k))::uuid AS scope_id,
           md5(format('legacy-snapshot/%%s/%%s/%%s', %(seed)s::int, o, d))::uuid AS snapshot_id,
           sel.service,
           sel.agent,
           sel.environment,
           it.intent,
           it.stage,
           format('spec-s%%s-o%%s-%%s-%%s', %(seed)s::int, o, dn.domain, replace(it.intent, '.', '-')) AS spec_id,
           format('%%s-team', dn.domain) AS owning_team,
           format('pol-%%s-%%s-', dn.domain, lpad(k::text, 3, '0')) AS policy_prefix,
           jsonb_build_object('organization_id', md5(format('legacy-org/%%s/%%s', %(seed)s::int, o))::uuid::text,
                              'domain_name', dn.domain, 'service', sel.service, 'agent', sel.agent,
                              'system', sel.scope_system, 'environment', sel.environment) AS scope_json
    FROM generate_series(1, %(organizations)s::int) AS o,
         generate_series(1, %(domains_per_org)s::int) AS d,
         generate_series(1, %(scopes_per_domain)s::int) AS k,
         LATERAL (SELECT (%(domain_names)s::text[])[d] AS domain) AS dn,
         LATERAL (SELECT (%(services)s::text[])[(k - 1) %% cardinality(%(services)s::text[]) + 1] AS service,
                         format('agent-s%%s-o%%s-%%s', %(seed)s::int, o, k) AS agent,
                         CASE WHEN k %% 4 = 0 THEN 'staging' ELSE 'production' END AS environment,
                         CASE WHEN k %% 4 = 0 THEN 'stage' ELSE 'prod' END AS scope_system) AS sel,
         LATERAL (SELECT (%(intents)s::text[])[(k - 1) %% 3 + 1] AS intent,
                         (%(stages)s::text[])[(k - 1) %% 3 + 1] AS stage) AS it
),
base AS (
    SELECT g,
           m.*,
           md5('legacy-decision/' || %(seed)s::int || '/' || g)::uuid AS decision_id,
           CASE m.intent
               WHEN 'data.export' THEN 's3://' || m.domain || '-exports/' || g || '.csv'
               WHEN 'database.drop_table' THEN replace(m.domain, '-', '_') || '_db.tmp_import_' || g %% 1000
               ELSE m.domain || '/records/' || g %% 100000
           END AS target,
           v.risk_level,
           v.verdict,
           m.policy_prefix || v.kind AS matched_policy_id,  -- NULL when no policy matched
           TIMESTAMPTZ '2025-01-01 00:00:00+00' + g * INTERVAL '3 seconds' AS ts
    FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS g
    JOIN scope_map AS m ON m.idx = (g - 1) %% %(total_scopes)s
    -- Risk rotates with each round over the scopes, so every scope sees every risk level.
    CROSS JOIN LATERAL (
        SELECT (ARRAY['low', 'medium', 'high', 'critical'])[((g - 1) / %(total_scopes)s + m.k) %% 4 + 1] AS risk_level
    ) AS r
    -- The verdict the scope's policies give (see _INSERT_SNAPSHOTS) and the kind of policy that matched, if any.
    CROSS JOIN LATERAL (
        SELECT r.risk_level,
               CASE WHEN m.stage = 'executed' THEN 'OBSERVE'
                    WHEN r.risk_level IN ('low', 'medium') THEN 'ALLOW'
                    WHEN r.risk_level = 'critical' AND m.k %% 2 = 0 THEN 'PAUSE'
                    WHEN r.risk_level = 'critical' THEN 'BLOCK'
                    ELSE 'OBSERVE'
               END AS verdict,
               CASE WHEN m.stage = 'executed' THEN 'observe'
                    WHEN r.risk_level IN ('low', 'medium') THEN 'allow'
                    WHEN r.risk_level = 'critical' THEN 'guard'
               END AS kind
    ) AS v
)
"""

_INSERT_DECISIONS = """
INSERT INTO mandate.decision_events (
    decision_id, intent, stage, actor, target, context, scope, timestamp, created_at,
    organization_id, domain_id, spec_id, spec_version
)
SELECT decision_id,
       intent,
       stage::mandate.stage,
       agent,
       target,
       CASE intent
           WHEN 'data.export' THEN jsonb_build_object(
               'format', (ARRAY['csv', 'json', 'parquet'])[g %% 3 + 1],
               'record_count', (g * 7919) %% 250000,
               'includes_pii', g %% 5 = 0,
               'requested_by', 'user-' || g %% 997 || '@' || domain || '.example',
               'destination', target,
               'reason', 'Scheduled export for monthly reporting')
           WHEN 'database.drop_table' THEN jsonb_build_object(
               'risk_level', risk_level,
               'reversible', g %% 3 <> 0,
               'backup_first', g %% 7 <> 0,
               'cascade', g %% 2 = 0,
               'estimated_rows', (g * 104729) %% 1000000,
               'ticket', 'CHG-' || 100000 + g,
               'reason', 'Cleanup of temporary import tables')
           ELSE jsonb_build_object(
               'risk_level', risk_level,
               'fields_changed', g %% 12 + 1,
               'record_id', 'rec-' || g %% 100000,
               'requested_by', 'user-' || g %% 997 || '@' || domain || '.example',
               'ticket', 'CHG-' || 100000 + g,
               'reason', 'Customer asked to update their details')
       END,
       scope_json,
       ts,
       ts + INTERVAL '20 milliseconds',
       organization_id,
       domain_id,
       spec_id,
       '1'
FROM base
"""

_INSERT_VERDICTS = """
INSERT INTO mandate.verdict_events (
    verdict_id, decision_id, snapshot_id, verdict, matched_policy_ids, timestamp, created_at,
    organization_id, domain_id, spec_id, spec_version, scope_id, domain, owning_team
)
SELECT md5('legacy-verdict/' || %(seed)s::int || '/' || g)::uuid,
       decision_id,
       snapshot_id,
       verdict::mandate.verdict,
       CASE WHEN matched_policy_id IS NULL THEN '{}'::text[] ELSE ARRAY[matched_policy_id] END,
       ts + INTERVAL '15 milliseconds',
       ts + INTERVAL '25 milliseconds',
       organization_id,
       domain_id,
       spec_id,
       '1',
       scope_id,
       domain,
       owning_team
FROM base
"""

_INSERT_TIMELINE = """
INSERT INTO mandate.audit_timeline_entries (
    entry_id, decision_id, intent, stage, actor, target, summary, details, severity, event_source,
    authority_level, timestamp, created_at, organization_id, domain_id, spec_id, spec_version
)
SELECT md5('legacy-timeline/' || %(seed)s::int || '/' || g || '/' || e.n)::uuid,
       decision_id,
       intent,
       stage::mandate.stage,
       CASE e.n WHEN 1 THEN agent ELSE 'mandate' END,
       target,
       CASE e.n
           WHEN 1 THEN 'Decision received: ' || intent || ' by ' || agent
           ELSE 'Verdict ' || verdict || ' for ' || intent
       END,
       CASE e.n
           WHEN 1 THEN jsonb_build_object('event', 'decision.received', 'service', service,
                                          'environment', environment)
           ELSE jsonb_build_object('event', 'verdict.issued', 'verdict', verdict,
                                   'scope_id', scope_id::text, 'snapshot_id', snapshot_id::text,
                                   'matched_policy_ids',
                                   CASE WHEN matched_policy_id IS NULL THEN '[]'::jsonb
                                        ELSE jsonb_build_array(matched_policy_id) END)
       END,
       CASE WHEN e.n = 2 AND verdict = 'BLOCK' THEN 'high'
            WHEN e.n = 2 AND verdict = 'PAUSE' THEN 'medium'
            ELSE 'info'
       END,
       (CASE e.n WHEN 1 THEN 'agent' ELSE 'system' END)::mandate.event_source,
       (CASE e.n WHEN 1 THEN 'agent' ELSE 'system' END)::mandate.authority_level,
       ts + (e.n - 1) * INTERVAL '15 milliseconds',
       ts + (e.n - 1) * INTERVAL '15 milliseconds' + INTERVAL '30 milliseconds',
       organization_id,
       domain_id,
       spec_id,
       '1'
FROM base, (VALUES (1), (2)) AS e (n)
"""


def _domain_names(count: int) -> list[str]:
    return [_DOMAIN_NAMES[i] if i < len(_DOMAIN_NAMES) else f"domain-{i + 1}" for i in range(count)]


def generate_events(
    conn: Connection,
    *,
    decisions: int,
    organizations: int = 3,
    domains_per_org: int = 3,
    scopes_per_domain: int = 20,
    seed: int = 0,
) -> GeneratedCounts:
    """Insert generated organizations, governance and ``decisions`` decisions with their verdicts and timelines.

    Each organization gets ``domains_per_org`` domains with the same names as every other organization's
    (``finance``, ``hr``, ``customer-support``, ...), each domain ``scopes_per_domain`` scopes (with owning
    teams), three active specs and one policy snapshot whose policies reference the scopes by UUID. Decisions
    are spread round-robin over all scopes; each has exactly one verdict (scope, domain name and owning team
    filled in) and two timeline entries, the second of which carries the scope UUID in ``details``.

    The same arguments always produce the same rows. Different seeds produce disjoint rows, so the function
    can be called several times on one database with different seeds (not twice with the same seed).
    """
    if decisions < 0:
        raise ValueError(f"decisions must be >= 0, got {decisions}")
    for name, value in (
        ("organizations", organizations),
        ("domains_per_org", domains_per_org),
        ("scopes_per_domain", scopes_per_domain),
    ):
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")

    params: dict[str, Any] = {
        "seed": seed,
        "organizations": organizations,
        "domains_per_org": domains_per_org,
        "scopes_per_domain": scopes_per_domain,
        "scopes_per_org": domains_per_org * scopes_per_domain,
        "total_scopes": organizations * domains_per_org * scopes_per_domain,
        "domain_names": _domain_names(domains_per_org),
        "services": list(_SERVICES),
        "intents": [intent for intent, _stage in _INTENTS],
        "stages": [stage for _intent, stage in _INTENTS],
    }
    with conn.cursor() as cur:
        for statement in (_INSERT_ORGANIZATIONS, _INSERT_DOMAINS, _INSERT_SCOPES, _INSERT_SPECS, _INSERT_SNAPSHOTS):
            cur.execute(statement, params)

        base = sql.SQL(_EVENT_BASE)
        event_statements = [
            sql.Composed([base, sql.SQL(statement)])
            for statement in (_INSERT_DECISIONS, _INSERT_VERDICTS, _INSERT_TIMELINE)
        ]
        # Batches keep each statement's pending foreign-key checks (one per row and key) to a bounded size.
        for first in range(1, decisions + 1, _GENERATED_BATCH):
            batch = {**params, "first": first, "last": min(first + _GENERATED_BATCH - 1, decisions)}
            for event_statement in event_statements:
                cur.execute(event_statement, batch)

    domains = organizations * domains_per_org
    return GeneratedCounts(
        organizations=organizations,
        domains=domains,
        scopes=domains * scopes_per_domain,
        mandate_specs=domains * len(_INTENTS),
        policy_snapshots=domains,
        decision_events=decisions,
        verdict_events=decisions,
        audit_timeline_entries=2 * decisions,
    )


# ---------------------------------------------------------------------------------------------------------------
# Messy data, one kind per function
# ---------------------------------------------------------------------------------------------------------------

_MESSY_NAMESPACE = uuid.UUID("3f1c9a52-6d0e-4b8a-9c51-2e7d4f0a8b61")


def _messy_id(key: str) -> uuid.UUID:
    """A stable UUID for a messy row, so tests can find it again (uuid5 of a readable key)."""
    return uuid.uuid5(_MESSY_NAMESPACE, key)


@contextmanager
def _foreign_keys_bypassed(conn: Connection) -> Iterator[None]:
    """Run the body with foreign-key (and all other non-ALWAYS trigger) enforcement off, then restore it.

    ``session_replication_role = replica`` stops PostgreSQL from firing ordinary triggers, which include the
    internal ones that check foreign keys; it is what logical replication uses to apply rows. It is set LOCAL
    inside a savepoint: if the body fails, rolling the savepoint back restores the setting; if it succeeds, the
    previous value is put back explicitly before the savepoint is released. Requires a superuser.
    """
    with conn.transaction():
        row = conn.execute("SHOW session_replication_role").fetchone()
        previous = row[0] if row else "origin"
        conn.execute("SET LOCAL session_replication_role = replica")
        yield
        conn.execute("SELECT set_config('session_replication_role', %s, true)", (previous,))


def _insert_organization(cur: psycopg.Cursor[Any], key: str) -> uuid.UUID:
    organization_id = _messy_id(f"{key}/organization")
    cur.execute(
        "INSERT INTO mandate.organizations (organization_id, name, description) VALUES (%s, %s, %s)",
        (organization_id, key, f"Messy legacy data: {key}"),
    )
    return organization_id


def _insert_domain(cur: psycopg.Cursor[Any], key: str, organization_id: uuid.UUID, name: str) -> uuid.UUID:
    domain_id = _messy_id(f"{key}/domain/{name}")
    cur.execute(
        "INSERT INTO mandate.domains (domain_id, organization_id, name) VALUES (%s, %s, %s)",
        (domain_id, organization_id, name),
    )
    return domain_id


def _insert_scope(
    cur: psycopg.Cursor[Any],
    key: str,
    *,
    organization_id: uuid.UUID | None,
    domain_id: uuid.UUID | None,
    scope_domain: str | None,
    service: str | None,
    agent: str | None,
    environment: str | None = "production",
    owning_team: str | None = "platform-team",
) -> uuid.UUID:
    scope_id = _messy_id(f"{key}/scope")
    cur.execute(
        """
        INSERT INTO mandate.scopes (
            scope_id, scope_domain, service, agent, environment, organization_id, domain_id, owning_team
        )
        VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
        """,
        (scope_id, scope_domain, service, agent, environment, organization_id, domain_id, owning_team),
    )
    return scope_id


def _insert_snapshot(
    cur: psycopg.Cursor[Any], key: str, organization_id: uuid.UUID | None, domain_id: uuid.UUID | None
) -> uuid.UUID:
    snapshot_id = _messy_id(f"{key}/snapshot")
    cur.execute(
        """
        INSERT INTO mandate.policy_snapshots (snapshot_id, version, policies, organization_id, domain_id)
        VALUES (%s, 1, '[]', %s, %s)
        """,
        (snapshot_id, organization_id, domain_id),
    )
    return snapshot_id


def _insert_decision(
    cur: psycopg.Cursor[Any],
    key: str,
    *,
    organization_id: uuid.UUID | None,
    domain_id: uuid.UUID | None,
    domain: str | None,
    with_timeline: bool = True,
) -> uuid.UUID:
    """One executed decision event (and, by default, its "received" timeline entry)."""
    decision_id = _messy_id(f"{key}/decision")
    scope = {"service": "legacy-service", "agent": "legacy-agent"}
    if domain is not None:
        scope["domain_name"] = domain
    cur.execute(
        """
        INSERT INTO mandate.decision_events (
            decision_id, intent, stage, actor, target, context, scope, timestamp, organization_id, domain_id
        )
        VALUES (%s, 'config.update', 'executed', 'legacy-agent', %s, %s, %s, %s, %s, %s)
        """,
        (
            decision_id,
            f"config/{key}",
            Jsonb({"key": "feature.flag", "old_value": "off", "new_value": "on"}),
            Jsonb(scope),
            "2024-06-01T12:00:00+00:00",
            organization_id,
            domain_id,
        ),
    )
    if with_timeline:
        cur.execute(
            """
            INSERT INTO mandate.audit_timeline_entries (
                entry_id, decision_id, intent, stage, actor, target, summary, details, severity,
                event_source, authority_level, timestamp, organization_id, domain_id
            )
            VALUES (%s, %s, 'config.update', 'executed', 'legacy-agent', %s, 'Decision received: config.update',
                    '{}', 'info', 'agent', 'agent', %s, %s, %s)
            """,
            (
                _messy_id(f"{key}/timeline"),
                decision_id,
                f"config/{key}",
                "2024-06-01T12:00:00+00:00",
                organization_id,
                domain_id,
            ),
        )
    return decision_id


def _insert_verdict(
    cur: psycopg.Cursor[Any],
    key: str,
    *,
    decision_id: uuid.UUID,
    snapshot_id: uuid.UUID,
    organization_id: uuid.UUID | None,
    domain_id: uuid.UUID | None,
    scope_id: uuid.UUID | None,
    domain: str | None,
    owning_team: str | None,
) -> uuid.UUID:
    verdict_id = _messy_id(f"{key}/verdict")
    cur.execute(
        """
        INSERT INTO mandate.verdict_events (
            verdict_id, decision_id, snapshot_id, verdict, timestamp,
            organization_id, domain_id, scope_id, domain, owning_team
        )
        VALUES (%s, %s, %s, 'OBSERVE', %s, %s, %s, %s, %s, %s)
        """,
        (
            verdict_id,
            decision_id,
            snapshot_id,
            "2024-06-01T12:00:01+00:00",
            organization_id,
            domain_id,
            scope_id,
            domain,
            owning_team,
        ),
    )
    return verdict_id


def add_unattributed_rows(conn: Connection) -> RowCounts:
    """Rows from before organizations and domains existed: everything about attribution is NULL.

    A snapshot, three decisions (each with a timeline entry) and their verdicts, all with NULL
    ``organization_id`` and ``domain_id``; the verdicts also have NULL ``domain``, ``scope_id`` and
    ``owning_team``. Migration 008 must not guess where they belong.
    """
    with conn.cursor() as cur:
        snapshot_id = _insert_snapshot(cur, "unattributed", None, None)
        for n in range(1, 4):
            key = f"unattributed/{n}"
            decision_id = _insert_decision(cur, key, organization_id=None, domain_id=None, domain=None)
            _insert_verdict(
                cur,
                key,
                decision_id=decision_id,
                snapshot_id=snapshot_id,
                organization_id=None,
                domain_id=None,
                scope_id=None,
                domain=None,
                owning_team=None,
            )
    return {"policy_snapshots": 1, "decision_events": 3, "verdict_events": 3, "audit_timeline_entries": 3}


def add_verdicts_without_scope_attribution(conn: Connection) -> RowCounts:
    """Verdicts written after organizations existed but before migration 007: ``domain_id`` set, but NULL
    ``domain``, ``scope_id`` and ``owning_team`` (the domain name can be recovered through ``domain_id``)."""
    key = "messy-pre-scope-attribution"
    with conn.cursor() as cur:
        organization_id = _insert_organization(cur, key)
        domain_id = _insert_domain(cur, key, organization_id, "operations")
        snapshot_id = _insert_snapshot(cur, key, organization_id, domain_id)
        for n in range(1, 3):
            row_key = f"{key}/{n}"
            decision_id = _insert_decision(
                cur, row_key, organization_id=organization_id, domain_id=domain_id, domain="operations"
            )
            _insert_verdict(
                cur,
                row_key,
                decision_id=decision_id,
                snapshot_id=snapshot_id,
                organization_id=organization_id,
                domain_id=domain_id,
                scope_id=None,
                domain=None,
                owning_team=None,
            )
    return {
        "organizations": 1,
        "domains": 1,
        "policy_snapshots": 1,
        "decision_events": 2,
        "verdict_events": 2,
        "audit_timeline_entries": 2,
    }


def add_non_slug_domains(conn: Connection) -> RowCounts:
    """Domains named ``Customer Support`` and ``Finance`` (free text, not slugs), each with a scope and a
    decision, in an organization of their own."""
    key = "messy-non-slug-domains"
    with conn.cursor() as cur:
        organization_id = _insert_organization(cur, key)
        for name, service in (("Customer Support", "helpdesk"), ("Finance", "invoicing")):
            domain_id = _insert_domain(cur, key, organization_id, name)
            _insert_scope(
                cur,
                f"{key}/{name}",
                organization_id=organization_id,
                domain_id=domain_id,
                scope_domain=name,
                service=service,
                agent="assistant",
                owning_team=f"{service}-team",
            )
            _insert_decision(cur, f"{key}/{name}", organization_id=organization_id, domain_id=domain_id, domain=name)
    return {"organizations": 1, "domains": 2, "scopes": 2, "decision_events": 2, "audit_timeline_entries": 2}


def add_colliding_domain_names(conn: Connection) -> RowCounts:
    """Two domains of one organization, ``Customer Support`` and ``customer-support``, that slug to the same
    value; each has a decision."""
    key = "messy-colliding-domains"
    with conn.cursor() as cur:
        organization_id = _insert_organization(cur, key)
        for name in ("Customer Support", "customer-support"):
            domain_id = _insert_domain(cur, key, organization_id, name)
            _insert_decision(cur, f"{key}/{name}", organization_id=organization_id, domain_id=domain_id, domain=name)
    return {"organizations": 1, "domains": 2, "decision_events": 2, "audit_timeline_entries": 2}


def add_scopes_without_owner(conn: Connection) -> RowCounts:
    """Two scopes with NULL ``owning_team`` (one fully specified, one with only the service set)."""
    key = "messy-unowned-scopes"
    with conn.cursor() as cur:
        organization_id = _insert_organization(cur, key)
        domain_id = _insert_domain(cur, key, organization_id, "platform")
        _insert_scope(
            cur,
            f"{key}/full",
            organization_id=organization_id,
            domain_id=domain_id,
            scope_domain="platform",
            service="deployer",
            agent="release-bot",
            owning_team=None,
        )
        _insert_scope(
            cur,
            f"{key}/partial",
            organization_id=organization_id,
            domain_id=domain_id,
            scope_domain="platform",
            service="scheduler",
            agent=None,
            environment=None,
            owning_team=None,
        )
    return {"organizations": 1, "domains": 1, "scopes": 2}


def add_scope_domain_mismatch(conn: Connection) -> RowCounts:
    """A scope whose free-text ``scope_domain`` (``shipping``) disagrees with the name of the domain its
    ``domain_id`` points to (``billing``)."""
    key = "messy-scope-domain-mismatch"
    with conn.cursor() as cur:
        organization_id = _insert_organization(cur, key)
        billing_id = _insert_domain(cur, key, organization_id, "billing")
        _insert_domain(cur, key, organization_id, "shipping")
        _insert_scope(
            cur,
            key,
            organization_id=organization_id,
            domain_id=billing_id,
            scope_domain="shipping",
            service="label-printer",
            agent="dispatch-bot",
            owning_team="logistics-team",
        )
    return {"organizations": 1, "domains": 2, "scopes": 1}


def add_colliding_scopes(conn: Connection) -> RowCounts:
    """Two scopes that differ only in spelling (service ``Billing API`` vs ``billing-api``), so their derived
    ids ``<domain>.<environment>.<service>.<agent>`` (slugged) are the same: ``payments.production.billing-api.
    invoice-bot``. The legacy unique index allows both, as their raw values differ."""
    key = "messy-colliding-scopes"
    with conn.cursor() as cur:
        organization_id = _insert_organization(cur, key)
        domain_id = _insert_domain(cur, key, organization_id, "payments")
        for n, service in enumerate(("Billing API", "billing-api"), start=1):
            _insert_scope(
                cur,
                f"{key}/{n}",
                organization_id=organization_id,
                domain_id=domain_id,
                scope_domain="payments",
                service=service,
                agent="invoice-bot",
                owning_team="payments-team",
            )
    return {"organizations": 1, "domains": 1, "scopes": 2}


def add_orphaned_domain_refs(conn: Connection) -> RowCounts:
    """A decision (with its timeline entry) and a scope whose ``domain_id`` names a domain that does not exist,
    as left behind by a manual cleanup. The foreign keys forbid this, so they are bypassed for the insert
    (see :func:`_foreign_keys_bypassed`)."""
    key = "messy-orphaned-domain"
    missing_domain_id = _messy_id(f"{key}/deleted-domain")
    with conn.cursor() as cur:
        organization_id = _insert_organization(cur, key)
        _insert_domain(cur, key, organization_id, "claims")
        with _foreign_keys_bypassed(conn):
            _insert_decision(cur, key, organization_id=organization_id, domain_id=missing_domain_id, domain=None)
            _insert_scope(
                cur,
                key,
                organization_id=organization_id,
                domain_id=missing_domain_id,
                scope_domain="claims-archive",
                service="archiver",
                agent="archive-bot",
                owning_team="claims-team",
            )
    return {"organizations": 1, "domains": 1, "scopes": 1, "decision_events": 1, "audit_timeline_entries": 1}


def add_verdicts_missing_scope(conn: Connection) -> RowCounts:
    """A verdict whose ``scope_id`` points to no scope (foreign keys bypassed for the insert)."""
    key = "messy-verdict-missing-scope"
    with conn.cursor() as cur:
        organization_id = _insert_organization(cur, key)
        domain_id = _insert_domain(cur, key, organization_id, "refunds")
        snapshot_id = _insert_snapshot(cur, key, organization_id, domain_id)
        decision_id = _insert_decision(cur, key, organization_id=organization_id, domain_id=domain_id, domain="refunds")
        with _foreign_keys_bypassed(conn):
            _insert_verdict(
                cur,
                key,
                decision_id=decision_id,
                snapshot_id=snapshot_id,
                organization_id=organization_id,
                domain_id=domain_id,
                scope_id=_messy_id(f"{key}/deleted-scope"),
                domain="refunds",
                owning_team="refunds-team",
            )
    return {
        "organizations": 1,
        "domains": 1,
        "policy_snapshots": 1,
        "decision_events": 1,
        "verdict_events": 1,
        "audit_timeline_entries": 1,
    }


def add_verdicts_missing_decision(conn: Connection) -> RowCounts:
    """A verdict whose ``decision_id`` points to no decision (foreign keys bypassed for the insert)."""
    key = "messy-verdict-missing-decision"
    with conn.cursor() as cur:
        organization_id = _insert_organization(cur, key)
        domain_id = _insert_domain(cur, key, organization_id, "travel")
        snapshot_id = _insert_snapshot(cur, key, organization_id, domain_id)
        scope_id = _insert_scope(
            cur,
            key,
            organization_id=organization_id,
            domain_id=domain_id,
            scope_domain="travel",
            service="booking",
            agent="trip-planner",
            owning_team="travel-team",
        )
        with _foreign_keys_bypassed(conn):
            _insert_verdict(
                cur,
                key,
                decision_id=_messy_id(f"{key}/deleted-decision"),
                snapshot_id=snapshot_id,
                organization_id=organization_id,
                domain_id=domain_id,
                scope_id=scope_id,
                domain="travel",
                owning_team="travel-team",
            )
    return {"organizations": 1, "domains": 1, "policy_snapshots": 1, "scopes": 1, "verdict_events": 1}


# ---------------------------------------------------------------------------------------------------------------
# What the original server itself wrote (LEGACY-SCHEMA.md, "What the original server itself wrote")
# ---------------------------------------------------------------------------------------------------------------

#: The owning team the original code wrote into verdicts when it could not resolve one.
PLACEHOLDER_OWNING_TEAM = "TODO_RESOLVE_OWNING_TEAM"

_INSERT_OUTCOME_REPORTS = """
INSERT INTO mandate.audit_timeline_entries (
    entry_id, decision_id, intent, stage, actor, target, summary, details, severity, event_source,
    authority_level, timestamp, created_at, organization_id, domain_id, spec_id, spec_version
)
SELECT md5('legacy-outcome/' || d.decision_id::text)::uuid,
       d.decision_id,
       'outcome',
       'executed',
       d.actor,
       d.target,
       'Outcome reported: executed',
       jsonb_build_object('outcome', 'executed', 'execution_success', true, 'reported_by', d.actor),
       'info',
       'agent',
       'agent',
       d."timestamp" + INTERVAL '2 seconds',
       d."timestamp" + INTERVAL '2 seconds',
       d.organization_id,
       d.domain_id,
       d.spec_id,
       d.spec_version
FROM mandate.decision_events d
WHERE d.stage = 'pre_commit'
  AND NOT EXISTS (SELECT 1 FROM mandate.audit_timeline_entries t
                  WHERE t.decision_id = d.decision_id AND t.stage = 'executed')
"""


def add_outcome_reports(conn: Connection) -> RowCounts:
    """The original server's outcome reports: for every decision stored at ``pre_commit`` (and not yet reported),
    one timeline entry with intent ``outcome``, stage ``executed``, event_source and authority_level ``agent`` —
    what its ``POST /api/v1/decisions/:id/outcome`` appended after every verdict. Call it after the decisions are
    written; it is set-based, so it costs one statement whatever the volume."""
    with conn.cursor() as cur:
        cur.execute(_INSERT_OUTCOME_REPORTS)
        inserted = cur.rowcount
    return {"audit_timeline_entries": inserted}


def add_original_server_history(conn: Connection) -> RowCounts:
    """A domain as the original server filled it, in an organization of its own (domain ``support``).

    - one spec (``chat.reply`` at ``pre_commit``) and one registered scope with an owning team;
    - two scopes created on the fly when decisions named an unseen service/environment: no owning team, no
      description, no contact, no agent;
    - policy snapshot version 1, written before specs existed: policies without ``spec_id``, one of them also
      without ``scope_id``; version 2 (the active one): policies bound to the spec, one on the registered scope
      and one on an on-the-fly scope;
    - four decisions at ``pre_commit`` with NULL ``spec_id``/``spec_version``, each with a verdict whose
      ``spec_version`` is NULL and whose ``owning_team`` is the placeholder ``TODO_RESOLVE_OWNING_TEAM`` (scope:
      an on-the-fly scope), a "received" timeline entry and an outcome report (stage ``executed``).
    """
    key = "messy-original-server"
    spec_id = "spec-support-chat-reply-v1"
    with conn.cursor() as cur:
        organization_id = _insert_organization(cur, key)
        domain_id = _insert_domain(cur, key, organization_id, "support")
        cur.execute(
            """
            INSERT INTO mandate.mandate_specs (
                spec_id, version, organization_id, domain, intent, stage, allowed_verdicts, signals, enforcement,
                status, created_at
            )
            VALUES (%s, '1', %s, 'support', 'chat.reply', 'pre_commit', '{ALLOW,PAUSE,BLOCK,OBSERVE}',
                    %s, '{}', 'active', '2024-05-01T00:00:00+00:00')
            """,
            (
                spec_id,
                organization_id,
                Jsonb([_signal("risk_level", "enum", required=True, values=("low", "medium", "high", "critical"))]),
            ),
        )
        registered = _insert_scope(
            cur,
            f"{key}/registered",
            organization_id=organization_id,
            domain_id=domain_id,
            scope_domain="support",
            service="chatbot",
            agent="reply-bot",
            owning_team="support-team",
        )
        on_the_fly = [
            _insert_scope(
                cur,
                f"{key}/on-the-fly/{service}",
                organization_id=organization_id,
                domain_id=domain_id,
                scope_domain="support",
                service=service,
                agent=None,
                environment=environment,
                owning_team=None,
            )
            for service, environment in (("chatbot", "staging"), ("mailer", "production"))
        ]

        def policy(pid: str, scope_id: uuid.UUID | None, *, spec: str | None, verdict: str) -> dict[str, Any]:
            p: dict[str, Any] = {
                "id": pid,
                "name": pid.replace("-", " "),
                "description": f"{verdict} critical replies",
                "scope": {"domain": "support", "service": "chatbot"},
                "conditions": [_condition("risk_level", "==", "critical")],
                "verdict": verdict,
            }
            if spec is not None:
                p["spec_id"] = spec
            if scope_id is not None:
                p["scope_id"] = str(scope_id)
            return p

        snapshots = (
            (
                1,
                "2024-03-01T00:00:00+00:00",
                [
                    policy("pol-support-prespec-block", registered, spec=None, verdict="BLOCK"),
                    policy("pol-support-prespec-unscoped", None, spec=None, verdict="PAUSE"),
                ],
            ),
            (
                2,
                "2024-09-01T00:00:00+00:00",
                [
                    policy("pol-support-block-critical", registered, spec=spec_id, verdict="BLOCK"),
                    policy("pol-support-pause-staging", on_the_fly[0], spec=spec_id, verdict="PAUSE"),
                ],
            ),
        )
        snapshot_ids = []
        for version, created_at, policies in snapshots:
            snapshot_id = _messy_id(f"{key}/snapshot/{version}")
            snapshot_ids.append(snapshot_id)
            cur.execute(
                """
                INSERT INTO mandate.policy_snapshots (snapshot_id, version, policies, created_at, organization_id,
                                                      domain_id)
                VALUES (%s, %s, %s, %s, %s, %s)
                """,
                (snapshot_id, version, Jsonb(policies), created_at, organization_id, domain_id),
            )
        for n in range(1, 5):
            row_key = f"{key}/{n}"
            decision_id = _messy_id(f"{row_key}/decision")
            at = f"2024-10-0{n}T09:00:00+00:00"
            cur.execute(
                """
                INSERT INTO mandate.decision_events (
                    decision_id, intent, stage, actor, target, context, scope, timestamp, organization_id, domain_id
                )
                VALUES (%s, 'chat.reply', 'pre_commit', 'reply-bot', %s, %s, %s, %s, %s, %s)
                """,
                (
                    decision_id,
                    f"ticket/{1000 + n}",
                    Jsonb({"risk_level": "low" if n % 2 else "critical"}),
                    Jsonb({"domain_name": "support", "service": "chatbot", "environment": "staging"}),
                    at,
                    organization_id,
                    domain_id,
                ),
            )
            cur.execute(
                """
                INSERT INTO mandate.verdict_events (
                    verdict_id, decision_id, snapshot_id, verdict, matched_policy_ids, timestamp, organization_id,
                    domain_id, spec_id, spec_version, scope_id, domain, owning_team
                )
                VALUES (%s, %s, %s, %s, %s, %s::timestamptz + INTERVAL '1 second', %s, %s, %s, NULL, %s, 'support',
                        %s)
                """,
                (
                    _messy_id(f"{row_key}/verdict"),
                    decision_id,
                    snapshot_ids[-1],
                    "ALLOW" if n % 2 else "PAUSE",
                    [] if n % 2 else ["pol-support-pause-staging"],
                    at,
                    organization_id,
                    domain_id,
                    spec_id,
                    on_the_fly[0],
                    PLACEHOLDER_OWNING_TEAM,
                ),
            )
            for stage, intent, summary, source, offset in (
                ("pre_commit", "chat.reply", "Decision received: chat.reply", "agent", "0 seconds"),
                ("executed", "outcome", "Outcome reported: executed", "agent", "2 seconds"),
            ):
                cur.execute(
                    """
                    INSERT INTO mandate.audit_timeline_entries (
                        entry_id, decision_id, intent, stage, actor, target, summary, details, severity,
                        event_source, authority_level, timestamp, organization_id, domain_id
                    )
                    VALUES (%s, %s, %s, %s, 'reply-bot', %s, %s, %s, 'info', %s, %s,
                            %s::timestamptz + %s::interval, %s, %s)
                    """,
                    (
                        _messy_id(f"{row_key}/timeline/{stage}"),
                        decision_id,
                        intent,
                        stage,
                        f"ticket/{1000 + n}",
                        summary,
                        Jsonb({"scope_id": str(on_the_fly[0])} if stage == "pre_commit" else {"outcome": "executed"}),
                        source,
                        source,
                        at,
                        offset,
                        organization_id,
                        domain_id,
                    ),
                )
    return {
        "organizations": 1,
        "domains": 1,
        "mandate_specs": 1,
        "scopes": 3,
        "policy_snapshots": 2,
        "decision_events": 4,
        "verdict_events": 4,
        "audit_timeline_entries": 8,
    }


#: The messes of :func:`build_corpus`: 008 migrates them once the operator gives the remedies of
#: :func:`corpus_remedies` (those it must refuse — orphaned references, verdicts without their scope or decision —
#: are tested on their own).
_CORPUS_STEPS: tuple[Callable[[Connection], RowCounts], ...] = (
    add_original_server_history,
    add_unattributed_rows,
    add_verdicts_without_scope_attribution,
    add_non_slug_domains,
    add_colliding_domain_names,
    add_scopes_without_owner,
    add_scope_domain_mismatch,
)
CORPUS_MESSES = tuple(step.__name__ for step in _CORPUS_STEPS)


def corpus_remedies() -> dict[str, Any]:
    """The remedies a corpus of :func:`build_corpus` needs, as `mandate migrate run 008` options (name → values):
    where unattributed history goes, and slugs for the non-slug and colliding domain names."""
    colliding_org = _messy_id("messy-colliding-domains/organization")
    return {
        "unattributed_to": f"{EXAMPLE_ORG_ID}/unattributed",
        "domain_slug": [
            "Customer Support=customer-support",
            "Finance=finance",
            f"{colliding_org}:Customer Support=customer-support-legacy",
        ],
    }


def build_corpus(conn: Connection, *, decisions: int, seed: int = 0) -> dict[str, int]:
    """A legacy database with every shape of LEGACY-SCHEMA.md: the original sample governance, ``decisions``
    generated decisions over three organizations whose domains share names, the original server's own history
    (NULL spec attribution, placeholder owning teams, on-the-fly scopes, spec-less policies), the messes of
    :data:`CORPUS_MESSES`, and an outcome report for every ``pre_commit`` decision. Returns rows per table."""
    insert_sample_governance(conn)
    generate_events(conn, decisions=decisions, organizations=3, domains_per_org=3, scopes_per_domain=6, seed=seed)
    for step in _CORPUS_STEPS:
        step(conn)
    add_outcome_reports(conn)
    counts = {}
    for table in (
        "organizations",
        "domains",
        "scopes",
        "policy_snapshots",
        "mandate_specs",
        "decision_events",
        "verdict_events",
        "audit_timeline_entries",
    ):
        row = conn.execute(sql.SQL("SELECT count(*) FROM mandate.{}").format(sql.Identifier(table))).fetchone()
        counts[table] = int(row[0]) if row else 0
    return counts
