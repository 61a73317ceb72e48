-- Migration 008 pre-migration checks (RFC-002 v1.2 domain identity): is this database ready for 008?
--
-- What: every condition that makes migration 008 refuse to run (its gates, and what would otherwise stop it with a
-- raw PostgreSQL error), checked up front and reported with the offending rows and the remedy; plus the facts the
-- checklist asks for before the maintenance window (server version, database size, row counts, other sessions)
-- and warnings that do not stop 008 (scopes without an owning team, verdicts without a scope, ...).
-- Why: the checklist's "Final Pre-Checks" and "T+5: Pre-Migration Validation" steps. It gates the migration: any
-- FAIL means 008 would refuse (or fail), so do not proceed.
--
-- Run with (exactly as the checklist writes it; ON_ERROR_STOP is set below):
--     psql -d mandate < migrations/008_PRE_MIGRATION_CHECKS.sql
--     psql -v ON_ERROR_STOP=1 -d mandate -f migrations/008_PRE_MIGRATION_CHECKS.sql
-- psql prints one row per check (PASS, FAIL, WARN or INFO, what was measured, up to ten offending rows and the
-- remedy) and exits non-zero when any check FAILs; warnings do not fail. It never changes the database: everything
-- runs in one transaction that is rolled back, using a temporary table and temporary helper functions only.
--
-- Operator remedies are honoured when their tables exist (mandate migrate run 008 fills them from its options; by
-- hand, create them as described at the top of 008_rfc002_domain_identity_migration.sql):
--   mandate.migration_008_domain_slugs (organization_id uuid NULL = any, name text, slug text)  --domain-slug
--   mandate.migration_008_scope_ids (legacy_scope_uuid uuid, scope_id text)                    --scope-id-map
--   mandate.migration_008_unattributed (organization_id uuid, domain text), at most one row     --unattributed-to
--
-- Layout (the runbook executes this same file): psql settings, BEGIN, the results table, helper functions, one
-- INSERT per check, the report; after the "@@gate@@" marker, the block that fails the run, and ROLLBACK. The
-- runbook runs the part before the marker in its own transaction and reads m008_check_results itself.
-- On a database that is not in the legacy shape (already migrated, or not a Mandate database) the data checks are
-- skipped and PRE-06 says why.
\set ON_ERROR_STOP on
\set QUIET on
\pset pager off
\pset border 2
\pset format aligned
\pset null ''
\pset footer off
BEGIN;
CREATE TEMP TABLE m008_check_results (check_id text, section text, title text, status text CHECK (status IN ('PASS','FAIL','WARN','INFO')), measured text, offending_count bigint, sample text[], remedy text) ON COMMIT DROP;

-- =================================================================================================================
-- Helper functions (temporary: they disappear with the transaction)
-- =================================================================================================================

-- 008's slug function, verbatim: lower case, runs of other characters become '-', no leading/trailing '-'.
CREATE OR REPLACE FUNCTION pg_temp.m008_slug(value text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT nullif(trim(BOTH '-' FROM regexp_replace(lower(value), '[^a-z0-9_-]+', '-', 'g')), '')
$$;

-- Is schema mandate in the legacy shape 008 converts (and not yet migrated)? With the reason, and what differs.
CREATE OR REPLACE FUNCTION pg_temp.m008_legacy_state(OUT legacy boolean, OUT state text, OUT details text[])
LANGUAGE plpgsql AS $$
DECLARE
    has_v8 boolean := false;
    logged text;
BEGIN
    IF to_regnamespace('mandate') IS NULL THEN
        legacy := false;
        state := 'not a Mandate database: there is no schema mandate (wrong database?)';
        RETURN;
    END IF;
    IF to_regclass('mandate.migration_log') IS NOT NULL AND EXISTS (
        SELECT 1 FROM pg_attribute
        WHERE attrelid = to_regclass('mandate.migration_log') AND attname = 'migration_version' AND NOT attisdropped
    ) THEN
        EXECUTE 'SELECT bool_or(migration_version = 8), ''versions '' || string_agg(migration_version::text, '', '' '
                'ORDER BY migration_version) FROM mandate.migration_log' INTO has_v8, logged;
    END IF;
    IF coalesce(has_v8, false) THEN
        legacy := false;
        state := 'already migrated: mandate.migration_log records version 8';
        RETURN;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass('mandate.domains') AND attname = 'domain'
               AND attnum > 0 AND NOT attisdropped)
       AND NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass('mandate.domains')
                       AND attname = 'domain_id' AND attnum > 0 AND NOT attisdropped) THEN
        legacy := false;
        state := 'already migrated: mandate.domains has a domain column and no domain_id';
        RETURN;
    END IF;
    -- The legacy columns these checks (and 008) read, with the types that matter.
    SELECT array_agg(format('mandate.%s.%s %s', r.tbl, r.col,
                            CASE WHEN a.attname IS NULL THEN 'is absent'
                                 ELSE format('is %s, legacy has %s', a.atttypid::regtype, r.typ) END)
                     ORDER BY r.tbl, r.col)
    INTO details
    FROM (VALUES ('organizations', 'organization_id', 'uuid'),
                 ('domains', 'domain_id', 'uuid'), ('domains', 'organization_id', 'uuid'), ('domains', 'name', 'text'),
                 ('scopes', 'scope_id', 'uuid'), ('scopes', 'scope_domain', 'text'), ('scopes', 'service', 'text'),
                 ('scopes', 'agent', 'text'), ('scopes', 'scope_system', 'text'), ('scopes', 'environment', 'text'),
                 ('scopes', 'tenant', 'text'), ('scopes', 'organization_id', 'uuid'), ('scopes', 'domain_id', 'uuid'),
                 ('scopes', 'owning_team', 'text'),
                 ('policy_snapshots', 'snapshot_id', 'uuid'), ('policy_snapshots', 'policies', 'jsonb'),
                 ('policy_snapshots', 'organization_id', 'uuid'), ('policy_snapshots', 'domain_id', 'uuid'),
                 ('decision_events', 'decision_id', 'uuid'), ('decision_events', 'organization_id', 'uuid'),
                 ('decision_events', 'domain_id', 'uuid'),
                 ('verdict_events', 'verdict_id', 'uuid'), ('verdict_events', 'decision_id', 'uuid'),
                 ('verdict_events', 'snapshot_id', 'uuid'), ('verdict_events', 'organization_id', 'uuid'),
                 ('verdict_events', 'domain_id', 'uuid'), ('verdict_events', 'scope_id', 'uuid'),
                 ('verdict_events', 'domain', 'text'),
                 ('audit_timeline_entries', 'entry_id', 'uuid'), ('audit_timeline_entries', 'decision_id', 'uuid'),
                 ('audit_timeline_entries', 'details', 'jsonb'), ('audit_timeline_entries', 'organization_id', 'uuid'),
                 ('audit_timeline_entries', 'domain_id', 'uuid'),
                 ('mandate_specs', 'spec_id', 'text'), ('mandate_specs', 'version', 'text'),
                 ('mandate_specs', 'organization_id', 'uuid'), ('mandate_specs', 'domain', 'text'),
                 ('mandate_specs', 'intent', 'text'), ('mandate_specs', 'stage', 'mandate.stage'),
                 ('mandate_specs', 'status', 'text')) AS r (tbl, col, typ)
    LEFT JOIN pg_attribute a
           ON a.attrelid = to_regclass('mandate.' || r.tbl) AND a.attname = r.col AND a.attnum > 0
          AND NOT a.attisdropped
    WHERE a.attname IS NULL OR a.atttypid IS DISTINCT FROM to_regtype(r.typ);
    IF details IS NOT NULL THEN
        legacy := false;
        state := format('not the legacy schema 008 converts: %s column(s) differ', cardinality(details));
        RETURN;
    END IF;
    legacy := true;
    state := 'legacy schema (001-007), not yet migrated; migration_log: '
             || coalesce(logged, CASE WHEN to_regclass('mandate.migration_log') IS NULL THEN 'absent' ELSE 'empty' END);
