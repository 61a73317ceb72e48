-- RFC-002 v1.2 domain identity: domain slugs instead of domain_id, human-readable scope ids, composite keys
--
-- What: every domain-bearing table gets a `domain` slug column filled from domains.name through the old
-- domain_id, and every domain_id is dropped; domains are keyed by (organization_id, domain); every scope's UUID
-- scope_id becomes a human-readable id that starts with its domain (the UUID is kept in legacy_scope_uuid), and
-- every reference is rewritten: verdict_events.scope_id, policies[*].scope_id inside policy snapshots, and
-- details.scope_id inside timeline entries. Composite foreign keys (organization_id, domain) -> domains, slug
-- CHECK constraints, the GOVERNANCE VIOLATION scope-prefix trigger, and append-only triggers on every table.
--
-- How: the large tables are REBUILT (CREATE new table, INSERT ... SELECT, drop the old one, rename) rather than
-- UPDATEd in place: an UPDATE of every row writes every row twice (old and new version), is several times slower,
-- doubles the table on disk, and would need the append-only triggers disabled. A rebuild writes each row once and
-- never touches the append-only guarantee: historical rows are never updated or deleted, they are copied.
--
-- Everything happens in ONE transaction: a failure (or a kill) at any point leaves the database exactly as it was.
-- Row counts are captured before and compared before COMMIT.
--
-- Operator remedies (filled by `mandate migrate run 008`, or by hand before running this file with psql):
--   mandate.migration_008_domain_slugs (organization_id uuid NULL = any, name text, slug text)
--       explicit slug for a domain name that is not a slug ('Customer Support' -> 'customer-support');
--   mandate.migration_008_scope_ids (legacy_scope_uuid uuid, scope_id text)
--       explicit human-readable id for a scope (otherwise derived: <domain>.<environment>.<system>.<service>.
--       <agent>.<tenant>, NULL parts skipped, each part slugged; <domain>.all when every selector is NULL);
--   mandate.migration_008_unattributed (organization_id uuid, domain text)
--       where rows without a domain_id go (at most one row). Never inferred: without it such rows stop 008.
-- The tables are created empty when absent, recorded in migration_log.details, and dropped at the end.
--
-- Run with: psql -d mandate < migrations/008_rfc002_domain_identity_migration.sql   (ON_ERROR_STOP is set below)
-- Running it on an already migrated database is a no-op that says so.
\set ON_ERROR_STOP on
SELECT NOT EXISTS (
    SELECT 1 FROM information_schema.columns
    WHERE table_schema = 'mandate' AND table_name = 'domains' AND column_name = 'domain_id'
) AS m008_already_applied
\gset
\if :m008_already_applied
\echo 'Migration 008 is already applied (mandate.domains has no domain_id column): nothing to do.'
\quit
\endif
BEGIN;

SET LOCAL search_path = mandate, public;

-- Outside the runner (plain psql), bound the wait for table locks; the runner sets its own timeouts.
DO $$
BEGIN
    IF current_setting('mandate.runner', true) IS DISTINCT FROM 'on' THEN
        PERFORM set_config('lock_timeout', '30s', true);
    END IF;
END
$$;

-- =================================================================================================================
DO $$ BEGIN RAISE NOTICE 'phase 1/10: lock tables and capture row counts'; END $$;
-- =================================================================================================================
LOCK TABLE mandate.organizations, mandate.domains, mandate.scopes, mandate.policy_snapshots,
    mandate.decision_events, mandate.verdict_events, mandate.audit_timeline_entries, mandate.mandate_specs
    IN ACCESS EXCLUSIVE MODE;

CREATE TEMP TABLE m008_counts ON COMMIT DROP AS
SELECT 'organizations' AS table_name, count(*) AS n FROM mandate.organizations
UNION ALL SELECT 'domains', count(*) FROM mandate.domains
UNION ALL SELECT 'scopes', count(*) FROM mandate.scopes
UNION ALL SELECT 'policy_snapshots', count(*) FROM mandate.policy_snapshots
UNION ALL SELECT 'decision_events', count(*) FROM mandate.decision_events
UNION ALL SELECT 'verdict_events', count(*) FROM mandate.verdict_events
UNION ALL SELECT 'audit_timeline_entries', count(*) FROM mandate.audit_timeline_entries
UNION ALL SELECT 'mandate_specs', count(*) FROM mandate.mandate_specs;

CREATE TABLE IF NOT EXISTS mandate.migration_008_domain_slugs (
    organization_id uuid,
    name text NOT NULL,
    slug text NOT NULL
);
CREATE TABLE IF NOT EXISTS mandate.migration_008_scope_ids (
    legacy_scope_uuid uuid PRIMARY KEY,
    scope_id text NOT NULL
);
CREATE TABLE IF NOT EXISTS mandate.migration_008_unattributed (
    organization_id uuid NOT NULL,
    domain text NOT NULL
);

