-- Migration 008 post-migration verification (RFC-002 v1.2 domain identity): did 008 do everything it must?
--
-- What: every item of the checklist's "Final Verification Checklist" that a query can answer -- Database Schema,
-- Data Integrity, Governance Compliance -- plus the migration_log entry and the database's default search_path.
-- The constraint tests (bad slug refused, wrong scope prefix refused with GOVERNANCE VIOLATION, another
-- organization's domain refused) run inside savepoints that are rolled back.
-- Why: the checklist's "T+30-60: Post-Migration Validation" step. Row counts are printed (POST-12) but compared with
-- the counts captured before the migration by the runbook (mandate migrate run 008), not here.
--
-- Run with (exactly as the checklist writes it; ON_ERROR_STOP is set below):
--     psql -d mandate < migrations/008_POST_MIGRATION_VERIFICATION.sql
--     psql -v ON_ERROR_STOP=1 -d mandate -f migrations/008_POST_MIGRATION_VERIFICATION.sql
-- psql prints one row per check (PASS, FAIL, WARN or INFO, what was measured, up to ten offending rows or the
-- evidence, and the remedy) and exits non-zero when any check FAILs; warnings do not fail. It never changes the
-- database: everything runs in one transaction that is rolled back, using a temporary table and temporary helper
-- functions only. On a database that 008 has not migrated, every check that needs the new columns FAILs as "not
-- verifiable" instead of stopping with an SQL error.
--
-- Layout (the runbook executes this same file): psql settings, BEGIN, the results table, helper functions, one
-- INSERT per check, the report; after the "@@gate@@" marker, the block that fails the run, and ROLLBACK. The
-- runbook runs the part before the marker in its own transaction and reads m008_check_results itself.
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

-- Which of the columns a check needs ('table.column' or 'table.column:type', in schema mandate) are absent or of
-- another type; NULL when all are there. Checks that read new columns only run when this is NULL, so a database
-- that is not migrated gets a clean FAIL instead of an SQL error.
CREATE OR REPLACE FUNCTION pg_temp.m008_missing(specs text[]) RETURNS text[]
LANGUAGE sql STABLE AS $$
    SELECT array_agg(CASE WHEN a.attname IS NULL THEN format('%s.%s absent', s.tbl, s.col)
                          ELSE format('%s.%s is %s, not %s', s.tbl, s.col, a.atttypid::regtype, s.typ) END
                     ORDER BY s.ord)
    FROM (SELECT split_part(split_part(u.spec, ':', 1), '.', 1) AS tbl,
                 split_part(split_part(u.spec, ':', 1), '.', 2) AS col,
                 nullif(split_part(u.spec, ':', 2), '') AS typ, u.ord
          FROM unnest(specs) WITH ORDINALITY AS u (spec, ord)) s
    LEFT JOIN pg_attribute a
           ON a.attrelid = to_regclass('mandate.' || s.tbl) AND a.attname = s.col AND a.attnum > 0
          AND NOT a.attisdropped
    WHERE a.attname IS NULL OR (s.typ IS NOT NULL AND a.atttypid IS DISTINCT FROM to_regtype(s.typ))
$$;

-- Run one check's query (two text columns: a group, e.g. the table, and the offending row): how many rows, how
-- many per group, the first ten, or the error that stopped the query. No row at all when `query` is NULL.
-- JIT compilation is off for these calls: it costs seconds per query and saves little on simple scans.
CREATE OR REPLACE FUNCTION pg_temp.m008_probe(query text)
RETURNS TABLE (n bigint, groups text, sample text[], error text)
LANGUAGE plpgsql SET jit = off AS $$
BEGIN
    IF query IS NULL THEN
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

-- Run one statement that must be refused, inside a savepoint that is always rolled back; report how it ended.
-- accepted = true means the statement went through (and was rolled back all the same).
CREATE OR REPLACE FUNCTION pg_temp.m008_try(stmt text)
RETURNS TABLE (accepted boolean, sqlstate text, message text, constraint_name text)
LANGUAGE plpgsql AS $$
DECLARE
    st text;
    msg text;
    con text;
BEGIN
    IF stmt IS NULL THEN
        RETURN;
    END IF;
    BEGIN
        EXECUTE stmt;
        RAISE EXCEPTION 'statement accepted' USING ERRCODE = 'MZ008';
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, con = CONSTRAINT_NAME;
    END;
    RETURN QUERY SELECT st = 'MZ008', st, msg, nullif(con, '');
END
$$;

CREATE OR REPLACE FUNCTION pg_temp.m008_status(missing text[], n bigint, error text, if_found text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN missing IS NOT NULL OR error IS NOT NULL THEN 'FAIL' WHEN n > 0 THEN if_found ELSE 'PASS' END
$$;

CREATE OR REPLACE FUNCTION pg_temp.m008_measured(missing text[], n bigint, error text, if_none text, if_found text)
RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN missing IS NOT NULL
                THEN 'not verifiable, the schema is not migrated: ' || array_to_string(missing, ', ')
                WHEN error IS NOT NULL THEN 'the check could not run: ' || error
                WHEN n > 0 THEN if_found
                ELSE if_none END
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

-- The column names of a constraint's key (conkey), in key order.
CREATE OR REPLACE FUNCTION pg_temp.m008_columns(rel oid, attnums smallint[]) RETURNS text[]
LANGUAGE sql STABLE AS $$
    SELECT array_agg(a.attname::text ORDER BY k.ord)
    FROM unnest(attnums) WITH ORDINALITY AS k (attnum, ord)
    JOIN pg_attribute a ON a.attrelid = rel AND a.attnum = k.attnum
$$;

-- Word-wrap for the report: lines of at most `width` characters (longer words stay whole), continued with `indent`.
CREATE OR REPLACE FUNCTION pg_temp.m008_wrap(value text, width integer, indent text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT rtrim(regexp_replace(value || ' ', '(.{1,' || width || '}) +', E'\\1\n' || indent, 'g'), E'\n ')
$$;

-- =================================================================================================================
-- Database Schema
-- =================================================================================================================

INSERT INTO m008_check_results
SELECT 'POST-01', 'Database Schema', 'domain_id columns completely removed (RFC-002 section 11)',
       CASE WHEN count(a.attname) = 0 THEN 'PASS' ELSE 'FAIL' END,
       CASE WHEN count(a.attname) = 0 THEN 'no column named domain_id in schema mandate'
            ELSE count(a.attname) || ' domain_id column(s) remain' END,
       count(a.attname),
       (array_agg(format('%s.%s (%s)', c.relname, a.attname, a.atttypid::regtype) ORDER BY c.relname))[1:10],
       'migration 008 has not run (or not on this database): run 008_PRE_MIGRATION_CHECKS.sql, then the migration'
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'mandate' AND c.relkind IN ('r', 'p', 'v', 'm', 'f') AND a.attname = 'domain_id' AND a.attnum > 0
  AND NOT a.attisdropped;

INSERT INTO m008_check_results
SELECT 'POST-02', 'Database Schema', 'domain columns are TEXT (RFC-002 invariant 2: domain = text)',
       CASE WHEN count(*) FILTER (WHERE NOT x.ok) = 0 THEN 'PASS' ELSE 'FAIL' END,
       format('%s of %s tables have a text domain column', count(*) FILTER (WHERE x.ok), count(*)),
       count(*) FILTER (WHERE NOT x.ok),
       CASE WHEN count(*) FILTER (WHERE NOT x.ok) = 0 THEN array_agg(x.line ORDER BY x.ord)
            ELSE array_agg(x.line ORDER BY x.ord) FILTER (WHERE NOT x.ok) END,
       'migration 008 has not run (or not completely): these tables must have domain text NOT NULL'
FROM (SELECT v.ord, coalesce(a.atttypid = 'text'::regtype, false) AS ok,
             format('%s.domain: %s', v.tbl, coalesce(a.atttypid::regtype::text, 'absent')) AS line
      FROM (VALUES ('domains', 1), ('scopes', 2), ('policy_snapshots', 3), ('decision_events', 4),
                   ('verdict_events', 5), ('audit_timeline_entries', 6), ('mandate_specs', 7)) AS v (tbl, ord)
      LEFT JOIN pg_attribute a ON a.attrelid = to_regclass('mandate.' || v.tbl) AND a.attname = 'domain'
                              AND a.attnum > 0 AND NOT a.attisdropped) x;

INSERT INTO m008_check_results
SELECT 'POST-03', 'Database Schema', 'domain and organization_id columns are NOT NULL',
       CASE WHEN count(*) FILTER (WHERE NOT x.ok) = 0 THEN 'PASS' ELSE 'FAIL' END,
       format('%s of %s columns are NOT NULL', count(*) FILTER (WHERE x.ok), count(*)),
       count(*) FILTER (WHERE NOT x.ok),
       (array_agg(x.line ORDER BY x.ord, x.col) FILTER (WHERE NOT x.ok))[1:10],
       'migration 008 has not run (or not completely): every row must name its organization and domain'
FROM (SELECT v.ord, c.col, coalesce(a.attnotnull, false) AS ok,
             format('%s.%s: %s', v.tbl, c.col,
                    CASE WHEN a.attname IS NULL THEN 'absent' WHEN a.attnotnull THEN 'NOT NULL' ELSE 'nullable' END)
                 AS line
      FROM (VALUES ('domains', 1), ('scopes', 2), ('policy_snapshots', 3), ('decision_events', 4),
                   ('verdict_events', 5), ('audit_timeline_entries', 6), ('mandate_specs', 7)) AS v (tbl, ord)
      CROSS JOIN (VALUES ('domain'), ('organization_id')) AS c (col)
      LEFT JOIN pg_attribute a ON a.attrelid = to_regclass('mandate.' || v.tbl) AND a.attname = c.col
                              AND a.attnum > 0 AND NOT a.attisdropped) x;

INSERT INTO m008_check_results
SELECT 'POST-04', 'Database Schema', 'scope_id columns are TEXT everywhere (RFC-002 invariant 3: scope_id = text)',
       CASE WHEN count(*) FILTER (WHERE NOT x.ok) = 0 THEN 'PASS' ELSE 'FAIL' END,
       format('%s of %s scope_id columns are text', count(*) FILTER (WHERE x.ok), count(*)),
       count(*) FILTER (WHERE NOT x.ok),
       CASE WHEN count(*) FILTER (WHERE NOT x.ok) = 0 THEN array_agg(x.line ORDER BY x.line)
            ELSE array_agg(x.line ORDER BY x.line) FILTER (WHERE NOT x.ok) END,
       'migration 008 has not run (or not completely): scope ids are human-readable text, never UUIDs'
FROM (SELECT coalesce(a.atttypid = 'text'::regtype, false) AS ok,
             format('%s.scope_id: %s', r.relname, coalesce(a.atttypid::regtype::text, 'absent')) AS line
      FROM (SELECT c.oid, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = 'mandate' AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
              AND (c.relname IN ('scopes', 'verdict_events')
                   OR EXISTS (SELECT 1 FROM pg_attribute a2 WHERE a2.attrelid = c.oid AND a2.attname = 'scope_id'
                              AND NOT a2.attisdropped))
            UNION
            SELECT NULL, v.relname FROM (VALUES ('scopes'), ('verdict_events')) AS v (relname)
            WHERE to_regclass('mandate.' || v.relname) IS NULL) r
      LEFT JOIN pg_attribute a ON a.attrelid = r.oid AND a.attname = 'scope_id' AND a.attnum > 0
                              AND NOT a.attisdropped) x;

INSERT INTO m008_check_results
SELECT 'POST-05', 'Database Schema', 'Composite primary key on domains: (organization_id, domain)',
       CASE WHEN x.cols = ARRAY['organization_id', 'domain'] THEN 'PASS' ELSE 'FAIL' END,
       CASE WHEN x.cols IS NULL THEN 'mandate.domains has no primary key'
            ELSE format('%s PRIMARY KEY (%s)', x.conname, array_to_string(x.cols, ', ')) END,
       CASE WHEN x.cols = ARRAY['organization_id', 'domain'] THEN 0 ELSE 1 END, NULL,
       'migration 008 has not run (or not completely): a domain is identified by (organization_id, domain)'
FROM (SELECT 1) AS one
LEFT JOIN LATERAL (SELECT con.conname, pg_temp.m008_columns(con.conrelid, con.conkey) AS cols
                   FROM pg_constraint con
                   WHERE con.conrelid = to_regclass('mandate.domains') AND con.contype = 'p') x ON true;

INSERT INTO m008_check_results
SELECT 'POST-06', 'Database Schema', 'Composite foreign keys (organization_id, domain) -> domains',
       CASE WHEN count(*) FILTER (WHERE NOT x.ok) = 0 THEN 'PASS' ELSE 'FAIL' END,
       format('%s of %s tables have a validated composite foreign key to domains', count(*) FILTER (WHERE x.ok),
              count(*)),
       count(*) FILTER (WHERE NOT x.ok),
       CASE WHEN count(*) FILTER (WHERE NOT x.ok) = 0 THEN array_agg(x.line ORDER BY x.ord)
            ELSE array_agg(x.line ORDER BY x.ord) FILTER (WHERE NOT x.ok) END,
       'migration 008 has not run (or not completely): (organization_id, domain) isolation needs these keys '
       || '(a NOT VALID key must be validated: ALTER TABLE ... VALIDATE CONSTRAINT ...)'
FROM (SELECT v.ord, coalesce(bool_or(con.convalidated), false) AS ok,
             format('%s: %s', v.tbl,
                    coalesce(string_agg(con.conname || CASE WHEN con.convalidated THEN '' ELSE ' (NOT VALID)' END,
                                        ', '),
                             'none')) AS line
      FROM (VALUES ('scopes', 1), ('policy_snapshots', 2), ('decision_events', 3), ('verdict_events', 4),
                   ('audit_timeline_entries', 5), ('mandate_specs', 6)) AS v (tbl, ord)
      LEFT JOIN pg_constraint con
             ON con.conrelid = to_regclass('mandate.' || v.tbl) AND con.contype = 'f'
            AND con.confrelid = to_regclass('mandate.domains')
            AND (SELECT array_agg(k.col || '=' || k.fcol ORDER BY k.col)
                 FROM unnest(pg_temp.m008_columns(con.conrelid, con.conkey),
                             pg_temp.m008_columns(con.confrelid, con.confkey)) AS k (col, fcol))
                = ARRAY['domain=domain', 'organization_id=organization_id']
      GROUP BY v.tbl, v.ord) x;

-- The checklist's "6 composite indexes": (organization_id, domain) on the five event tables and verdict_events
-- (scope_id); mandate_specs too (spec resolution filters by organization and domain).
INSERT INTO m008_check_results
SELECT 'POST-07', 'Database Schema',
       'Composite indexes: (organization_id, domain) on 6 tables, verdict_events(scope_id)',
       CASE WHEN count(*) FILTER (WHERE NOT x.ok) = 0 THEN 'PASS' ELSE 'FAIL' END,
       format('%s of %s indexes present and valid', count(*) FILTER (WHERE x.ok), count(*)),
       count(*) FILTER (WHERE NOT x.ok),
       CASE WHEN count(*) FILTER (WHERE NOT x.ok) = 0 THEN array_agg(x.line ORDER BY x.ord)
            ELSE array_agg(x.line ORDER BY x.ord) FILTER (WHERE NOT x.ok) END,
       'create the missing index, e.g. CREATE INDEX CONCURRENTLY idx_<table>_org_domain ON mandate.<table> '
       || '(organization_id, domain); domain-scoped queries scan whole tables without it'
FROM (SELECT v.ord, count(i.relname) > 0 AS ok,
             format('%s (%s): %s', v.tbl, v.cols, coalesce(string_agg(i.relname, ', ' ORDER BY i.relname), 'none'))
                 AS line
      FROM (VALUES ('scopes', 'organization_id, domain', 1), ('policy_snapshots', 'organization_id, domain', 2),
                   ('decision_events', 'organization_id, domain', 3), ('verdict_events', 'organization_id, domain', 4),
                   ('audit_timeline_entries', 'organization_id, domain', 5),
                   ('mandate_specs', 'organization_id, domain', 6), ('verdict_events', 'scope_id', 7))
           AS v (tbl, cols, ord)
      LEFT JOIN pg_index ix ON ix.indrelid = to_regclass('mandate.' || v.tbl) AND ix.indisvalid AND ix.indpred IS NULL
            AND (SELECT array_agg(a.attname::text ORDER BY a.attname)
                 FROM generate_series(0, cardinality(string_to_array(v.cols, ', ')) - 1) AS g (i)
                 JOIN pg_attribute a ON a.attrelid = ix.indrelid AND a.attnum = ix.indkey[g.i])
                = (SELECT array_agg(c ORDER BY c) FROM unnest(string_to_array(v.cols, ', ')) AS c)
      LEFT JOIN pg_class i ON i.oid = ix.indexrelid
      GROUP BY v.tbl, v.cols, v.ord) x;

INSERT INTO m008_check_results
SELECT 'POST-08', 'Database Schema', 'scope_id validation trigger exists and is enabled (BEFORE INSERT on scopes)',
       CASE WHEN bool_or(t.tgenabled IN ('O', 'A')) THEN 'PASS' ELSE 'FAIL' END,
       CASE WHEN count(t.tgname) = 0 THEN 'no trigger on mandate.scopes raises GOVERNANCE VIOLATION'
            WHEN bool_or(t.tgenabled IN ('O', 'A')) THEN 'present and enabled'
            ELSE 'present but not enabled' END,
       CASE WHEN bool_or(t.tgenabled IN ('O', 'A')) THEN 0 ELSE 1 END,
       array_agg(format('%s: BEFORE INSERT, %s, function %s', t.tgname,
                        CASE t.tgenabled WHEN 'D' THEN 'DISABLED' WHEN 'R' THEN 'replica only' ELSE 'enabled' END,
                        t.tgfoid::regproc) ORDER BY t.tgname) FILTER (WHERE t.tgname IS NOT NULL),
       'enable it (ALTER TABLE mandate.scopes ENABLE TRIGGER <name>) or, when missing, migration 008 has not run '
       || 'completely'
FROM (SELECT 1) AS one
LEFT JOIN (pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid)
       ON t.tgrelid = to_regclass('mandate.scopes') AND NOT t.tgisinternal
      AND (t.tgtype & 1) <> 0 AND (t.tgtype & 2) <> 0 AND (t.tgtype & 4) <> 0
      AND p.prosrc LIKE '%GOVERNANCE VIOLATION%';

INSERT INTO m008_check_results
SELECT 'POST-09', 'Database Schema', 'Domain slug format CHECK ^[a-z0-9_-]+$ on every domain column',
       CASE WHEN count(*) FILTER (WHERE NOT x.ok) = 0 THEN 'PASS' ELSE 'FAIL' END,
       format('%s of %s tables check the slug format', count(*) FILTER (WHERE x.ok), count(*)),
       count(*) FILTER (WHERE NOT x.ok),
       CASE WHEN count(*) FILTER (WHERE NOT x.ok) = 0 THEN array_agg(x.line ORDER BY x.ord)
            ELSE array_agg(x.line ORDER BY x.ord) FILTER (WHERE NOT x.ok) END,
       'add the missing constraint: ALTER TABLE mandate.<table> ADD CONSTRAINT <table>_domain_slug '
       || 'CHECK (domain ~ ''^[a-z0-9_-]+$'') (or VALIDATE CONSTRAINT a NOT VALID one)'
FROM (SELECT v.ord, coalesce(bool_or(con.convalidated), false) AS ok,
             format('%s: %s', v.tbl,
                    coalesce(string_agg(con.conname || CASE WHEN con.convalidated THEN '' ELSE ' (NOT VALID)' END,
                                        ', '),
                             'none')) AS line
      FROM (VALUES ('domains', 1), ('scopes', 2), ('policy_snapshots', 3), ('decision_events', 4),
                   ('verdict_events', 5), ('audit_timeline_entries', 6), ('mandate_specs', 7)) AS v (tbl, ord)
      LEFT JOIN pg_constraint con
             ON con.conrelid = to_regclass('mandate.' || v.tbl) AND con.contype = 'c'
            AND pg_temp.m008_columns(con.conrelid, con.conkey) = ARRAY['domain']
            AND strpos(pg_get_constraintdef(con.oid), '^[a-z0-9_-]+$') > 0
      GROUP BY v.tbl, v.ord) x;

-- Append-only (RFC-002 invariant: history is never updated or deleted), enforced by the database.
INSERT INTO m008_check_results
SELECT 'POST-10', 'Database Schema',
       'Append-only triggers present and enabled (UPDATE and DELETE refused) on every table',
       CASE WHEN count(*) FILTER (WHERE NOT x.ok) = 0 THEN 'PASS' ELSE 'FAIL' END,
       format('%s of %s tables refuse UPDATE and DELETE', count(*) FILTER (WHERE x.ok), count(*)),
       count(*) FILTER (WHERE NOT x.ok),
       CASE WHEN count(*) FILTER (WHERE NOT x.ok) = 0 THEN array_agg(x.line ORDER BY x.ord)
            ELSE array_agg(x.line ORDER BY x.ord) FILTER (WHERE NOT x.ok) END,
       'enable the trigger (ALTER TABLE mandate.<table> ENABLE TRIGGER <name>), or create it: CREATE TRIGGER '
       || 'prevent_<table>_mutation BEFORE UPDATE OR DELETE ON mandate.<table> FOR EACH ROW EXECUTE FUNCTION '
       || 'mandate.prevent_mutation()'
FROM (SELECT v.ord,
             coalesce(bool_or((t.tgtype & 16) <> 0 AND t.tgenabled IN ('O', 'A')), false)
             AND coalesce(bool_or((t.tgtype & 8) <> 0 AND t.tgenabled IN ('O', 'A')), false) AS ok,
             format('%s: %s', v.tbl,
                    CASE WHEN to_regclass('mandate.' || v.tbl) IS NULL THEN 'no such table'
                         ELSE coalesce(string_agg(t.tgname
                                                  || CASE t.tgenabled WHEN 'D' THEN ' (DISABLED)'
                                                                      WHEN 'R' THEN ' (replica only)' ELSE '' END
                                                  || CASE WHEN (t.tgtype & 16) <> 0 AND (t.tgtype & 8) <> 0 THEN ''
                                                          WHEN (t.tgtype & 16) <> 0 THEN ' (UPDATE only)'
                                                          ELSE ' (DELETE only)' END,
                                                  ', ' ORDER BY t.tgname),
                                       'no append-only trigger') END) AS line
      FROM (VALUES ('organizations', 1), ('domains', 2), ('scopes', 3), ('policy_snapshots', 4), ('mandate_specs', 5),
                   ('decision_events', 6), ('verdict_events', 7), ('audit_timeline_entries', 8),
                   ('migration_log', 9)) AS v (tbl, ord)
      LEFT JOIN pg_trigger t
             ON t.tgrelid = to_regclass('mandate.' || v.tbl) AND NOT t.tgisinternal AND (t.tgtype & 1) <> 0
            AND (t.tgtype & 2) <> 0 AND ((t.tgtype & 16) <> 0 OR (t.tgtype & 8) <> 0)
            AND t.tgfoid = to_regprocedure('mandate.prevent_mutation()')
      GROUP BY v.tbl, v.ord) x;

INSERT INTO m008_check_results
SELECT 'POST-11', 'Database Schema', 'TRUNCATE refused on every table (it bypasses row triggers)',
       CASE WHEN count(*) FILTER (WHERE NOT x.ok) = 0 THEN 'PASS' ELSE 'WARN' END,
       format('%s of %s tables refuse TRUNCATE', count(*) FILTER (WHERE x.ok), count(*)),
       count(*) FILTER (WHERE NOT x.ok),
       (array_agg(x.tbl ORDER BY x.ord) FILTER (WHERE NOT x.ok))[1:10],
       'CREATE TRIGGER prevent_<table>_truncate BEFORE TRUNCATE ON mandate.<table> FOR EACH STATEMENT EXECUTE '
       || 'FUNCTION mandate.prevent_mutation()'
FROM (SELECT v.tbl, v.ord, coalesce(bool_or(t.tgenabled IN ('O', 'A')), false) AS ok
      FROM (VALUES ('organizations', 1), ('domains', 2), ('scopes', 3), ('policy_snapshots', 4), ('mandate_specs', 5),
                   ('decision_events', 6), ('verdict_events', 7), ('audit_timeline_entries', 8),
                   ('migration_log', 9)) AS v (tbl, ord)
      LEFT JOIN pg_trigger t
             ON t.tgrelid = to_regclass('mandate.' || v.tbl) AND NOT t.tgisinternal AND (t.tgtype & 32) <> 0
            AND t.tgfoid = to_regprocedure('mandate.prevent_mutation()')
      GROUP BY v.tbl, v.ord) x;

-- =================================================================================================================
-- Data Integrity
-- =================================================================================================================

INSERT INTO m008_check_results
SELECT 'POST-12', 'Data Integrity', 'Row counts per table (compared with the counts before by the runbook)', 'INFO',
       string_agg(format('%s %s', t.tbl, coalesce(t.n::text, 'absent')), ', ' ORDER BY t.ord), NULL, NULL,
       'every count must equal the count before the migration (domains: plus a domain created for unattributed '
       || 'history, if one was chosen)'
FROM (SELECT v.tbl, v.ord, pg_temp.m008_count(v.tbl) AS n
      FROM (VALUES ('organizations', 1), ('domains', 2), ('scopes', 3), ('policy_snapshots', 4),
                   ('mandate_specs', 5), ('decision_events', 6), ('verdict_events', 7),
                   ('audit_timeline_entries', 8), ('migration_log', 9)) AS v (tbl, ord)) AS t;

INSERT INTO m008_check_results
SELECT 'POST-13', 'Data Integrity', 'No NULL domain and no NULL organization_id in any table',
       pg_temp.m008_status(m.missing, p.n, p.error, 'FAIL'),
       pg_temp.m008_measured(m.missing, p.n, p.error, 'every row names its organization and domain',
                             p.n || ' row(s) with a NULL: ' || p.groups),
       coalesce(p.n, 0), p.sample,
       'these rows are not attributed: restore the backup and run the migration again (008 refuses such rows)'
FROM (SELECT pg_temp.m008_missing(ARRAY['domains.domain', 'domains.organization_id', 'scopes.domain',
          'scopes.organization_id', 'scopes.scope_id', 'policy_snapshots.domain', 'policy_snapshots.organization_id',
          'decision_events.domain', 'decision_events.organization_id', 'verdict_events.domain',
          'verdict_events.organization_id', 'audit_timeline_entries.domain', 'audit_timeline_entries.organization_id',
          'mandate_specs.domain', 'mandate_specs.organization_id']) AS missing) m
LEFT JOIN LATERAL pg_temp.m008_probe(CASE WHEN m.missing IS NULL THEN (
    SELECT string_agg(format($f$
        SELECT %1$L, format('%1$s %%s: domain %%s, organization_id %%s', %2$s,
                            coalesce(t.domain, 'NULL'), coalesce(t.organization_id::text, 'NULL'))
        FROM mandate.%1$I t WHERE t.domain IS NULL OR t.organization_id IS NULL
    $f$, v.tbl, v.key), ' UNION ALL ')
    FROM (VALUES ('domains', '''row'''), ('scopes', 't.scope_id'), ('policy_snapshots', 't.snapshot_id'),
                 ('decision_events', 't.decision_id'), ('verdict_events', 't.verdict_id'),
                 ('audit_timeline_entries', 't.entry_id'), ('mandate_specs', 't.spec_id || ''@'' || t.version'))
         AS v (tbl, key)) END) p ON true;

INSERT INTO m008_check_results
SELECT 'POST-14', 'Data Integrity', 'scope_id domain prefix consistency 100% (scopes, verdict_events)',
       pg_temp.m008_status(m.missing, p.n, p.error, 'FAIL'),
       pg_temp.m008_measured(m.missing, p.n, p.error,
                             'every scope id starts with ''<domain>.'' of its row (and every verdict''s scope is of '
                             || 'the verdict''s organization and domain)',
                             p.n || ' inconsistent row(s): ' || p.groups),
       coalesce(p.n, 0), p.sample,
       'a scope id must start with its domain; these rows break RFC-002 invariant 1: contact the Mandate team'
FROM (SELECT pg_temp.m008_missing(ARRAY['scopes.scope_id:text', 'scopes.domain:text', 'scopes.organization_id',
          'verdict_events.verdict_id', 'verdict_events.scope_id:text', 'verdict_events.domain:text',
          'verdict_events.organization_id']) AS missing) m
LEFT JOIN LATERAL pg_temp.m008_probe(CASE WHEN m.missing IS NULL THEN $q$
    SELECT 'scopes', format('%L (domain %L)%s', s.scope_id, s.domain,
                            CASE WHEN s.scope_id !~ '^[a-z0-9_-]+(\.[a-z0-9_-]+)+$' THEN ': malformed' ELSE '' END)
    FROM mandate.scopes s
    WHERE left(s.scope_id, length(s.domain) + 1) IS DISTINCT FROM s.domain || '.'
       OR s.scope_id !~ '^[a-z0-9_-]+(\.[a-z0-9_-]+)+$'
    UNION ALL
    SELECT 'verdict_events', format('verdict %s: scope %L, verdict of %s/%s%s', v.verdict_id, v.scope_id,
                                    v.organization_id, v.domain,
                                    CASE WHEN s.scope_id IS NOT NULL
                                         THEN format(', scope of %s/%s', s.organization_id, s.domain) ELSE '' END)
    FROM mandate.verdict_events v
    LEFT JOIN mandate.scopes s ON s.scope_id = v.scope_id
    WHERE v.scope_id IS NOT NULL
      AND (left(v.scope_id, length(v.domain) + 1) IS DISTINCT FROM v.domain || '.'
           OR (s.scope_id IS NOT NULL AND (s.organization_id, s.domain) IS DISTINCT FROM (v.organization_id, v.domain)))
$q$ END) p ON true;

INSERT INTO m008_check_results
SELECT 'POST-15', 'Data Integrity', 'Scope ids inside JSON (policies[*].scope_id, timeline details.scope_id) converted',
       pg_temp.m008_status(m.missing, p.n, p.error, 'FAIL'),
       pg_temp.m008_measured(m.missing, p.n, p.error,
                             'every embedded scope id starts with its row''s domain and names an existing scope of '
                             || 'the same organization and domain',
                             p.n || ' embedded scope id(s) wrong: ' || p.groups),
       coalesce(p.n, 0), p.sample,
       'a legacy UUID left here names no scope (it was not converted): contact the Mandate team'
FROM (SELECT pg_temp.m008_missing(ARRAY['scopes.scope_id:text', 'scopes.domain:text', 'scopes.organization_id',
          'policy_snapshots.snapshot_id', 'policy_snapshots.policies:jsonb', 'policy_snapshots.domain:text',
          'policy_snapshots.organization_id', 'audit_timeline_entries.entry_id', 'audit_timeline_entries.details:jsonb',
          'audit_timeline_entries.domain:text', 'audit_timeline_entries.organization_id']) AS missing) m
LEFT JOIN LATERAL pg_temp.m008_probe(CASE WHEN m.missing IS NULL THEN $q$
    SELECT 'policy_snapshots', format('snapshot %s policy %s: scope_id %L (snapshot of %s/%s): %s', ps.snapshot_id,
                                      e.p->>'id', e.p->>'scope_id', ps.organization_id, ps.domain,
                                      CASE WHEN s.scope_id IS NULL THEN 'no such scope'
                                           WHEN left(e.p->>'scope_id', length(ps.domain) + 1) <> ps.domain || '.'
                                           THEN 'wrong domain prefix'
                                           ELSE format('scope of %s/%s', s.organization_id, s.domain) END)
    FROM mandate.policy_snapshots ps
    CROSS JOIN LATERAL jsonb_array_elements(ps.policies) AS e (p)
    LEFT JOIN mandate.scopes s ON s.scope_id = e.p->>'scope_id'
    WHERE jsonb_typeof(e.p) = 'object' AND jsonb_typeof(e.p->'scope_id') = 'string'
      AND (s.scope_id IS NULL OR left(e.p->>'scope_id', length(ps.domain) + 1) <> ps.domain || '.'
           OR (s.organization_id, s.domain) IS DISTINCT FROM (ps.organization_id, ps.domain))
    UNION ALL
    SELECT 'audit_timeline_entries', format('entry %s: details.scope_id %L (entry of %s/%s): %s', t.entry_id,
                                            t.details->>'scope_id', t.organization_id, t.domain,
                                            CASE WHEN s.scope_id IS NULL THEN 'no such scope'
                                                 WHEN left(t.details->>'scope_id', length(t.domain) + 1)
                                                      <> t.domain || '.'
                                                 THEN 'wrong domain prefix'
                                                 ELSE format('scope of %s/%s', s.organization_id, s.domain) END)
    FROM mandate.audit_timeline_entries t
    LEFT JOIN mandate.scopes s ON s.scope_id = t.details->>'scope_id'
    WHERE jsonb_typeof(t.details) = 'object' AND jsonb_typeof(t.details->'scope_id') = 'string'
      AND (s.scope_id IS NULL OR left(t.details->>'scope_id', length(t.domain) + 1) <> t.domain || '.'
           OR (s.organization_id, s.domain) IS DISTINCT FROM (t.organization_id, t.domain))
$q$ END) p ON true;

INSERT INTO m008_check_results
SELECT 'POST-16', 'Data Integrity', 'Foreign key references valid (present and validated)',
       CASE WHEN count(*) FILTER (WHERE NOT x.ok) = 0 THEN 'PASS' ELSE 'FAIL' END,
       format('%s of %s required foreign keys present; %s constraint(s) NOT VALID',
              count(*) FILTER (WHERE x.required AND x.ok), count(*) FILTER (WHERE x.required),
              count(*) FILTER (WHERE NOT x.required)),
       count(*) FILTER (WHERE NOT x.ok),
       CASE WHEN count(*) FILTER (WHERE NOT x.ok) = 0 THEN array_agg(x.line ORDER BY x.line)
            ELSE array_agg(x.line ORDER BY x.line) FILTER (WHERE NOT x.ok) END,
       'migration 008 has not run (or not completely); validate a NOT VALID constraint with ALTER TABLE '
       || 'mandate.<table> VALIDATE CONSTRAINT <name> (it fails on the rows that break it)'
FROM (SELECT true AS required, coalesce(bool_or(con.convalidated), false) AS ok,
             format('%s(%s) -> %s: %s', v.tbl, v.col, v.ref,
                    coalesce(string_agg(con.conname || CASE WHEN con.convalidated THEN '' ELSE ' (NOT VALID)' END,
                                        ', '),
                             'missing')) AS line
      FROM (VALUES ('verdict_events', 'decision_id', 'decision_events'),
                   ('verdict_events', 'snapshot_id', 'policy_snapshots'), ('verdict_events', 'scope_id', 'scopes'),
                   ('audit_timeline_entries', 'decision_id', 'decision_events'),
                   ('domains', 'organization_id', 'organizations')) AS v (tbl, col, ref)
      LEFT JOIN pg_constraint con
             ON con.conrelid = to_regclass('mandate.' || v.tbl) AND con.contype = 'f'
            AND con.confrelid = to_regclass('mandate.' || v.ref)
            AND v.col = ANY (pg_temp.m008_columns(con.conrelid, con.conkey))
      GROUP BY v.tbl, v.col, v.ref
      UNION ALL
      SELECT false, false, format('%s: %s NOT VALID', con.conrelid::regclass, con.conname)
      FROM pg_constraint con JOIN pg_namespace n ON n.oid = con.connamespace
      WHERE n.nspname = 'mandate' AND con.contype IN ('f', 'c') AND NOT con.convalidated) x;

INSERT INTO m008_check_results
SELECT 'POST-17', 'Data Integrity', 'No orphaned records',
       pg_temp.m008_status(m.missing, p.n, p.error, 'FAIL'),
       pg_temp.m008_measured(m.missing, p.n, p.error, 'every reference names an existing row',
                             p.n || ' orphaned row(s): ' || p.groups),
       coalesce(p.n, 0), p.sample,
       'a foreign key was bypassed or is missing: restore the backup, or contact the Mandate team'
FROM (SELECT pg_temp.m008_missing(ARRAY['domains.domain', 'domains.organization_id', 'scopes.scope_id:text',
          'scopes.domain', 'scopes.organization_id', 'policy_snapshots.snapshot_id', 'policy_snapshots.domain',
          'policy_snapshots.organization_id', 'decision_events.decision_id', 'decision_events.domain',
          'decision_events.organization_id', 'verdict_events.verdict_id', 'verdict_events.decision_id',
          'verdict_events.snapshot_id', 'verdict_events.scope_id:text', 'verdict_events.domain',
          'verdict_events.organization_id', 'audit_timeline_entries.entry_id', 'audit_timeline_entries.decision_id',
          'audit_timeline_entries.domain', 'audit_timeline_entries.organization_id', 'mandate_specs.spec_id',
          'mandate_specs.version', 'mandate_specs.domain', 'mandate_specs.organization_id']) AS missing) m
LEFT JOIN LATERAL pg_temp.m008_probe(CASE WHEN m.missing IS NULL THEN (
    SELECT string_agg(q, ' UNION ALL ') FROM (
        SELECT format($f$
            SELECT '%1$s -> domains', format('%1$s %%s -> %%s/%%s', %2$s, t.organization_id, t.domain)
            FROM mandate.%1$I t
            WHERE NOT EXISTS (SELECT 1 FROM mandate.domains d
                              WHERE d.organization_id = t.organization_id AND d.domain = t.domain)
        $f$, v.tbl, v.key) AS q
        FROM (VALUES ('scopes', 't.scope_id'), ('policy_snapshots', 't.snapshot_id'),
                     ('decision_events', 't.decision_id'), ('verdict_events', 't.verdict_id'),
                     ('audit_timeline_entries', 't.entry_id'), ('mandate_specs', 't.spec_id || ''@'' || t.version'))
             AS v (tbl, key)
        UNION ALL
        SELECT $f$
            SELECT 'domains -> organizations', format('domain %s/%s', d.organization_id, d.domain)
            FROM mandate.domains d
            WHERE NOT EXISTS (SELECT 1 FROM mandate.organizations o WHERE o.organization_id = d.organization_id)
        $f$
        UNION ALL
        SELECT $f$
            SELECT 'verdict_events -> decision_events', format('verdict %s -> decision %s', v.verdict_id, v.decision_id)
            FROM mandate.verdict_events v
            WHERE NOT EXISTS (SELECT 1 FROM mandate.decision_events e WHERE e.decision_id = v.decision_id)
        $f$
        UNION ALL
        SELECT $f$
            SELECT 'verdict_events -> scopes', format('verdict %s -> scope %s', v.verdict_id, v.scope_id)
            FROM mandate.verdict_events v
            WHERE v.scope_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM mandate.scopes s WHERE s.scope_id = v.scope_id)
        $f$
        UNION ALL
        SELECT $f$
            SELECT 'verdict_events -> policy_snapshots',
                   format('verdict %s -> snapshot %s', v.verdict_id, v.snapshot_id)
            FROM mandate.verdict_events v
            WHERE v.snapshot_id IS NOT NULL
              AND NOT EXISTS (SELECT 1 FROM mandate.policy_snapshots ps WHERE ps.snapshot_id = v.snapshot_id)
        $f$
        UNION ALL
        SELECT $f$
            SELECT 'audit_timeline_entries -> decision_events',
                   format('entry %s -> decision %s', t.entry_id, t.decision_id)
            FROM mandate.audit_timeline_entries t
            WHERE NOT EXISTS (SELECT 1 FROM mandate.decision_events e WHERE e.decision_id = t.decision_id)
        $f$) AS parts) END) p ON true;

-- Migrated scopes carry their legacy UUID (history stays traceable); scopes created after 008 have none but must
-- have an owning team (and were created after 008 ran).
INSERT INTO m008_check_results
SELECT 'POST-18', 'Data Integrity', 'Every migrated scope keeps its legacy_scope_uuid',
       pg_temp.m008_status(m.missing, p.n, p.error, 'FAIL'),
       pg_temp.m008_measured(m.missing, p.n, p.error, 'every scope older than migration 008 keeps its legacy UUID',
                             p.n || ' scope(s): ' || p.groups),
       coalesce(p.n, 0), p.sample,
       'history references these scopes by their legacy UUID: restore the backup, or contact the Mandate team'
FROM (SELECT pg_temp.m008_missing(ARRAY['scopes.scope_id:text', 'scopes.legacy_scope_uuid:uuid', 'scopes.owning_team',
          'scopes.created_at', 'migration_log.migration_version', 'migration_log.started_at']) AS missing) m
LEFT JOIN LATERAL pg_temp.m008_probe(CASE WHEN m.missing IS NULL THEN $q$
    SELECT 'without legacy UUID', format('%L (created %s, owning team %s)', s.scope_id, s.created_at,
                                         coalesce(quote_literal(s.owning_team), 'NULL'))
    FROM mandate.scopes s
    WHERE s.legacy_scope_uuid IS NULL
      AND (s.owning_team IS NULL
           OR s.created_at < (SELECT min(l.started_at) FROM mandate.migration_log l WHERE l.migration_version = 8))
    UNION ALL
    SELECT 'legacy UUID used twice', format('%s: %s', s.legacy_scope_uuid, string_agg(quote_literal(s.scope_id), ', '))
    FROM mandate.scopes s WHERE s.legacy_scope_uuid IS NOT NULL
    GROUP BY s.legacy_scope_uuid HAVING count(*) > 1
$q$ END) p ON true;

-- =================================================================================================================
-- Governance Compliance: the constraint tests of the checklist (T+60), rolled back
-- =================================================================================================================

INSERT INTO m008_check_results
SELECT 'POST-19', 'Governance Compliance',
       'scope_id prefix validation active: a wrong prefix is refused with GOVERNANCE VIOLATION',
       CASE WHEN m.missing IS NULL AND r.message LIKE 'GOVERNANCE VIOLATION%' THEN 'PASS' ELSE 'FAIL' END,
       CASE WHEN m.missing IS NOT NULL
            THEN 'not verifiable, the schema is not migrated: ' || array_to_string(m.missing, ', ')
            WHEN r.accepted THEN 'the insert was ACCEPTED (rolled back)'
            WHEN r.message LIKE 'GOVERNANCE VIOLATION%' THEN 'refused: ' || r.message
            ELSE format('refused, but not by the scope-prefix rule: %s (SQLSTATE %s)', r.message, r.sqlstate) END,
       CASE WHEN m.missing IS NULL AND r.message LIKE 'GOVERNANCE VIOLATION%' THEN 0 ELSE 1 END,
       CASE WHEN m.missing IS NULL THEN ARRAY['INSERT INTO scopes (scope_id, domain, organization_id, owning_team) '
             || 'VALUES (''wrong.prod.system'', ''finance'', ''00000000-0000-0000-0000-000000000000'', ''Team'')'] END,
       'the BEFORE INSERT trigger on mandate.scopes (enforce_scope_domain_prefix) is missing or disabled: see POST-08'
FROM (SELECT pg_temp.m008_missing(ARRAY['scopes.scope_id:text', 'scopes.domain:text', 'scopes.organization_id',
          'scopes.owning_team']) AS missing) m
LEFT JOIN LATERAL pg_temp.m008_try(CASE WHEN m.missing IS NULL THEN $s$
    INSERT INTO mandate.scopes (scope_id, domain, organization_id, owning_team)
    VALUES ('wrong.prod.system', 'finance', '00000000-0000-0000-0000-000000000000', 'Team')
$s$ END) r ON true;

INSERT INTO m008_check_results
SELECT 'POST-20', 'Governance Compliance', 'Domain slug format validated: a bad slug is refused (check violation)',
       CASE WHEN m.missing IS NULL AND r.sqlstate = '23514' THEN 'PASS' ELSE 'FAIL' END,
       CASE WHEN m.missing IS NOT NULL
            THEN 'not verifiable, the schema is not migrated: ' || array_to_string(m.missing, ', ')
            WHEN r.accepted THEN 'the insert was ACCEPTED (rolled back)'
            WHEN r.sqlstate = '23514' THEN 'refused: ' || r.message
            ELSE format('refused, but not by a check constraint: %s (SQLSTATE %s)', r.message, r.sqlstate) END,
       CASE WHEN m.missing IS NULL AND r.sqlstate = '23514' THEN 0 ELSE 1 END,
       CASE WHEN m.missing IS NULL THEN ARRAY['INSERT INTO domains (organization_id, domain) '
             || 'VALUES (''00000000-0000-0000-0000-000000000000'', ''Bad-Domain'')'] END,
       'mandate.domains lacks its slug CHECK: see POST-09'
FROM (SELECT pg_temp.m008_missing(ARRAY['domains.domain:text', 'domains.organization_id']) AS missing) m
LEFT JOIN LATERAL pg_temp.m008_try(CASE WHEN m.missing IS NULL THEN $s$
    INSERT INTO mandate.domains (organization_id, domain) VALUES ('00000000-0000-0000-0000-000000000000', 'Bad-Domain')
$s$ END) r ON true;

INSERT INTO m008_check_results
SELECT 'POST-21', 'Governance Compliance',
       '(organization_id, domain) isolation enforced: a domain the organization lacks is refused',
       CASE WHEN m.missing IS NOT NULL THEN 'FAIL'
            WHEN o.n = 0 THEN 'WARN'
            WHEN r.sqlstate = '23503' AND c.confrelid = to_regclass('mandate.domains') THEN 'PASS'
            ELSE 'FAIL' END,
       CASE WHEN m.missing IS NOT NULL
            THEN 'not verifiable, the schema is not migrated: ' || array_to_string(m.missing, ', ')
            WHEN o.n = 0 THEN 'not tested: there is no organization'
            WHEN r.accepted THEN 'the insert was ACCEPTED (rolled back)'
            WHEN r.sqlstate = '23503' AND c.confrelid = to_regclass('mandate.domains')
            THEN format('refused by %s: %s', r.constraint_name, r.message)
            ELSE format('refused, but not by a foreign key to domains: %s (SQLSTATE %s)', r.message, r.sqlstate) END,
       CASE WHEN m.missing IS NULL AND o.n > 0 AND r.sqlstate = '23503' AND c.confrelid = to_regclass('mandate.domains')
            THEN 0 ELSE 1 END,
       CASE WHEN m.missing IS NULL AND o.n > 0 THEN ARRAY['INSERT INTO scopes (scope_id, domain, organization_id, '
             || 'owning_team) VALUES (''m008-isolation-check.verify'', ''m008-isolation-check'', <an existing '
             || 'organization>, ''Team'')'] END,
       'the composite foreign key scopes (organization_id, domain) -> domains is missing: see POST-06'
FROM (SELECT pg_temp.m008_missing(ARRAY['scopes.scope_id:text', 'scopes.domain:text', 'scopes.organization_id',
          'scopes.owning_team', 'organizations.organization_id']) AS missing) m
CROSS JOIN (SELECT coalesce(pg_temp.m008_count('organizations'), 0) AS n) o
LEFT JOIN LATERAL pg_temp.m008_try(CASE WHEN m.missing IS NULL AND o.n > 0 THEN $s$
    INSERT INTO mandate.scopes (scope_id, domain, organization_id, owning_team)
    SELECT 'm008-isolation-check.verify', 'm008-isolation-check', o.organization_id, 'Team'
    FROM mandate.organizations o ORDER BY o.organization_id LIMIT 1
$s$ END) r ON true
LEFT JOIN pg_constraint c ON c.conname = r.constraint_name AND c.conrelid = to_regclass('mandate.scopes');

-- =================================================================================================================
-- Operational Readiness
-- =================================================================================================================

INSERT INTO m008_check_results
SELECT 'POST-22', 'Operational Readiness', 'Migration log entry created (migration_log has version 8)',
       CASE WHEN m.missing IS NULL AND p.error IS NULL AND p.n > 0 THEN 'PASS' ELSE 'FAIL' END,
       CASE WHEN m.missing IS NOT NULL THEN 'mandate.migration_log is not there (or lacks columns): '
                                            || array_to_string(m.missing, ', ')
            WHEN p.error IS NOT NULL THEN 'the check could not run: ' || p.error
            WHEN p.n > 0 THEN 'version 8 recorded'
            ELSE 'mandate.migration_log has no row for version 8' END,
       CASE WHEN m.missing IS NULL AND p.error IS NULL AND p.n > 0 THEN 0 ELSE 1 END, p.sample,
       'migration 008 has not run on this database (or did not finish): run it'
FROM (SELECT pg_temp.m008_missing(ARRAY['migration_log.migration_version', 'migration_log.name',
          'migration_log.finished_at', 'migration_log.applied_by', 'migration_log.tool_version']) AS missing) m
LEFT JOIN LATERAL pg_temp.m008_probe(CASE WHEN m.missing IS NULL THEN $q$
    SELECT 'migration_log', format('version %s %s, finished %s, by %s with %s', l.migration_version, l.name,
                                   to_char(l.finished_at, 'YYYY-MM-DD HH24:MI:SS TZ'), l.applied_by, l.tool_version)
    FROM mandate.migration_log l WHERE l.migration_version = 8
$q$ END) p ON true;

-- The checklist's plain `psql -d mandate -c "INSERT INTO domains ..."` commands rely on it.
INSERT INTO m008_check_results
SELECT 'POST-23', 'Operational Readiness', 'The database''s default search_path includes mandate',
       CASE WHEN x.has_mandate THEN 'PASS' ELSE 'FAIL' END,
       coalesce('ALTER DATABASE ' || current_database() || ' SET ' || x.setting,
                'no default search_path for this database'),
       CASE WHEN x.has_mandate THEN 0 ELSE 1 END, NULL,
       format('as the database owner: ALTER DATABASE %I SET search_path = mandate, public', current_database())
FROM (SELECT 1) AS one
LEFT JOIN LATERAL (
    SELECT c.setting,
           'mandate' = ANY (SELECT trim(BOTH ' "' FROM part)
                            FROM unnest(string_to_array(substr(c.setting, 13), ',')) AS part)
               AS has_mandate
    FROM pg_db_role_setting s
    CROSS JOIN LATERAL unnest(s.setconfig) AS c (setting)
    WHERE s.setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database()) AND s.setrole = 0
      AND c.setting LIKE 'search\_path=%'
) x ON true;

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
        RAISE EXCEPTION 'migration 008 post-verification FAILED: %', failed
            USING HINT = 'do not restart services; review each failed check and its remedy; if it cannot be '
                         'corrected, restore the verified backup with pg_restore';
    END IF;
    RAISE NOTICE 'migration 008 post-verification passed (warnings: %)', coalesce(warned, 'none');
END
$$;
ROLLBACK;