END
$$;

CREATE OR REPLACE FUNCTION pg_temp.m008_is_legacy() RETURNS boolean
LANGUAGE sql AS $$
    SELECT legacy FROM pg_temp.m008_legacy_state()
$$;

-- The operator remedies, read when their tables exist (dynamic SQL: they usually do not).
CREATE OR REPLACE FUNCTION pg_temp.m008_remedy_domain_slugs() RETURNS TABLE (organization_id uuid, name text, slug text)
LANGUAGE plpgsql AS $$
BEGIN
    IF to_regclass('mandate.migration_008_domain_slugs') IS NOT NULL THEN
        RETURN QUERY EXECUTE 'SELECT organization_id::uuid, name::text, slug::text '
                             'FROM mandate.migration_008_domain_slugs';
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION pg_temp.m008_remedy_scope_ids() RETURNS TABLE (legacy_scope_uuid uuid, scope_id text)
LANGUAGE plpgsql AS $$
BEGIN
    IF to_regclass('mandate.migration_008_scope_ids') IS NOT NULL THEN
        RETURN QUERY EXECUTE 'SELECT legacy_scope_uuid::uuid, scope_id::text FROM mandate.migration_008_scope_ids';
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION pg_temp.m008_remedy_unattributed() RETURNS TABLE (organization_id uuid, domain text)
LANGUAGE plpgsql AS $$
BEGIN
    IF to_regclass('mandate.migration_008_unattributed') IS NOT NULL THEN
        RETURN QUERY EXECUTE 'SELECT organization_id::uuid, domain::text FROM mandate.migration_008_unattributed';
    END IF;
END
$$;

-- Where history without a domain goes: the single row of migration_008_unattributed (none when 0 or >1 rows;
-- more than one is reported by PRE-08, as 008 refuses it).
CREATE OR REPLACE FUNCTION pg_temp.m008_target() RETURNS TABLE (organization_id uuid, slug text)
LANGUAGE sql AS $$
    SELECT u.organization_id, u.domain FROM pg_temp.m008_remedy_unattributed() u
    WHERE (SELECT count(*) FROM pg_temp.m008_remedy_unattributed()) = 1
$$;