CREATE OR REPLACE FUNCTION pg_temp.m008_slug(value text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT nullif(trim(BOTH '-' FROM regexp_replace(lower(value), '[^a-z0-9_-]+', '-', 'g')), '')
$$;

-- Raise an error naming up to ten offending rows, the count, and the remedy, when `offenders` is not empty.
CREATE OR REPLACE FUNCTION pg_temp.m008_gate(check_name text, offenders text[], remedy text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF coalesce(cardinality(offenders), 0) > 0 THEN
        RAISE EXCEPTION 'migration 008 pre-check failed: % (% row(s)): %', check_name, cardinality(offenders),
            array_to_string(offenders[1:10], '; ') || CASE WHEN cardinality(offenders) > 10 THEN '; …' ELSE '' END
            USING HINT = remedy, ERRCODE = 'check_violation';
    END IF;
END
$$;

-- =================================================================================================================
DO $$ BEGIN RAISE NOTICE 'phase 2/10: map domains to slugs'; END $$;
-- =================================================================================================================
SELECT pg_temp.m008_gate('more than one unattributed-history target',
    (SELECT array_agg(organization_id || '/' || domain) FROM mandate.migration_008_unattributed
     HAVING count(*) > 1),
    'keep exactly one row in mandate.migration_008_unattributed (--unattributed-to ORG_ID/DOMAIN)');

SELECT pg_temp.m008_gate('domains whose organization does not exist',
    (SELECT array_agg(format('%s (domain_id %s, organization %s)', quote_literal(d.name), d.domain_id,
                             d.organization_id))
     FROM mandate.domains d
     WHERE NOT EXISTS (SELECT 1 FROM mandate.organizations o WHERE o.organization_id = d.organization_id)),
    'the foreign key was bypassed at some point; restore the organizations from a backup before migrating');

CREATE TEMP TABLE m008_domains ON COMMIT DROP AS
SELECT d.domain_id, d.organization_id, d.name,
       coalesce(
           (SELECT m.slug FROM mandate.migration_008_domain_slugs m
            WHERE m.name = d.name AND (m.organization_id = d.organization_id OR m.organization_id IS NULL)
            ORDER BY m.organization_id NULLS LAST LIMIT 1),
           CASE WHEN d.name ~ '^[a-z0-9_-]+$' THEN d.name END) AS slug
FROM mandate.domains d;
ALTER TABLE m008_domains ADD PRIMARY KEY (domain_id);

SELECT pg_temp.m008_gate('domain names that are not slugs',
    (SELECT array_agg(format('%s (org %s, domain_id %s)', quote_literal(name), organization_id, domain_id)
                      ORDER BY name) FROM m008_domains WHERE slug IS NULL),
    'map each name to a slug explicitly: --domain-slug ''NAME=slug'' (never normalised silently)');
SELECT pg_temp.m008_gate('operator-supplied slugs that are not slugs',
    (SELECT array_agg(quote_literal(slug)) FROM mandate.migration_008_domain_slugs WHERE slug !~ '^[a-z0-9_-]+$'),
    'a slug matches ^[a-z0-9_-]+$');
SELECT pg_temp.m008_gate('domain names that map to the same slug in one organization',
    (SELECT array_agg(format('org %s: %s -> %s', organization_id, names, slug)) FROM (
        SELECT organization_id, slug, string_agg(quote_literal(name), ', ' ORDER BY name) AS names
        FROM m008_domains GROUP BY organization_id, slug HAVING count(*) > 1) c),
    'give the colliding domains distinct slugs with --domain-slug ''NAME=slug''');

-- The target of unattributed history: an existing domain (by slug) of that organization, or a new one.
CREATE TEMP TABLE m008_unattributed ON COMMIT DROP AS
SELECT u.organization_id, u.domain AS slug FROM mandate.migration_008_unattributed u;
SELECT pg_temp.m008_gate('unattributed-history target is not usable',
    (SELECT array_agg(format('%s/%s', u.organization_id, u.slug)) FROM m008_unattributed u
     WHERE u.slug !~ '^[a-z0-9_-]+$'
        OR NOT EXISTS (SELECT 1 FROM mandate.organizations o WHERE o.organization_id = u.organization_id)),
    'use --unattributed-to ORG_ID/DOMAIN with an existing organization and a slug-shaped domain');

-- Domains as they will be: the legacy ones (by slug), plus the unattributed target when it is new.
CREATE TEMP TABLE m008_new_domains ON COMMIT DROP AS
SELECT d.organization_id, m.slug AS domain, d.name, d.description, d.metadata, d.created_at,
       d.domain_id AS legacy_domain_id
FROM mandate.domains d JOIN m008_domains m USING (domain_id)
UNION ALL
SELECT u.organization_id, u.slug, u.slug, 'created by migration 008 to hold history without a domain',
       jsonb_build_object('created_by', 'migration 008'), now(), NULL
FROM m008_unattributed u
WHERE NOT EXISTS (SELECT 1 FROM m008_domains m WHERE m.organization_id = u.organization_id AND m.slug = u.slug);

-- =================================================================================================================
DO $$ BEGIN RAISE NOTICE 'phase 3/10: check references and attribution'; END $$;
-- =================================================================================================================
CREATE OR REPLACE FUNCTION pg_temp.m008_attribution_gate(tbl text, key text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    orphans text[];
    unattributed text[];
    mismatched text[];
BEGIN
    EXECUTE format('SELECT array_agg(%1$s::text || '' -> domain_id '' || t.domain_id) FROM mandate.%2$I t '
                   'WHERE t.domain_id IS NOT NULL AND NOT EXISTS '
                   '(SELECT 1 FROM m008_domains d WHERE d.domain_id = t.domain_id)', key, tbl) INTO orphans;
    PERFORM pg_temp.m008_gate(tbl || ' rows referencing a domain_id that does not exist', orphans,
        'restore the missing domains, or contact the Mandate team: these rows cannot be attributed');
    EXECUTE format('SELECT array_agg(%1$s::text) FROM mandate.%2$I t WHERE t.domain_id IS NULL', key, tbl)
        INTO unattributed;
    IF NOT EXISTS (SELECT 1 FROM m008_unattributed) THEN
        PERFORM pg_temp.m008_gate(tbl || ' rows with NULL domain_id (unattributed history)', unattributed,
            'choose where unattributed history goes: --unattributed-to ORG_ID/DOMAIN (recorded, never inferred)');
    END IF;
    EXECUTE format('SELECT array_agg(%1$s::text) FROM mandate.%2$I t '
                   'LEFT JOIN m008_domains d ON d.domain_id = t.domain_id '
                   'WHERE t.organization_id IS NOT NULL AND t.organization_id IS DISTINCT FROM '
                   'coalesce(d.organization_id, (SELECT organization_id FROM m008_unattributed))', key, tbl)
        INTO mismatched;
    PERFORM pg_temp.m008_gate(tbl || ' rows whose organization_id differs from their domain''s organization',
        mismatched, 'these rows contradict themselves; fix them on a copy, or choose another --unattributed-to');
END
$$;
SELECT pg_temp.m008_attribution_gate('scopes', 't.scope_id');
SELECT pg_temp.m008_attribution_gate('policy_snapshots', 't.snapshot_id');
SELECT pg_temp.m008_attribution_gate('decision_events', 't.decision_id');
SELECT pg_temp.m008_attribution_gate('verdict_events', 't.verdict_id');
SELECT pg_temp.m008_attribution_gate('audit_timeline_entries', 't.entry_id');

SELECT pg_temp.m008_gate('specs whose domain name is not a domain of their organization',
    (SELECT array_agg(format('%s@%s (domain %s)', s.spec_id, s.version, quote_literal(s.domain)))
     FROM mandate.mandate_specs s
     WHERE NOT EXISTS (SELECT 1 FROM m008_domains d
                       WHERE d.organization_id = s.organization_id AND (d.name = s.domain OR d.slug = s.domain))),
    'create the missing domain for that organization before migrating, or contact the Mandate team');
SELECT pg_temp.m008_gate('verdicts whose decision is missing',
    (SELECT array_agg(v.verdict_id::text) FROM mandate.verdict_events v
     WHERE NOT EXISTS (SELECT 1 FROM mandate.decision_events e WHERE e.decision_id = v.decision_id)),
    'the foreign key was bypassed at some point; restore the decisions from a backup before migrating');
SELECT pg_temp.m008_gate('verdicts whose scope is missing',
    (SELECT array_agg(v.verdict_id::text || ' -> scope ' || v.scope_id) FROM mandate.verdict_events v
     WHERE v.scope_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM mandate.scopes s WHERE s.scope_id = v.scope_id)),
    'the foreign key was bypassed at some point; restore the scopes from a backup before migrating');
SELECT pg_temp.m008_gate('verdicts whose policy snapshot is missing',
    (SELECT array_agg(v.verdict_id::text || ' -> snapshot ' || v.snapshot_id) FROM mandate.verdict_events v
     WHERE NOT EXISTS (SELECT 1 FROM mandate.policy_snapshots ps WHERE ps.snapshot_id = v.snapshot_id)),
    'the foreign key was bypassed at some point; restore the snapshots from a backup before migrating');
SELECT pg_temp.m008_gate('active specs that would share one (organization, domain, intent, stage)',
    (SELECT array_agg(format('org %s: %s/%s/%s <- %s', organization_id, slug, intent, stage, specs)) FROM (
        SELECT s.organization_id, m.slug, s.intent, s.stage,
               string_agg(s.spec_id || '@' || s.version, ', ' ORDER BY s.spec_id, s.version) AS specs
        FROM mandate.mandate_specs s
        CROSS JOIN LATERAL (SELECT d.slug FROM m008_domains d
                            WHERE d.organization_id = s.organization_id AND (d.name = s.domain OR d.slug = s.domain)
                            ORDER BY (d.name = s.domain) DESC LIMIT 1) m
        WHERE s.status = 'active'
        GROUP BY s.organization_id, m.slug, s.intent, s.stage HAVING count(*) > 1) c),
    'two domain names now map to one slug and both have an active spec for the same intent and stage; '
    'map the names to different slugs with --domain-slug');
SELECT pg_temp.m008_gate('timeline entries whose decision is missing',
    (SELECT array_agg(t.entry_id::text) FROM mandate.audit_timeline_entries t
     WHERE NOT EXISTS (SELECT 1 FROM mandate.decision_events e WHERE e.decision_id = t.decision_id)),
    'the foreign key was bypassed at some point; restore the decisions from a backup before migrating');

-- =================================================================================================================
DO $$ BEGIN RAISE NOTICE 'phase 4/10: derive human-readable scope ids'; END $$;
-- =================================================================================================================
CREATE TEMP TABLE m008_scopes ON COMMIT DROP AS
WITH attributed AS (
    SELECT s.*,
           coalesce(d.organization_id, u.organization_id) AS new_org,
           coalesce(d.slug, u.slug) AS new_domain
    FROM mandate.scopes s
    LEFT JOIN m008_domains d ON d.domain_id = s.domain_id
    LEFT JOIN m008_unattributed u ON s.domain_id IS NULL
)
SELECT a.scope_id AS legacy_scope_uuid, a.scope_id::text AS legacy_text, a.new_org AS organization_id,
       a.new_domain AS domain,
       coalesce(m.scope_id,
                a.new_domain || '.' || coalesce(nullif(concat_ws('.',
                    pg_temp.m008_slug(a.environment), pg_temp.m008_slug(a.scope_system),
                    pg_temp.m008_slug(a.service), pg_temp.m008_slug(a.agent), pg_temp.m008_slug(a.tenant)), ''),
                    'all')) AS scope_id,
       m.scope_id IS NOT NULL AS from_mapping
FROM attributed a
LEFT JOIN mandate.migration_008_scope_ids m ON m.legacy_scope_uuid = a.scope_id;
ALTER TABLE m008_scopes ADD PRIMARY KEY (legacy_scope_uuid);
CREATE UNIQUE INDEX ON m008_scopes (legacy_text);

SELECT pg_temp.m008_gate('scope ids that are not of the form <domain>.<part>[.<part>…] with slug parts',
    (SELECT array_agg(format('%s -> %s', legacy_scope_uuid, quote_literal(scope_id))) FROM m008_scopes
     WHERE scope_id !~ '^[a-z0-9_-]+(\.[a-z0-9_-]+)+$' OR left(scope_id, length(domain) + 1) <> domain || '.'),
    'give those scopes ids that start with ''<domain>.'' in --scope-id-map FILE');
SELECT pg_temp.m008_gate('scopes whose human-readable ids would collide',
    (SELECT array_agg(format('%s <- %s', scope_id, uuids)) FROM (
        SELECT scope_id, string_agg(legacy_scope_uuid::text, ', ' ORDER BY legacy_scope_uuid) AS uuids
        FROM m008_scopes GROUP BY scope_id HAVING count(*) > 1) c),
    'choose distinct ids for the colliding scopes in --scope-id-map FILE (legacy UUID -> scope id)');
SELECT pg_temp.m008_gate('scopes of one domain that select exactly the same agents',
    (SELECT array_agg(format('%s/%s: %s', organization_id, domain, uuids)) FROM (
        SELECT m.organization_id, m.domain, string_agg(m.legacy_scope_uuid::text, ', ' ORDER BY m.legacy_scope_uuid) AS uuids
        FROM m008_scopes m JOIN mandate.scopes s ON s.scope_id = m.legacy_scope_uuid
        GROUP BY m.organization_id, m.domain, coalesce(s.service, ''), coalesce(s.agent, ''),
                 coalesce(s.scope_system, ''), coalesce(s.environment, ''), coalesce(s.tenant, '')
        HAVING count(*) > 1) c),
    'they differed only in the free-text scope_domain, which no longer selects anything; two scopes with the same '
    'selectors cannot both hold authority — contact the Mandate team to merge them');
SELECT pg_temp.m008_gate('policies referencing a scope that does not exist',
    (SELECT array_agg(DISTINCT format('snapshot %s policy %s -> scope %s', ps.snapshot_id, p->>'id', p->>'scope_id'))
     FROM mandate.policy_snapshots ps, jsonb_array_elements(ps.policies) p
     WHERE p ? 'scope_id' AND jsonb_typeof(p->'scope_id') = 'string'
       AND NOT EXISTS (SELECT 1 FROM m008_scopes s WHERE s.legacy_text = p->>'scope_id')),
    'these policies are bound to no scope; restore the scopes, or contact the Mandate team');

-- =================================================================================================================
DO $$ BEGIN RAISE NOTICE 'phase 5/10: rebuild domains and scopes'; END $$;
-- =================================================================================================================
CREATE TABLE mandate.domains_m008 (
    organization_id uuid NOT NULL,
    domain text NOT NULL,
    name text,
    description text,
    metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    legacy_domain_id uuid
);
INSERT INTO mandate.domains_m008 SELECT * FROM m008_new_domains;

CREATE TABLE mandate.scopes_m008 (
    scope_id text NOT NULL,
    scope_domain text,
    service text,
    agent text,
    scope_system text,
    environment text,
    tenant text,
    created_at timestamptz NOT NULL DEFAULT now(),
    organization_id uuid NOT NULL,
    domain text NOT NULL,
    owning_team text,
    owner_contact text,
    description text,
    legacy_scope_uuid uuid
);
INSERT INTO mandate.scopes_m008
SELECT m.scope_id, s.scope_domain, s.service, s.agent, s.scope_system, s.environment, s.tenant, s.created_at,
       m.organization_id, m.domain, s.owning_team, s.owner_contact, s.description, s.scope_id
FROM mandate.scopes s JOIN m008_scopes m ON m.legacy_scope_uuid = s.scope_id;

-- =================================================================================================================
DO $$ BEGIN RAISE NOTICE 'phase 6/10: rebuild policy snapshots and specs'; END $$;
-- =================================================================================================================
CREATE TABLE mandate.policy_snapshots_m008 (
    snapshot_id uuid NOT NULL,
    version integer NOT NULL DEFAULT 1,
    policies jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    organization_id uuid NOT NULL,
    domain text NOT NULL
);
INSERT INTO mandate.policy_snapshots_m008
SELECT ps.snapshot_id, ps.version,
       coalesce((SELECT jsonb_agg(CASE WHEN s.scope_id IS NULL THEN p
                                       ELSE jsonb_set(p, '{scope_id}', to_jsonb(s.scope_id)) END ORDER BY e.ord)
                 FROM jsonb_array_elements(ps.policies) WITH ORDINALITY e(p, ord)
                 LEFT JOIN m008_scopes s ON s.legacy_text = e.p->>'scope_id'), '[]'::jsonb),
       ps.created_at,
       coalesce(d.organization_id, u.organization_id), coalesce(d.slug, u.slug)
FROM mandate.policy_snapshots ps
LEFT JOIN m008_domains d ON d.domain_id = ps.domain_id
LEFT JOIN m008_unattributed u ON ps.domain_id IS NULL;

CREATE TABLE mandate.mandate_specs_m008 (
    spec_id text NOT NULL,
    version text NOT NULL,
    organization_id uuid NOT NULL,
    domain text NOT NULL,
    intent text NOT NULL,
    stage mandate.stage NOT NULL,
    allowed_verdicts mandate.verdict[] NOT NULL,
    signals jsonb NOT NULL,
    enforcement jsonb NOT NULL,
    status text NOT NULL,
    replaced_by text,
    created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO mandate.mandate_specs_m008
SELECT s.spec_id, s.version, s.organization_id,
       (SELECT d.slug FROM m008_domains d
        WHERE d.organization_id = s.organization_id AND (d.name = s.domain OR d.slug = s.domain)
        ORDER BY (d.name = s.domain) DESC LIMIT 1),
       s.intent, s.stage, s.allowed_verdicts, s.signals, s.enforcement, s.status, s.replaced_by, s.created_at
FROM mandate.mandate_specs s;

-- =================================================================================================================
DO $$ BEGIN RAISE NOTICE 'phase 7/10: rebuild decision_events'; END $$;
-- =================================================================================================================
CREATE TABLE mandate.decision_events_m008 (
    decision_id uuid NOT NULL,
    intent text NOT NULL,
    stage mandate.stage NOT NULL,
    actor text NOT NULL,
    target text NOT NULL,
    context jsonb NOT NULL DEFAULT '{}'::jsonb,
    scope jsonb NOT NULL DEFAULT '{}'::jsonb,
    "timestamp" timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    organization_id uuid NOT NULL,
    domain text NOT NULL,
    spec_id text,
    spec_version text
);
INSERT INTO mandate.decision_events_m008
SELECT e.decision_id, e.intent, e.stage, e.actor, e.target, e.context, e.scope, e."timestamp", e.created_at,
       coalesce(d.organization_id, u.organization_id), coalesce(d.slug, u.slug), e.spec_id, e.spec_version
FROM mandate.decision_events e
LEFT JOIN m008_domains d ON d.domain_id = e.domain_id
LEFT JOIN m008_unattributed u ON e.domain_id IS NULL;

-- =================================================================================================================
DO $$ BEGIN RAISE NOTICE 'phase 8/10: rebuild verdict_events'; END $$;
-- =================================================================================================================
CREATE TABLE mandate.verdict_events_m008 (
    verdict_id uuid NOT NULL,
    decision_id uuid NOT NULL,
    snapshot_id uuid NOT NULL,
    verdict mandate.verdict NOT NULL,
    matched_policy_ids text[] NOT NULL DEFAULT '{}'::text[],
    "timestamp" timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    organization_id uuid NOT NULL,
    domain text NOT NULL,
    spec_id text,
    spec_version text,
    scope_id text,
    owning_team text
);
INSERT INTO mandate.verdict_events_m008
SELECT v.verdict_id, v.decision_id, v.snapshot_id, v.verdict, v.matched_policy_ids, v."timestamp", v.created_at,
       coalesce(d.organization_id, u.organization_id), coalesce(d.slug, u.slug), v.spec_id, v.spec_version,
       s.scope_id, v.owning_team
FROM mandate.verdict_events v
LEFT JOIN m008_domains d ON d.domain_id = v.domain_id
LEFT JOIN m008_unattributed u ON v.domain_id IS NULL
LEFT JOIN m008_scopes s ON s.legacy_scope_uuid = v.scope_id;

-- =================================================================================================================
DO $$ BEGIN RAISE NOTICE 'phase 9/10: rebuild audit_timeline_entries'; END $$;
-- =================================================================================================================
CREATE TABLE mandate.audit_timeline_entries_m008 (
    entry_id uuid NOT NULL DEFAULT gen_random_uuid(),
    decision_id uuid NOT NULL,
    intent text NOT NULL,
    stage mandate.stage NOT NULL,
    actor text NOT NULL,
    target text NOT NULL,
    summary text NOT NULL,
    details jsonb NOT NULL DEFAULT '{}'::jsonb,
    severity text NOT NULL,
    event_source mandate.event_source NOT NULL,
    authority_level mandate.authority_level NOT NULL,
    "timestamp" timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    organization_id uuid NOT NULL,
    domain text NOT NULL,
    spec_id text,
    spec_version text
);
INSERT INTO mandate.audit_timeline_entries_m008
SELECT t.entry_id, t.decision_id, t.intent, t.stage, t.actor, t.target, t.summary,
       CASE WHEN s.scope_id IS NULL THEN t.details ELSE jsonb_set(t.details, '{scope_id}', to_jsonb(s.scope_id)) END,
       t.severity, t.event_source, t.authority_level, t."timestamp", t.created_at,
       coalesce(d.organization_id, u.organization_id), coalesce(d.slug, u.slug), t.spec_id, t.spec_version
FROM mandate.audit_timeline_entries t
LEFT JOIN m008_domains d ON d.domain_id = t.domain_id
LEFT JOIN m008_unattributed u ON t.domain_id IS NULL
LEFT JOIN m008_scopes s ON jsonb_typeof(t.details) = 'object' AND s.legacy_text = t.details->>'scope_id';

-- Every converted scope reference must name a scope of its own row's (organization, domain): a legacy reference to
-- another domain's scope, or a timeline details.scope_id that names no scope, would break the domain-prefix
-- invariant and is refused here, before anything is swapped in.
SELECT pg_temp.m008_gate('scope references that would not start with their row''s domain',
    (SELECT array_agg(x) FROM (
        SELECT format('verdict %s (domain %s) -> scope %s', v.verdict_id, v.domain, v.scope_id) AS x
        FROM mandate.verdict_events_m008 v
        WHERE v.scope_id IS NOT NULL AND left(v.scope_id, length(v.domain) + 1) <> v.domain || '.'
        UNION ALL
        SELECT format('snapshot %s (domain %s) policy %s -> scope %s', ps.snapshot_id, ps.domain, p->>'id',
                      p->>'scope_id')
        FROM mandate.policy_snapshots_m008 ps, jsonb_array_elements(ps.policies) p
        WHERE jsonb_typeof(p->'scope_id') = 'string'
          AND left(p->>'scope_id', length(ps.domain) + 1) <> ps.domain || '.'
        UNION ALL
        SELECT format('timeline entry %s (domain %s) -> details.scope_id %s', t.entry_id, t.domain,
                      t.details->>'scope_id')
        FROM mandate.audit_timeline_entries_m008 t
        WHERE jsonb_typeof(t.details->'scope_id') = 'string'
          AND left(t.details->>'scope_id', length(t.domain) + 1) <> t.domain || '.') refs),
    'each names a scope of another domain, or (timeline details) a scope that does not exist; these rows '
    'contradict themselves — restore the scopes from a backup or contact the Mandate team before migrating');

-- =================================================================================================================
DO $$ BEGIN RAISE NOTICE 'phase 10/10: swap tables, keys, indexes, triggers, verification'; END $$;
-- =================================================================================================================
-- Drop the legacy tables, dependents first. No CASCADE: a view or foreign key of someone else's on these tables
-- stops the migration with PostgreSQL's own message instead of being dropped silently.
DROP TABLE mandate.audit_timeline_entries;
DROP TABLE mandate.verdict_events;
DROP TABLE mandate.decision_events;
DROP TABLE mandate.policy_snapshots;
DROP TABLE mandate.scopes;
DROP TABLE mandate.mandate_specs;
DROP TABLE mandate.domains;

ALTER TABLE mandate.domains_m008 RENAME TO domains;
ALTER TABLE mandate.scopes_m008 RENAME TO scopes;
ALTER TABLE mandate.policy_snapshots_m008 RENAME TO policy_snapshots;
ALTER TABLE mandate.mandate_specs_m008 RENAME TO mandate_specs;
ALTER TABLE mandate.decision_events_m008 RENAME TO decision_events;
ALTER TABLE mandate.verdict_events_m008 RENAME TO verdict_events;
ALTER TABLE mandate.audit_timeline_entries_m008 RENAME TO audit_timeline_entries;

-- domains ------------------------------------------------------------------------------------------------------
ALTER TABLE mandate.domains
    ADD PRIMARY KEY (organization_id, domain),
    ADD CONSTRAINT domains_domain_slug CHECK (domain ~ '^[a-z0-9_-]+$'),
    ADD CONSTRAINT domains_organization_id_fkey FOREIGN KEY (organization_id)
        REFERENCES mandate.organizations (organization_id);
CREATE INDEX idx_domains_organization_id ON mandate.domains (organization_id);
CREATE INDEX idx_domains_name ON mandate.domains (name);
CREATE INDEX idx_domains_created_at ON mandate.domains (created_at DESC);

-- scopes -------------------------------------------------------------------------------------------------------
ALTER TABLE mandate.scopes
    ADD PRIMARY KEY (scope_id),
    ADD CONSTRAINT scopes_legacy_scope_uuid_key UNIQUE (legacy_scope_uuid),
    ADD CONSTRAINT scopes_domain_slug CHECK (domain ~ '^[a-z0-9_-]+$'),
    ADD CONSTRAINT scopes_scope_id_format CHECK (scope_id ~ '^[a-z0-9_-]+(\.[a-z0-9_-]+)+$'),
    ADD CONSTRAINT scopes_scope_id_domain_prefix CHECK (left(scope_id, length(domain) + 1) = domain || '.'),
    -- Every scope created after 008 names its owning team; migrated scopes (legacy_scope_uuid set) may lack one.
    ADD CONSTRAINT scopes_owning_team_required CHECK (owning_team IS NOT NULL OR legacy_scope_uuid IS NOT NULL),
    ADD CONSTRAINT scopes_organization_id_fkey FOREIGN KEY (organization_id)
        REFERENCES mandate.organizations (organization_id),
    ADD CONSTRAINT scopes_organization_domain_fkey FOREIGN KEY (organization_id, domain)
        REFERENCES mandate.domains (organization_id, domain);
CREATE UNIQUE INDEX idx_scopes_unique ON mandate.scopes (organization_id, domain, COALESCE(service, ''),
    COALESCE(agent, ''), COALESCE(scope_system, ''), COALESCE(environment, ''), COALESCE(tenant, ''));
CREATE INDEX idx_scopes_org_domain ON mandate.scopes (organization_id, domain);
CREATE INDEX idx_scopes_service ON mandate.scopes (service);
CREATE INDEX idx_scopes_environment ON mandate.scopes (environment);
CREATE INDEX idx_scopes_tenant ON mandate.scopes (tenant);
CREATE INDEX idx_scopes_owning_team ON mandate.scopes (owning_team);

-- The scope-prefix rule as a trigger too, so a violation says GOVERNANCE VIOLATION in plain words.
CREATE FUNCTION mandate.enforce_scope_domain_prefix() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.domain IS NULL OR left(NEW.scope_id, length(NEW.domain) + 1) <> NEW.domain || '.' THEN
        RAISE EXCEPTION 'GOVERNANCE VIOLATION: scope_id "%" must start with its domain prefix "%."',
            NEW.scope_id, NEW.domain
            USING ERRCODE = 'check_violation',
                  HINT = 'scope ids embed their domain: <domain>.<environment>.<service>…';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER enforce_scope_domain_prefix BEFORE INSERT ON mandate.scopes
    FOR EACH ROW EXECUTE FUNCTION mandate.enforce_scope_domain_prefix();

-- policy_snapshots ---------------------------------------------------------------------------------------------
ALTER TABLE mandate.policy_snapshots
    ADD PRIMARY KEY (snapshot_id),
    ADD CONSTRAINT policy_snapshots_version_positive CHECK (version > 0),
    ADD CONSTRAINT policy_snapshots_policies_array CHECK (jsonb_typeof(policies) = 'array'),
    ADD CONSTRAINT policy_snapshots_domain_slug CHECK (domain ~ '^[a-z0-9_-]+$'),
    ADD CONSTRAINT policy_snapshots_organization_id_fkey FOREIGN KEY (organization_id)
        REFERENCES mandate.organizations (organization_id),
    ADD CONSTRAINT policy_snapshots_organization_domain_fkey FOREIGN KEY (organization_id, domain)
        REFERENCES mandate.domains (organization_id, domain);
CREATE INDEX idx_policy_snapshots_created_at ON mandate.policy_snapshots (created_at DESC);
CREATE INDEX idx_policy_snapshots_org_domain ON mandate.policy_snapshots (organization_id, domain);

-- mandate_specs ------------------------------------------------------------------------------------------------
ALTER TABLE mandate.mandate_specs
    ADD PRIMARY KEY (spec_id, version),
    ADD CONSTRAINT mandate_specs_status_check CHECK (status IN ('draft', 'active', 'deprecated')),
    ADD CONSTRAINT spec_signals_is_array CHECK (jsonb_typeof(signals) = 'array'),
    ADD CONSTRAINT spec_enforcement_is_object CHECK (jsonb_typeof(enforcement) = 'object'),
    ADD CONSTRAINT mandate_specs_domain_slug CHECK (domain ~ '^[a-z0-9_-]+$'),
    ADD CONSTRAINT mandate_specs_organization_domain_fkey FOREIGN KEY (organization_id, domain)
        REFERENCES mandate.domains (organization_id, domain);
CREATE UNIQUE INDEX idx_mandate_specs_active_unique ON mandate.mandate_specs (organization_id, domain, intent, stage)
    WHERE status = 'active';
CREATE INDEX idx_mandate_specs_org_domain ON mandate.mandate_specs (organization_id, domain);
CREATE INDEX idx_mandate_specs_intent ON mandate.mandate_specs (intent);
CREATE INDEX idx_mandate_specs_stage ON mandate.mandate_specs (stage);
CREATE INDEX idx_mandate_specs_status ON mandate.mandate_specs (status);
CREATE INDEX idx_mandate_specs_created_at ON mandate.mandate_specs (created_at DESC);

-- decision_events ----------------------------------------------------------------------------------------------
ALTER TABLE mandate.decision_events
    ADD PRIMARY KEY (decision_id),
    ADD CONSTRAINT decision_events_domain_slug CHECK (domain ~ '^[a-z0-9_-]+$'),
    ADD CONSTRAINT decision_events_organization_id_fkey FOREIGN KEY (organization_id)
        REFERENCES mandate.organizations (organization_id),
    ADD CONSTRAINT decision_events_organization_domain_fkey FOREIGN KEY (organization_id, domain)
        REFERENCES mandate.domains (organization_id, domain);
CREATE INDEX idx_decision_events_org_domain ON mandate.decision_events (organization_id, domain);
CREATE INDEX idx_decision_events_intent ON mandate.decision_events (intent);
CREATE INDEX idx_decision_events_stage ON mandate.decision_events (stage);
CREATE INDEX idx_decision_events_actor ON mandate.decision_events (actor);
CREATE INDEX idx_decision_events_target ON mandate.decision_events (target);
CREATE INDEX idx_decision_events_timestamp ON mandate.decision_events ("timestamp" DESC);
CREATE INDEX idx_decision_events_created_at ON mandate.decision_events (created_at DESC);
CREATE INDEX idx_decision_events_spec_id ON mandate.decision_events (spec_id, spec_version);
CREATE INDEX idx_decision_events_scope ON mandate.decision_events USING gin (scope);
CREATE INDEX idx_decision_events_context ON mandate.decision_events USING gin (context);

-- verdict_events -----------------------------------------------------------------------------------------------
ALTER TABLE mandate.verdict_events
    ADD PRIMARY KEY (verdict_id),
    ADD CONSTRAINT verdict_events_domain_slug CHECK (domain ~ '^[a-z0-9_-]+$'),
    ADD CONSTRAINT verdict_events_decision_id_fkey FOREIGN KEY (decision_id)
        REFERENCES mandate.decision_events (decision_id),
    ADD CONSTRAINT verdict_events_snapshot_id_fkey FOREIGN KEY (snapshot_id)
        REFERENCES mandate.policy_snapshots (snapshot_id),
    ADD CONSTRAINT verdict_events_scope_id_fkey FOREIGN KEY (scope_id) REFERENCES mandate.scopes (scope_id),
    ADD CONSTRAINT verdict_events_organization_id_fkey FOREIGN KEY (organization_id)
        REFERENCES mandate.organizations (organization_id),
    ADD CONSTRAINT verdict_events_organization_domain_fkey FOREIGN KEY (organization_id, domain)
        REFERENCES mandate.domains (organization_id, domain);
CREATE INDEX idx_verdict_events_org_domain ON mandate.verdict_events (organization_id, domain);
CREATE INDEX idx_verdict_events_decision_id ON mandate.verdict_events (decision_id);
CREATE INDEX idx_verdict_events_snapshot_id ON mandate.verdict_events (snapshot_id);
CREATE INDEX idx_verdict_events_verdict ON mandate.verdict_events (verdict);
CREATE INDEX idx_verdict_events_scope_id ON mandate.verdict_events (scope_id);
CREATE INDEX idx_verdict_events_owning_team ON mandate.verdict_events (owning_team);
CREATE INDEX idx_verdict_events_timestamp ON mandate.verdict_events ("timestamp" DESC);
CREATE INDEX idx_verdict_events_created_at ON mandate.verdict_events (created_at DESC);
CREATE INDEX idx_verdict_events_spec_id ON mandate.verdict_events (spec_id, spec_version);
CREATE INDEX idx_verdict_events_matched_policies ON mandate.verdict_events USING gin (matched_policy_ids);

-- audit_timeline_entries ---------------------------------------------------------------------------------------
ALTER TABLE mandate.audit_timeline_entries
    ADD PRIMARY KEY (entry_id),
    ADD CONSTRAINT audit_timeline_entries_domain_slug CHECK (domain ~ '^[a-z0-9_-]+$'),
    ADD CONSTRAINT audit_timeline_entries_decision_id_fkey FOREIGN KEY (decision_id)
        REFERENCES mandate.decision_events (decision_id),
    ADD CONSTRAINT audit_timeline_entries_organization_id_fkey FOREIGN KEY (organization_id)
        REFERENCES mandate.organizations (organization_id),
    ADD CONSTRAINT audit_timeline_entries_organization_domain_fkey FOREIGN KEY (organization_id, domain)
        REFERENCES mandate.domains (organization_id, domain);
CREATE INDEX idx_audit_timeline_org_domain ON mandate.audit_timeline_entries (organization_id, domain);
CREATE INDEX idx_audit_timeline_decision_id ON mandate.audit_timeline_entries (decision_id);
CREATE INDEX idx_audit_timeline_intent ON mandate.audit_timeline_entries (intent);
CREATE INDEX idx_audit_timeline_stage ON mandate.audit_timeline_entries (stage);
CREATE INDEX idx_audit_timeline_actor ON mandate.audit_timeline_entries (actor);
CREATE INDEX idx_audit_timeline_severity ON mandate.audit_timeline_entries (severity);
CREATE INDEX idx_audit_timeline_source ON mandate.audit_timeline_entries (event_source);
CREATE INDEX idx_audit_timeline_authority_level ON mandate.audit_timeline_entries (authority_level);
CREATE INDEX idx_audit_timeline_timestamp ON mandate.audit_timeline_entries ("timestamp" DESC);
CREATE INDEX idx_audit_timeline_created_at ON mandate.audit_timeline_entries (created_at DESC);
CREATE INDEX idx_audit_timeline_spec_id ON mandate.audit_timeline_entries (spec_id, spec_version);
CREATE INDEX idx_audit_timeline_details ON mandate.audit_timeline_entries USING gin (details);

-- migration_log (created here when 008 runs through plain psql on a legacy database) --------------------------
CREATE TABLE IF NOT EXISTS mandate.migration_log (
    migration_version integer PRIMARY KEY,
    name text NOT NULL,
    description text NOT NULL DEFAULT '',
    checksum text,
    started_at timestamptz NOT NULL,
    finished_at timestamptz NOT NULL,
    duration_ms numeric(12, 3) NOT NULL,
    applied_by text NOT NULL DEFAULT current_user,
    tool_version text NOT NULL,
    baseline boolean NOT NULL DEFAULT false,
    details jsonb NOT NULL DEFAULT '{}'::jsonb
);

-- Append-only, enforced by the database, on every table (the legacy triggers went with the legacy tables).
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['domains', 'scopes', 'policy_snapshots', 'mandate_specs', 'decision_events',
                             'verdict_events', 'migration_log'] LOOP
        EXECUTE format('CREATE TRIGGER %I BEFORE UPDATE OR DELETE ON mandate.%I '
                       'FOR EACH ROW EXECUTE FUNCTION mandate.prevent_mutation()', 'prevent_' || t || '_mutation', t);
    END LOOP;
END
$$;
CREATE TRIGGER prevent_audit_timeline_mutation BEFORE UPDATE OR DELETE ON mandate.audit_timeline_entries
    FOR EACH ROW EXECUTE FUNCTION mandate.prevent_mutation();
-- TRUNCATE bypasses row triggers; refuse it too.
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['organizations', 'domains', 'scopes', 'policy_snapshots', 'mandate_specs',
                             'decision_events', 'verdict_events', 'audit_timeline_entries', 'migration_log'] LOOP
        EXECUTE format('CREATE TRIGGER %I BEFORE TRUNCATE ON mandate.%I '
                       'FOR EACH STATEMENT EXECUTE FUNCTION mandate.prevent_mutation()', 'prevent_' || t || '_truncate', t);
    END LOOP;
END
$$;

-- Verification before COMMIT: nothing lost, nothing left unconverted. Any failure rolls everything back.
SELECT pg_temp.m008_gate('row counts changed during the migration',
    (SELECT array_agg(format('%s: %s before, %s after', c.table_name, c.n, a.n)) FROM m008_counts c
     JOIN (SELECT 'organizations' AS table_name, count(*) AS n FROM mandate.organizations
           UNION ALL SELECT 'domains', count(*) - (SELECT count(*) FROM mandate.domains WHERE legacy_domain_id IS NULL)
                     FROM mandate.domains
           UNION ALL SELECT 'scopes', count(*) FROM mandate.scopes
           UNION ALL SELECT 'policy_snapshots', count(*) FROM mandate.policy_snapshots
           UNION ALL SELECT 'decision_events', count(*) FROM mandate.decision_events
           UNION ALL SELECT 'verdict_events', count(*) FROM mandate.verdict_events
           UNION ALL SELECT 'audit_timeline_entries', count(*) FROM mandate.audit_timeline_entries
           UNION ALL SELECT 'mandate_specs', count(*) FROM mandate.mandate_specs) a USING (table_name)
     WHERE a.n <> c.n),
    'a bug: nothing was changed (rolled back); report it to the Mandate team');

-- The database's default search_path includes mandate, so the checklist's plain psql commands work as written.
-- Only the database's owner may set it; anyone else gets a warning rather than a failed migration.
DO $$
BEGIN
    EXECUTE format('ALTER DATABASE %I SET search_path = mandate, public', current_database());
EXCEPTION WHEN insufficient_privilege THEN
    RAISE WARNING 'could not set the default search_path of database % (not its owner): run '
                  'ALTER DATABASE % SET search_path = mandate, public as its owner', current_database(), current_database();
END
$$;

-- Record the migration when run through plain psql; the runner records it itself (with the file's checksum).
DO $$
DECLARE
    remedies jsonb;
BEGIN
    IF current_setting('mandate.runner', true) IS DISTINCT FROM 'on' THEN
        INSERT INTO mandate.migration_log (migration_version, name, description, checksum, started_at, finished_at,
                                           duration_ms, tool_version, baseline)
        SELECT v.version, v.name, 'baseline: legacy schema adopted by 008 run through psql', NULL, now(), now(), 0,
               'psql', true
        FROM (VALUES (1, 'core_schema'), (2, 'policy_snapshots_and_verdicts'), (3, 'audit_timeline'),
                     (4, 'scopes'), (5, 'organizational_scope'), (6, 'mandate_specs'),
                     (7, 'verdict_scope_attribution')) v(version, name)
        WHERE NOT EXISTS (SELECT 1 FROM mandate.migration_log l WHERE l.migration_version = v.version);
        remedies := jsonb_build_object(
            'domain_slugs', (SELECT coalesce(jsonb_agg(to_jsonb(m)), '[]') FROM mandate.migration_008_domain_slugs m),
            'scope_ids', (SELECT coalesce(jsonb_agg(to_jsonb(m)), '[]') FROM mandate.migration_008_scope_ids m),
            'unattributed_to', (SELECT to_jsonb(m) FROM mandate.migration_008_unattributed m));
        INSERT INTO mandate.migration_log (migration_version, name, description, checksum, started_at, finished_at,
                                           duration_ms, tool_version, details)
        VALUES (8, 'rfc002_domain_identity_migration',
                'RFC-002 v1.2 domain identity: domain slugs instead of domain_id, human-readable scope ids',
                NULL, now(), clock_timestamp(),
                round((extract(epoch FROM clock_timestamp() - now()) * 1000)::numeric, 3), 'psql',
                jsonb_build_object('remedies', remedies));
    END IF;
END
$$;

DROP TABLE mandate.migration_008_domain_slugs;
DROP TABLE mandate.migration_008_scope_ids;
DROP TABLE mandate.migration_008_unattributed;

COMMIT;