-- 008's m008_domains: each legacy domain with its slug (operator mapping first, else the name if it is a slug).
CREATE OR REPLACE FUNCTION pg_temp.m008_domains()
RETURNS TABLE (domain_id uuid, organization_id uuid, name text, slug text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    WITH m AS (SELECT * FROM pg_temp.m008_remedy_domain_slugs())
    SELECT d.domain_id, d.organization_id, d.name,
           coalesce((SELECT m.slug FROM m
                     WHERE m.name = d.name AND (m.organization_id = d.organization_id OR m.organization_id IS NULL)
                     ORDER BY m.organization_id NULLS LAST LIMIT 1),
                    CASE WHEN d.name ~ '^[a-z0-9_-]+$' THEN d.name END)
    FROM mandate.domains d;
END
$$;

-- 008's m008_scopes: each legacy scope with its future organization, domain and human-readable id (from the
-- operator's map, else <domain>.<environment>.<system>.<service>.<agent>.<tenant>, NULL parts skipped, each part
-- slugged, <domain>.all when none). domain and scope_id are NULL when the scope's domain cannot be resolved
-- (orphaned, unattributed without a target, or a name without a slug: other checks report those).
CREATE OR REPLACE FUNCTION pg_temp.m008_scopes()
RETURNS TABLE (legacy_scope_uuid uuid, organization_id uuid, domain text, scope_id text, from_mapping boolean,
               legacy_domain_id uuid, scope_domain text, service text, agent text, scope_system text,
               environment text, tenant text, owning_team text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    WITH dom AS (SELECT * FROM pg_temp.m008_domains()),
         tgt AS (SELECT * FROM pg_temp.m008_target()),
         map AS (SELECT * FROM pg_temp.m008_remedy_scope_ids())
    SELECT a.scope_id, a.new_org, a.new_domain,
           coalesce(m.scope_id,
                    a.new_domain || '.' || coalesce(nullif(concat_ws('.',
                        pg_temp.m008_slug(a.environment), pg_temp.m008_slug(a.scope_system),
                        pg_temp.m008_slug(a.service), pg_temp.m008_slug(a.agent), pg_temp.m008_slug(a.tenant)), ''),
                        'all')),
           m.scope_id IS NOT NULL,
           a.domain_id, a.scope_domain, a.service, a.agent, a.scope_system, a.environment, a.tenant, a.owning_team
    FROM (SELECT s.*, coalesce(d.organization_id, u.organization_id) AS new_org, coalesce(d.slug, u.slug) AS new_domain
          FROM mandate.scopes s
          LEFT JOIN dom d ON d.domain_id = s.domain_id
          LEFT JOIN tgt u ON s.domain_id IS NULL) a
    LEFT JOIN map m ON m.legacy_scope_uuid = a.scope_id;
END
$$;

-- Run one check's query (two text columns: a group, e.g. the table, and the offending row) when the database is
-- in the legacy shape: how many rows, how many per group, the first ten, or the error that stopped the query.
-- Returns no row at all when the database is not in the legacy shape (the check is then skipped).
-- JIT compilation is off for these calls: it costs seconds per query and saves little on simple scans.
CREATE OR REPLACE FUNCTION pg_temp.m008_probe(query text)
RETURNS TABLE (n bigint, groups text, sample text[], error text)
LANGUAGE plpgsql SET jit = off AS $$
BEGIN
    IF query IS NULL OR NOT pg_temp.m008_is_legacy() THEN
        RETURN;
    END IF;
    BEGIN
        RETURN QUERY EXECUTE format($f$
            WITH g AS (
                SELECT grp, count(*) AS c, min(rn) AS first_rn,
                       array_agg(item ORDER BY rn) FILTER (WHERE rn <= 10) AS items
                FROM (SELECT q.grp::text AS grp, q.item::text AS item, row_number() OVER () AS rn
                      FROM (%s) AS q (grp, item)) AS x
                GROUP BY grp)
            SELECT coalesce((SELECT sum(c) FROM g), 0)::bigint,
                   (SELECT string_agg(coalesce(g.grp, '?') || ' ' || g.c, ', ' ORDER BY g.first_rn) FROM g),
                   (SELECT array_agg(i.item ORDER BY g.first_rn, i.ord)
                    FROM g, unnest(g.items) WITH ORDINALITY AS i (item, ord)),
                   NULL::text
        $f$, query);
    EXCEPTION WHEN OTHERS THEN
        RETURN QUERY SELECT NULL::bigint, NULL::text, NULL::text[], SQLERRM;
    END;
END
$$;

CREATE OR REPLACE FUNCTION pg_temp.m008_status(n bigint, error text, if_found text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN error IS NOT NULL THEN 'FAIL' WHEN n > 0 THEN if_found ELSE 'PASS' END
$$;

CREATE OR REPLACE FUNCTION pg_temp.m008_measured(n bigint, error text, if_none text, if_found text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN error IS NOT NULL THEN 'the check could not run: ' || error WHEN n > 0 THEN if_found
                ELSE if_none END
$$;

-- Word-wrap for the report: lines of at most `width` characters (longer words stay whole), continued with `indent`.
CREATE OR REPLACE FUNCTION pg_temp.m008_wrap(value text, width integer, indent text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT rtrim(regexp_replace(value || ' ', '(.{1,' || width || '}) +', E'\\1\n' || indent, 'g'), E'\n ')
$$;

CREATE OR REPLACE FUNCTION pg_temp.m008_count(tbl text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    IF to_regclass(format('mandate.%I', tbl)) IS NULL THEN
        RETURN NULL;
    END IF;
    EXECUTE format('SELECT count(*) FROM mandate.%I', tbl) INTO n;
    RETURN n;
END
$$;

-- =================================================================================================================
-- Environment (always reported)
-- =================================================================================================================

INSERT INTO m008_check_results
SELECT 'PRE-01', 'Environment', 'PostgreSQL version is 12 or newer',
       CASE WHEN current_setting('server_version_num')::integer >= 120000 THEN 'INFO' ELSE 'FAIL' END,
       'PostgreSQL ' || current_setting('server_version'), NULL, NULL,
       'upgrade PostgreSQL to 12 or newer before migrating';

INSERT INTO m008_check_results
SELECT 'PRE-02', 'Environment', 'Database size (free space needed: 150% of it, for the backup and the rebuild)', 'INFO',
       format('%s is %s; keep at least %s free', current_database(),
              pg_size_pretty(pg_database_size(current_database())),
              pg_size_pretty(pg_database_size(current_database()) * 3 / 2)),
       NULL, NULL, 'free space is measured by mandate migrate run 008 (SQL cannot see the file system)';

INSERT INTO m008_check_results
SELECT 'PRE-03', 'Environment', 'Row counts per table (compared after the migration)', 'INFO',
       string_agg(format('%s %s', t.tbl, coalesce(t.n::text, 'absent')), ', ' ORDER BY t.ord), NULL, NULL,
       'record these counts: every one of them must be the same after the migration'
FROM (SELECT v.tbl, v.ord, pg_temp.m008_count(v.tbl) AS n
      FROM (VALUES ('organizations', 1), ('domains', 2), ('scopes', 3), ('policy_snapshots', 4),
                   ('mandate_specs', 5), ('decision_events', 6), ('verdict_events', 7),
                   ('audit_timeline_entries', 8)) AS v (tbl, ord)) AS t;

INSERT INTO m008_check_results
SELECT 'PRE-04', 'Environment', 'Other sessions connected to this database',
       CASE WHEN count(*) = 0 THEN 'PASS' ELSE 'WARN' END,
       CASE WHEN count(*) = 0 THEN 'no other session' ELSE count(*) || ' other session(s) connected' END,
       count(*),
       (array_agg(format('pid %s, user %s, application %s, state %s, connected since %s', a.pid, a.usename,
                         coalesce(nullif(a.application_name, ''), '-'), coalesce(a.state, '-'),
                         to_char(a.backend_start, 'YYYY-MM-DD HH24:MI:SS')) ORDER BY a.backend_start))[1:10],
       'stop every service writing to Mandate (checklist T-5) and wait for these sessions to end; '
       || 'SELECT pg_terminate_backend(pid) ends one that will not'
FROM pg_stat_activity a
WHERE a.datname = current_database() AND a.pid <> pg_backend_pid() AND a.backend_type = 'client backend';

INSERT INTO m008_check_results
SELECT 'PRE-05', 'Environment', 'Sessions idle in transaction (they hold locks 008 must wait for)',
       CASE WHEN count(*) = 0 THEN 'PASS' ELSE 'WARN' END,
       CASE WHEN count(*) = 0 THEN 'none' ELSE count(*) || ' session(s) idle in transaction' END,
       count(*),
       (array_agg(format('pid %s, user %s, application %s, idle in transaction since %s', a.pid, a.usename,
                         coalesce(nullif(a.application_name, ''), '-'),
                         to_char(a.state_change, 'YYYY-MM-DD HH24:MI:SS')) ORDER BY a.state_change))[1:10],
       'end these transactions (COMMIT or ROLLBACK in their application, or SELECT pg_terminate_backend(pid))'
FROM pg_stat_activity a
WHERE a.datname = current_database() AND a.pid <> pg_backend_pid() AND a.state LIKE 'idle in transaction%';

-- =================================================================================================================
-- Schema
-- =================================================================================================================

INSERT INTO m008_check_results
SELECT 'PRE-06', 'Schema', 'Schema is the legacy shape 008 converts, not yet migrated',
       CASE WHEN s.legacy THEN 'PASS' ELSE 'FAIL' END, s.state, cardinality(s.details), s.details[1:10],
       CASE WHEN s.state LIKE 'already migrated%'
            THEN 'nothing to migrate: 008 is already applied; run 008_POST_MIGRATION_VERIFICATION.sql instead'
            ELSE 'connect to the Mandate database (psql -d <database>); a database that is not in the legacy shape '
                 || 'cannot be migrated by 008: contact the Mandate team' END
FROM pg_temp.m008_legacy_state() s;

-- =================================================================================================================
-- Operator remedies (only what exists; the checks below honour them)
-- =================================================================================================================

INSERT INTO m008_check_results
SELECT 'PRE-07', 'Remedies', 'Operator remedies supplied (recorded in migration_log by 008)', 'INFO',
       pg_temp.m008_measured(p.n, p.error, 'none', p.groups), p.n, p.sample,
       'remedies are explicit operator choices; 008 records them in migration_log.details'
FROM pg_temp.m008_probe($q$
    SELECT 'domain slug', format('%L -> %L (organization %s)', m.name, m.slug, coalesce(m.organization_id::text, 'any'))
    FROM pg_temp.m008_remedy_domain_slugs() m
    UNION ALL
    SELECT 'scope id', format('%s -> %L', m.legacy_scope_uuid, m.scope_id) FROM pg_temp.m008_remedy_scope_ids() m
    UNION ALL
    SELECT 'unattributed history', format('-> organization %s, domain %L', u.organization_id, u.domain)
    FROM pg_temp.m008_remedy_unattributed() u
$q$) p;

-- 008: "more than one unattributed-history target", "operator-supplied slugs that are not slugs",
-- "unattributed-history target is not usable".
INSERT INTO m008_check_results
SELECT 'PRE-08', 'Remedies', 'Operator remedies are well-formed',
       pg_temp.m008_status(p.n, p.error, 'FAIL'),
       pg_temp.m008_measured(p.n, p.error, 'well-formed (or none supplied)', p.n || ' problem(s): ' || p.groups),
       p.n, p.sample,
       'keep at most one row in mandate.migration_008_unattributed (--unattributed-to ORG_ID/DOMAIN), naming an '
       || 'existing organization and a slug ^[a-z0-9_-]+$; every slug in mandate.migration_008_domain_slugs '
       || '(--domain-slug ''NAME=slug'') must match ^[a-z0-9_-]+$; one scope id per legacy scope UUID'
FROM pg_temp.m008_probe($q$
    SELECT 'unattributed-history targets', format('%s targets: %s', count(*),
                                                  string_agg(u.organization_id || '/' || u.domain, ', '))
    FROM pg_temp.m008_remedy_unattributed() u HAVING count(*) > 1
    UNION ALL
    SELECT 'unusable unattributed-history target', format('%s/%s: %s', u.organization_id, u.domain,
           CASE WHEN u.domain IS NULL OR u.domain !~ '^[a-z0-9_-]+$' THEN 'the domain is not a slug'
                ELSE 'no such organization' END)
    FROM pg_temp.m008_remedy_unattributed() u
    WHERE u.domain IS NULL OR u.domain !~ '^[a-z0-9_-]+$'
       OR NOT EXISTS (SELECT 1 FROM mandate.organizations o WHERE o.organization_id = u.organization_id)
    UNION ALL
    SELECT 'slugs that are not slugs', format('%L -> %L', m.name, m.slug)
    FROM pg_temp.m008_remedy_domain_slugs() m WHERE m.slug IS NULL OR m.slug !~ '^[a-z0-9_-]+$'
    UNION ALL
    SELECT 'scope UUIDs mapped twice',
           format('%s -> %s', m.legacy_scope_uuid, string_agg(quote_literal(m.scope_id), ', '))
    FROM pg_temp.m008_remedy_scope_ids() m GROUP BY m.legacy_scope_uuid HAVING count(*) > 1
$q$) p;

INSERT INTO m008_check_results
SELECT 'PRE-09', 'Remedies', 'Operator remedies that match nothing (typos?)',
       pg_temp.m008_status(p.n, p.error, 'WARN'),
       pg_temp.m008_measured(p.n, p.error, 'every remedy row is used', p.n || ' unused: ' || p.groups),
       p.n, p.sample,
       'check the spelling of these names and UUIDs; an unattributed-history target is created as a domain even '
       || 'when no row needs it'
FROM pg_temp.m008_probe($q$
    SELECT 'domain slug',
           format('%L (organization %s) names no domain', m.name, coalesce(m.organization_id::text, 'any'))
    FROM pg_temp.m008_remedy_domain_slugs() m
    WHERE NOT EXISTS (SELECT 1 FROM mandate.domains d WHERE d.name = m.name
                      AND (m.organization_id IS NULL OR d.organization_id = m.organization_id))
    UNION ALL
    SELECT 'scope id', format('%s names no scope', m.legacy_scope_uuid) FROM pg_temp.m008_remedy_scope_ids() m
    WHERE NOT EXISTS (SELECT 1 FROM mandate.scopes s WHERE s.scope_id = m.legacy_scope_uuid)
    UNION ALL
    SELECT 'unattributed history', format('%s/%s: no row has a NULL domain_id', u.organization_id, u.slug)
    FROM pg_temp.m008_target() u
    WHERE NOT EXISTS (SELECT 1 FROM mandate.scopes WHERE domain_id IS NULL)
      AND NOT EXISTS (SELECT 1 FROM mandate.policy_snapshots WHERE domain_id IS NULL)
      AND NOT EXISTS (SELECT 1 FROM mandate.decision_events WHERE domain_id IS NULL)
      AND NOT EXISTS (SELECT 1 FROM mandate.verdict_events WHERE domain_id IS NULL)
      AND NOT EXISTS (SELECT 1 FROM mandate.audit_timeline_entries WHERE domain_id IS NULL)
$q$) p;

-- =================================================================================================================
-- Domains
-- =================================================================================================================

INSERT INTO m008_check_results
SELECT 'PRE-10', 'Domains', 'Domains present (at least one)',
       CASE WHEN p.error IS NOT NULL OR p.n = 0 THEN 'FAIL' ELSE 'PASS' END,
       CASE WHEN p.error IS NOT NULL THEN 'the check could not run: ' || p.error
            WHEN p.n = 0 THEN 'mandate.domains is empty'
            ELSE p.n || ' domain(s)' END,
       NULL, NULL,
       'a Mandate database without domains is not what 008 expects: check that this is the right database'
FROM pg_temp.m008_probe($q$ SELECT 'domains', domain_id::text FROM mandate.domains $q$) p;

-- 008: "domain names that are not slugs".
INSERT INTO m008_check_results
SELECT 'PRE-11', 'Domains', 'Domain names are slugs ^[a-z0-9_-]+$ (or have an explicit slug)',
       pg_temp.m008_status(p.n, p.error, 'FAIL'),
       pg_temp.m008_measured(p.n, p.error, 'every domain name is a slug or explicitly mapped',
                             p.n || ' domain name(s) are not slugs and have no explicit slug'),
       p.n, p.sample,
       'map each name to a slug explicitly (never normalised silently): mandate migrate run 008 --domain-slug '
       || '''NAME=slug'', or a row (organization_id, name, slug) in mandate.migration_008_domain_slugs'
FROM pg_temp.m008_probe($q$
    SELECT 'domains', format('%L (organization %s, domain_id %s), e.g. --domain-slug %L', d.name, d.organization_id,
                             d.domain_id, d.name || '=' || coalesce(pg_temp.m008_slug(d.name), 'slug'))
    FROM pg_temp.m008_domains() d WHERE d.slug IS NULL ORDER BY d.name, d.organization_id
$q$) p;

-- 008: "domain names that map to the same slug in one organization". Names without a slug yet are compared by
-- the slug they would naturally get, so the collision is known before choosing one.
INSERT INTO m008_check_results
SELECT 'PRE-12', 'Domains', 'No two domain names of one organization map to the same slug',
       pg_temp.m008_status(p.n, p.error, 'FAIL'),
       pg_temp.m008_measured(p.n, p.error, 'every slug is unique within its organization',
                             p.n || ' slug(s) claimed by several names'),
       p.n, p.sample,
       'give the colliding domains distinct slugs with --domain-slug ''NAME=slug'' '
       || '(rows in mandate.migration_008_domain_slugs)'
FROM pg_temp.m008_probe($q$
    SELECT 'domains', format('organization %s: %s -> %s', x.organization_id,
                             string_agg(quote_literal(x.name)
                                        || CASE WHEN x.slug IS NULL THEN ' (no slug yet)' ELSE '' END,
                                        ', ' ORDER BY x.name),
                             x.eff)
    FROM (SELECT d.organization_id, d.name, d.slug, coalesce(d.slug, pg_temp.m008_slug(d.name)) AS eff
          FROM pg_temp.m008_domains() d) x
    WHERE x.eff IS NOT NULL
    GROUP BY x.organization_id, x.eff HAVING count(*) > 1
    ORDER BY x.organization_id, x.eff
$q$) p;

-- Not a gate of 008, but its foreign key domains -> organizations would stop it.
INSERT INTO m008_check_results
SELECT 'PRE-13', 'Domains', 'Every domain belongs to an existing organization',
       pg_temp.m008_status(p.n, p.error, 'FAIL'),
       pg_temp.m008_measured(p.n, p.error, 'none orphaned', p.n || ' domain(s) of a missing organization'),
       p.n, p.sample,
       'restore the missing organizations from a backup before migrating (008 re-creates the foreign key)'
FROM pg_temp.m008_probe($q$
    SELECT 'domains', format('%L (domain_id %s) -> organization %s', d.name, d.domain_id, d.organization_id)
    FROM mandate.domains d
    WHERE NOT EXISTS (SELECT 1 FROM mandate.organizations o WHERE o.organization_id = d.organization_id)
    ORDER BY d.name
$q$) p;

-- =================================================================================================================
-- Attribution of every row to (organization, domain) -- 008 phase 3, table by table
-- =================================================================================================================

-- 008: "<table> rows referencing a domain_id that does not exist".
INSERT INTO m008_check_results
SELECT 'PRE-14', 'Attribution', 'No orphaned domain_id references (scopes, snapshots, decisions, verdicts, timeline)',
       pg_temp.m008_status(p.n, p.error, 'FAIL'),
       pg_temp.m008_measured(p.n, p.error, 'every domain_id names an existing domain',
                             p.n || ' row(s) name a missing domain: ' || p.groups),
       p.n, p.sample,
       'restore the missing domains from a backup, or contact the Mandate team: these rows cannot be attributed'
FROM pg_temp.m008_probe((
    SELECT string_agg(format($f$
        SELECT %1$L, format('%1$s %%s -> domain_id %%s', t.%2$I, t.domain_id) FROM mandate.%1$I t
        WHERE t.domain_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM mandate.domains d WHERE d.domain_id = t.domain_id)
    $f$, v.tbl, v.key), ' UNION ALL ')
    FROM (VALUES ('scopes', 'scope_id'), ('policy_snapshots', 'snapshot_id'), ('decision_events', 'decision_id'),
                 ('verdict_events', 'verdict_id'), ('audit_timeline_entries', 'entry_id')) AS v (tbl, key)
)) p;

-- 008: "<table> rows with NULL domain_id (unattributed history)", unless migration_008_unattributed says where
-- they go.
INSERT INTO m008_check_results
SELECT 'PRE-15', 'Attribution', 'Rows with NULL domain_id (unattributed history) have an explicit destination',
       CASE WHEN p.error IS NOT NULL THEN 'FAIL' WHEN p.n > 0 AND t.target IS NULL THEN 'FAIL' ELSE 'PASS' END,
       CASE WHEN p.error IS NOT NULL THEN 'the check could not run: ' || p.error
            WHEN p.n = 0 THEN 'every row has a domain_id'
            WHEN t.target IS NULL THEN p.n || ' row(s) without a domain and no destination chosen: ' || p.groups
            ELSE p.n || ' row(s) without a domain go to ' || t.target || ' (operator choice): ' || p.groups END,
       CASE WHEN t.target IS NULL THEN p.n ELSE 0 END, CASE WHEN t.target IS NULL THEN p.sample END,
       'choose where unattributed history goes, explicitly (never inferred): mandate migrate run 008 '
       || '--unattributed-to ORG_ID/DOMAIN, or one row (organization_id, domain) in mandate.migration_008_unattributed'
FROM pg_temp.m008_probe((
    SELECT string_agg(format($f$
        SELECT %1$L, format('%1$s %%s (organization_id %%s)', t.%2$I, coalesce(t.organization_id::text, 'NULL'))
        FROM mandate.%1$I t WHERE t.domain_id IS NULL
    $f$, v.tbl, v.key), ' UNION ALL ')
    FROM (VALUES ('scopes', 'scope_id'), ('policy_snapshots', 'snapshot_id'), ('decision_events', 'decision_id'),
                 ('verdict_events', 'verdict_id'), ('audit_timeline_entries', 'entry_id')) AS v (tbl, key)
)) p
CROSS JOIN (SELECT (SELECT u.organization_id || '/' || u.slug FROM pg_temp.m008_target() u) AS target) t;

-- 008: "<table> rows whose organization_id differs from their domain's organization" (for rows without a domain:
-- from the organization of the unattributed-history destination).
INSERT INTO m008_check_results
SELECT 'PRE-16', 'Attribution', 'No row''s organization_id contradicts its domain''s organization',
       pg_temp.m008_status(p.n, p.error, 'FAIL'),
       pg_temp.m008_measured(p.n, p.error, 'every organization_id agrees with the domain',
                             p.n || ' contradicting row(s): ' || p.groups),
       p.n, p.sample,
       'these rows contradict themselves; fix them on a copy, or choose another --unattributed-to destination'
FROM pg_temp.m008_probe((
    SELECT string_agg(format($f$
        SELECT %1$L, format('%1$s %%s: organization_id %%s, but domain %%s belongs to organization %%s', t.%2$I,
                            t.organization_id, coalesce(d.name, 'of the unattributed-history destination'),
                            coalesce(d.organization_id, u.organization_id))
        FROM mandate.%1$I t
        LEFT JOIN mandate.domains d ON d.domain_id = t.domain_id
        CROSS JOIN (SELECT (SELECT tg.organization_id FROM pg_temp.m008_target() tg) AS organization_id) u
        WHERE t.organization_id IS NOT NULL
          AND (d.domain_id IS NOT NULL OR (t.domain_id IS NULL AND u.organization_id IS NOT NULL))
          AND t.organization_id IS DISTINCT FROM coalesce(d.organization_id, u.organization_id)
    $f$, v.tbl, v.key), ' UNION ALL ')
    FROM (VALUES ('scopes', 'scope_id'), ('policy_snapshots', 'snapshot_id'), ('decision_events', 'decision_id'),
                 ('verdict_events', 'verdict_id'), ('audit_timeline_entries', 'entry_id')) AS v (tbl, key)
)) p;

-- Not refused by 008: such rows take their domain's organization.
INSERT INTO m008_check_results
SELECT 'PRE-17', 'Attribution', 'Rows with a domain but NULL organization_id',
       pg_temp.m008_status(p.n, p.error, 'WARN'),
       pg_temp.m008_measured(p.n, p.error, 'none',
                             p.n || ' row(s) will take their domain''s organization: ' || p.groups),
       p.n, p.sample,
       'nothing to do: 008 sets organization_id from the row''s domain (determined by domain_id, not guessed)'
FROM pg_temp.m008_probe((
    SELECT string_agg(format($f$
        SELECT %1$L, format('%1$s %%s (domain_id %%s)', t.%2$I, t.domain_id)
        FROM mandate.%1$I t WHERE t.organization_id IS NULL AND t.domain_id IS NOT NULL
    $f$, v.tbl, v.key), ' UNION ALL ')
    FROM (VALUES ('scopes', 'scope_id'), ('policy_snapshots', 'snapshot_id'), ('decision_events', 'decision_id'),
                 ('verdict_events', 'verdict_id'), ('audit_timeline_entries', 'entry_id')) AS v (tbl, key)
)) p;

-- =================================================================================================================
-- Specs
-- =================================================================================================================

-- 008: "specs whose domain name is not a domain of their organization".
INSERT INTO m008_check_results
SELECT 'PRE-18', 'Specs', 'Every spec''s domain is a domain of its organization',
       pg_temp.m008_status(p.n, p.error, 'FAIL'),
       pg_temp.m008_measured(p.n, p.error, 'every spec names a domain of its organization',
                             p.n || ' spec version(s) name an unknown domain'),
       p.n, p.sample,
       'create the missing domain for that organization before migrating, or contact the Mandate team'
FROM pg_temp.m008_probe($q$
    SELECT 'mandate_specs',
           format('%s@%s (organization %s, domain %L)', s.spec_id, s.version, s.organization_id, s.domain)
    FROM mandate.mandate_specs s
    WHERE NOT EXISTS (SELECT 1 FROM pg_temp.m008_domains() d
                      WHERE d.organization_id = s.organization_id AND (d.name = s.domain OR d.slug = s.domain))
    ORDER BY s.spec_id, s.version
$q$) p;

-- Not a gate of 008, but its unique index "one active spec per (organization, domain, intent, stage)" would stop it
-- when two domain names become one slug.
INSERT INTO m008_check_results
SELECT 'PRE-19', 'Specs', 'At most one active spec per (organization, domain slug, intent, stage)',
       pg_temp.m008_status(p.n, p.error, 'FAIL'),
       pg_temp.m008_measured(p.n, p.error, 'unique',
                             p.n || ' (organization, domain, intent, stage) with several active specs'),
       p.n, p.sample,
       'deprecate all but one of these specs (a new version row with status deprecated) before migrating'
FROM pg_temp.m008_probe($q$
    SELECT 'mandate_specs',
           format('organization %s, domain %s, %s/%s: %s', x.organization_id, x.slug, x.intent, x.stage,
                                   string_agg(x.spec_id || '@' || x.version, ', ' ORDER BY x.spec_id, x.version))
    FROM (SELECT s.*, (SELECT d.slug FROM pg_temp.m008_domains() d
                       WHERE d.organization_id = s.organization_id AND (d.name = s.domain OR d.slug = s.domain)
                       ORDER BY (d.name = s.domain) DESC LIMIT 1) AS slug
          FROM mandate.mandate_specs s WHERE s.status = 'active') x
    WHERE x.slug IS NOT NULL
    GROUP BY x.organization_id, x.slug, x.intent, x.stage HAVING count(*) > 1
$q$) p;

-- =================================================================================================================
-- References between events
-- =================================================================================================================

-- 008: "verdicts whose decision is missing".
INSERT INTO m008_check_results
SELECT 'PRE-20', 'References', 'Every verdict''s decision exists',
       pg_temp.m008_status(p.n, p.error, 'FAIL'),
       pg_temp.m008_measured(p.n, p.error, 'none missing', p.n || ' verdict(s) without their decision'),
       p.n, p.sample,
       'the foreign key was bypassed at some point; restore the decisions from a backup before migrating'
FROM pg_temp.m008_probe($q$
    SELECT 'verdict_events', format('verdict %s -> decision %s', v.verdict_id, v.decision_id)
    FROM mandate.verdict_events v
    WHERE NOT EXISTS (SELECT 1 FROM mandate.decision_events e WHERE e.decision_id = v.decision_id)
$q$) p;

-- 008: "verdicts whose scope is missing".
INSERT INTO m008_check_results
SELECT 'PRE-21', 'References', 'Every verdict''s scope exists',
       pg_temp.m008_status(p.n, p.error, 'FAIL'),
       pg_temp.m008_measured(p.n, p.error, 'none missing', p.n || ' verdict(s) whose scope is missing'),
       p.n, p.sample,
       'the foreign key was bypassed at some point; restore the scopes from a backup before migrating'
FROM pg_temp.m008_probe($q$
    SELECT 'verdict_events', format('verdict %s -> scope %s', v.verdict_id, v.scope_id)
    FROM mandate.verdict_events v
    WHERE v.scope_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM mandate.scopes s WHERE s.scope_id = v.scope_id)
$q$) p;

-- 008: "timeline entries whose decision is missing".
INSERT INTO m008_check_results
SELECT 'PRE-22', 'References', 'Every timeline entry''s decision exists',
       pg_temp.m008_status(p.n, p.error, 'FAIL'),
       pg_temp.m008_measured(p.n, p.error, 'none missing', p.n || ' timeline entr(y/ies) without their decision'),
       p.n, p.sample,
       'the foreign key was bypassed at some point; restore the decisions from a backup before migrating'
FROM pg_temp.m008_probe($q$
    SELECT 'audit_timeline_entries', format('entry %s -> decision %s', t.entry_id, t.decision_id)
    FROM mandate.audit_timeline_entries t
    WHERE NOT EXISTS (SELECT 1 FROM mandate.decision_events e WHERE e.decision_id = t.decision_id)
$q$) p;

-- Not a gate of 008, but its foreign key verdict_events -> policy_snapshots would stop it.
INSERT INTO m008_check_results
SELECT 'PRE-23', 'References', 'Every verdict''s policy snapshot exists',
       pg_temp.m008_status(p.n, p.error, 'FAIL'),
       pg_temp.m008_measured(p.n, p.error, 'none missing', p.n || ' verdict(s) whose snapshot is missing'),
       p.n, p.sample,
       'the foreign key was bypassed at some point; restore the policy snapshots from a backup before migrating'
FROM pg_temp.m008_probe($q$
    SELECT 'verdict_events', format('verdict %s -> snapshot %s', v.verdict_id, v.snapshot_id)
    FROM mandate.verdict_events v
    WHERE NOT EXISTS (SELECT 1 FROM mandate.policy_snapshots ps WHERE ps.snapshot_id = v.snapshot_id)
$q$) p;

-- 008: "policies referencing a scope that does not exist".
INSERT INTO m008_check_results
SELECT 'PRE-24', 'References', 'Every policy''s scope_id (in policy snapshots) names an existing scope',
       pg_temp.m008_status(p.n, p.error, 'FAIL'),
       pg_temp.m008_measured(p.n, p.error, 'every policy names an existing scope',
                             p.n || ' polic(y/ies) bound to an unknown scope'),
       p.n, p.sample,
       'these policies are bound to no scope; restore the scopes, or contact the Mandate team'
FROM pg_temp.m008_probe($q$
    SELECT DISTINCT 'policy_snapshots',
           format('snapshot %s policy %s -> scope %s', ps.snapshot_id, p->>'id', p->>'scope_id')
    FROM mandate.policy_snapshots ps, jsonb_array_elements(ps.policies) p
    WHERE p ? 'scope_id' AND jsonb_typeof(p->'scope_id') = 'string'
      AND p->>'scope_id' NOT IN (SELECT s.scope_id::text FROM mandate.scopes s)
$q$) p;

-- =================================================================================================================
-- Human-readable scope ids (008 phase 4)
-- =================================================================================================================

-- 008: "scope ids that are not of the form <domain>.<part>[.<part>...] with slug parts".
INSERT INTO m008_check_results
SELECT 'PRE-25', 'Scopes', 'Future scope ids are well-formed and start with ''<domain>.''',
       pg_temp.m008_status(p.n, p.error, 'FAIL'),
       pg_temp.m008_measured(p.n, p.error, 'every future scope id is well-formed',
                             p.n || ' malformed scope id(s)'),
       p.n, p.sample,
       'give those scopes ids that start with ''<domain>.'' (slug parts separated by dots) in --scope-id-map FILE '
       || '(rows in mandate.migration_008_scope_ids)'
FROM pg_temp.m008_probe($q$
    SELECT 'scopes', format('%s -> %L (domain %s%s)', s.legacy_scope_uuid, s.scope_id, s.domain,
                            CASE WHEN s.from_mapping THEN ', from the operator map' ELSE '' END)
    FROM pg_temp.m008_scopes() s
    WHERE s.scope_id !~ '^[a-z0-9_-]+(\.[a-z0-9_-]+)+$' OR left(s.scope_id, length(s.domain) + 1) <> s.domain || '.'
    ORDER BY s.scope_id
$q$) p;

-- 008: "scopes whose human-readable ids would collide" (scope ids are unique across organizations).
INSERT INTO m008_check_results
SELECT 'PRE-26', 'Scopes', 'Future scope ids do not collide',
       pg_temp.m008_status(p.n, p.error, 'FAIL'),
       pg_temp.m008_measured(p.n, p.error, 'every future scope id is unique',
                             p.n || ' scope id(s) claimed by several scopes'),
       p.n, p.sample,
       'choose distinct ids for the colliding scopes in --scope-id-map FILE (legacy UUID -> scope id; rows in '
       || 'mandate.migration_008_scope_ids)'
FROM pg_temp.m008_probe($q$
    SELECT 'scopes',
           format('%s <- %s', s.scope_id, string_agg(s.legacy_scope_uuid::text, ', ' ORDER BY s.legacy_scope_uuid))
    FROM pg_temp.m008_scopes() s WHERE s.scope_id IS NOT NULL
    GROUP BY s.scope_id HAVING count(*) > 1 ORDER BY s.scope_id
$q$) p;

-- Not a gate of 008, but its unique index idx_scopes_unique (organization_id, domain, service, agent, system,
-- environment, tenant) would stop it: the legacy index included the free-text scope_domain instead.
INSERT INTO m008_check_results
SELECT 'PRE-27', 'Scopes', 'No two scopes of one (organization, domain) have the same selectors',
       pg_temp.m008_status(p.n, p.error, 'FAIL'),
       pg_temp.m008_measured(p.n, p.error, 'every selector combination is unique',
                             p.n || ' duplicated selector combination(s)'),
       p.n, p.sample,
       'these scopes say the same thing twice and 008''s unique index refuses it; contact the Mandate team '
       || '(history references both UUIDs)'
FROM pg_temp.m008_probe($q$
    SELECT 'scopes',
           format('organization %s, domain %s, service %L, agent %L, system %L, environment %L, tenant %L: %s',
                            s.organization_id, s.domain, min(s.service), min(s.agent), min(s.scope_system),
                            min(s.environment), min(s.tenant),
                            string_agg(s.legacy_scope_uuid::text, ', ' ORDER BY s.legacy_scope_uuid))
    FROM pg_temp.m008_scopes() s WHERE s.domain IS NOT NULL
    GROUP BY s.organization_id, s.domain, coalesce(s.service, ''), coalesce(s.agent, ''), coalesce(s.scope_system, ''),
             coalesce(s.environment, ''), coalesce(s.tenant, '')
    HAVING count(*) > 1
$q$) p;

-- =================================================================================================================
-- Warnings: 008 accepts these; they are reported so that nobody is surprised afterwards
-- =================================================================================================================

INSERT INTO m008_check_results
SELECT 'PRE-28', 'Warnings', 'Scopes without an owning team',
       pg_temp.m008_status(p.n, p.error, 'WARN'),
       pg_temp.m008_measured(p.n, p.error, 'every scope has an owning team', p.n || ' scope(s) without owning_team'),
       p.n, p.sample,
       'allowed for migrated scopes (they keep legacy_scope_uuid); record the owners after the migration: every '
       || 'verdict must name one'
FROM pg_temp.m008_probe($q$
    SELECT 'scopes', format('%s (future id %s)', s.legacy_scope_uuid, coalesce(s.scope_id, '?'))
    FROM pg_temp.m008_scopes() s WHERE s.owning_team IS NULL ORDER BY s.scope_id
$q$) p;

INSERT INTO m008_check_results
SELECT 'PRE-29', 'Warnings', 'Scopes whose scope_domain disagrees with their domain''s name',
       pg_temp.m008_status(p.n, p.error, 'WARN'),
       pg_temp.m008_measured(p.n, p.error, 'none', p.n || ' scope(s) (008 follows domain_id, not scope_domain)'),
       p.n, p.sample,
       'nothing to do: 008 attributes a scope by its domain_id; scope_domain is kept as it is'
FROM pg_temp.m008_probe($q$
    SELECT 'scopes', format('%s: scope_domain %L, domain %L', s.legacy_scope_uuid, s.scope_domain, d.name)
    FROM pg_temp.m008_scopes() s JOIN pg_temp.m008_domains() d ON d.domain_id = s.legacy_domain_id
    WHERE s.scope_domain IS NOT NULL
      AND s.scope_domain IS DISTINCT FROM d.name AND s.scope_domain IS DISTINCT FROM d.slug
$q$) p;

INSERT INTO m008_check_results
SELECT 'PRE-30', 'Warnings', 'Verdicts without a scope (scope_id NULL)',
       pg_temp.m008_status(p.n, p.error, 'WARN'),
       pg_temp.m008_measured(p.n, p.error, 'every verdict names its scope', p.n || ' verdict(s) without scope_id'),
       p.n, p.sample,
       'nothing to do: verdicts written before scopes existed stay without one'
FROM pg_temp.m008_probe($q$
    SELECT 'verdict_events', 'verdict ' || v.verdict_id FROM mandate.verdict_events v WHERE v.scope_id IS NULL
$q$) p;

INSERT INTO m008_check_results
SELECT 'PRE-31', 'Warnings', 'Verdicts whose copied domain name is NULL or differs from their domain',
       pg_temp.m008_status(p.n, p.error, 'WARN'),
       pg_temp.m008_measured(p.n, p.error, 'none', p.n || ' verdict(s): ' || p.groups),
       p.n, p.sample,
       'nothing to do: 008 replaces verdict_events.domain with the slug of the verdict''s domain_id'
FROM pg_temp.m008_probe($q$
    SELECT CASE WHEN v.domain IS NULL THEN 'domain NULL' ELSE 'domain differs' END,
           format('verdict %s: domain %s, its domain_id names %s', v.verdict_id,
                  coalesce(quote_literal(v.domain), 'NULL'),
                  coalesce(quote_literal(d.name), 'no domain'))
    FROM mandate.verdict_events v LEFT JOIN pg_temp.m008_domains() d ON d.domain_id = v.domain_id
    WHERE v.domain IS NULL
       OR (d.domain_id IS NOT NULL AND v.domain IS DISTINCT FROM d.name AND v.domain IS DISTINCT FROM d.slug)
$q$) p;

-- 008 cannot convert such details (the UUID names no scope) and refuses them.
INSERT INTO m008_check_results
SELECT 'PRE-32', 'References', 'Timeline details.scope_id that name no scope',
       pg_temp.m008_status(p.n, p.error, 'FAIL'),
       pg_temp.m008_measured(p.n, p.error, 'every details.scope_id names an existing scope',
                             p.n || ' timeline entr(y/ies) keep an unknown scope UUID'),
       p.n, p.sample,
       '008 cannot convert them (they would stay legacy UUIDs) and refuses them; restore the scopes from a backup '
       || 'first, or contact the Mandate team'
FROM pg_temp.m008_probe($q$
    SELECT 'audit_timeline_entries', format('entry %s: details.scope_id %s', t.entry_id, t.details->>'scope_id')
    FROM mandate.audit_timeline_entries t
    WHERE jsonb_typeof(t.details) = 'object' AND jsonb_typeof(t.details->'scope_id') = 'string'
      AND t.details->>'scope_id' NOT IN (SELECT s.scope_id::text FROM mandate.scopes s)
$q$) p;

-- A reference to a scope of another (organization, domain) would become a scope id without the row's domain
-- prefix: 008 refuses it.
INSERT INTO m008_check_results
SELECT 'PRE-33', 'References', 'Scope references that cross (organization, domain) boundaries',
       pg_temp.m008_status(p.n, p.error, 'FAIL'),
       pg_temp.m008_measured(p.n, p.error, 'every scope reference stays within its (organization, domain)',
                             p.n || ' cross-domain reference(s): ' || p.groups),
       p.n, p.sample,
       '008 refuses them (a scope id must start with its row''s domain); these rows contradict themselves — '
       || 'contact the Mandate team before migrating'
FROM pg_temp.m008_probe($q$
    WITH s AS (SELECT s.legacy_scope_uuid::text AS ref, s.organization_id, s.domain, s.scope_id
               FROM pg_temp.m008_scopes() s WHERE s.domain IS NOT NULL),
         d AS (SELECT * FROM pg_temp.m008_domains()),
         u AS (SELECT (SELECT tg.organization_id FROM pg_temp.m008_target() tg) AS organization_id,
                      (SELECT tg.slug FROM pg_temp.m008_target() tg) AS slug),
         refs AS (
             SELECT 'verdict_events' AS tbl, 'verdict ' || v.verdict_id AS what, v.scope_id::text AS ref,
                    v.domain_id, d.organization_id, d.slug
             FROM mandate.verdict_events v LEFT JOIN d ON d.domain_id = v.domain_id
             WHERE v.scope_id IS NOT NULL
             UNION ALL
             SELECT 'policy_snapshots', format('snapshot %s policy %s', ps.snapshot_id, p->>'id'), p->>'scope_id',
                    ps.domain_id, d.organization_id, d.slug
             FROM mandate.policy_snapshots ps CROSS JOIN LATERAL jsonb_array_elements(ps.policies) p
             LEFT JOIN d ON d.domain_id = ps.domain_id
             WHERE jsonb_typeof(p->'scope_id') = 'string'
             UNION ALL
             SELECT 'audit_timeline_entries', 'entry ' || t.entry_id, t.details->>'scope_id',
                    t.domain_id, d.organization_id, d.slug
             FROM mandate.audit_timeline_entries t LEFT JOIN d ON d.domain_id = t.domain_id
             WHERE jsonb_typeof(t.details) = 'object' AND t.details->>'scope_id' IS NOT NULL)
    -- Hashed sub-plans (NOT IN, IN ... IS TRUE) rather than joins: one pass over each large table, whatever the
    -- planner believes about the JSON conditions.
    SELECT x.tbl, format('%s (%s/%s) -> scope %s', x.what, x.org, x.dom, (SELECT s.scope_id FROM s WHERE s.ref = x.ref))
    FROM (SELECT r.tbl, r.what, r.ref,
                 coalesce(r.organization_id, CASE WHEN r.domain_id IS NULL THEN u.organization_id END) AS org,
                 coalesce(r.slug, CASE WHEN r.domain_id IS NULL THEN u.slug END) AS dom
          FROM refs r CROSS JOIN u) x
    WHERE x.dom IS NOT NULL
      AND (x.ref IN (SELECT s.ref FROM s)) IS TRUE
      AND (x.ref, x.org, x.dom) NOT IN (SELECT s.ref, s.organization_id, s.domain FROM s)
$q$) p;

-- =================================================================================================================
-- The report
-- =================================================================================================================
SELECT r.check_id AS "check", r.status, r.section,
       concat_ws(E'\n',
                 pg_temp.m008_wrap(r.title, 100, '  '),
                 pg_temp.m008_wrap('=> ' || r.measured, 100, '   '),
                 (SELECT string_agg(pg_temp.m008_wrap('   - ' || u.line, 100, '     '), E'\n' ORDER BY u.ord)
                  FROM unnest(r.sample) WITH ORDINALITY AS u (line, ord)),
                 CASE WHEN r.offending_count > cardinality(r.sample)
                      THEN '   ... and ' || (r.offending_count - cardinality(r.sample)) || ' more' END,
                 CASE WHEN r.status IN ('FAIL', 'WARN')
                      THEN pg_temp.m008_wrap('remedy: ' || r.remedy, 100, '        ') END)
           AS "title / measured / offending rows or evidence / remedy"
FROM m008_check_results r
ORDER BY r.check_id;

-- @@gate@@
DO $$
DECLARE
    failed text;
    warned text;
BEGIN
    SELECT string_agg(check_id, ', ' ORDER BY check_id) FILTER (WHERE status = 'FAIL'),
           string_agg(check_id, ', ' ORDER BY check_id) FILTER (WHERE status = 'WARN')
    INTO failed, warned FROM m008_check_results;
    IF failed IS NOT NULL THEN
        RAISE EXCEPTION 'migration 008 pre-checks FAILED: %', failed
            USING HINT = 'do not run migration 008: fix what the failed checks name (see their remedy), then run '
                         'these checks again';
    END IF;
    RAISE NOTICE 'migration 008 pre-checks passed (warnings: %)', coalesce(warned, 'none');
END
$$;
ROLLBACK;
