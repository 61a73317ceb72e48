-- Decision rollups, prefix search and the approval queue's index: the UI's counts, charts and searches at any size
--
-- What and why (docs/ui.md "Counts at scale", docs/migrations.md "013"):
-- * decision_rollups: decision stages counted per UTC hour and per UTC day, per stage and verdict, once for all of
--   them (`dimension` 'all') and once per value of each breakdown the UI offers: the agent, every matched policy,
--   the scope that held authority, its owning team, the spec. It is *derived* data, not history: a cache of
--   `count(*)` over decision_events that can be rebuilt from them at any time (`mandate rollups rebuild`), so it is
--   the one table of the schema that is updated in place. The counts of a page are the rollups of the whole hours
--   and days in its range plus the decisions the rollups do not hold yet (their edges and those stored since the
--   last fold), read in one snapshot: they equal `count(*)` over the decisions, whatever the fold's progress.
-- * decision_rollup_progress: one row, `folded_before`: every decision stage stored (`created_at`) before it is
--   counted in decision_rollups, none after it.
-- * fold_decision_rollups(horizon, max_rows): adds the decision stages stored from `folded_before` up to
--   `horizon` (at most about `max_rows` of them) to the rollups and moves `folded_before`, in the caller's
--   transaction. The caller passes as `horizon` the start of the oldest transaction still open in the database (a
--   decision's `created_at` is its transaction's start, so nothing can still be stored before it); one caller at a
--   time (an advisory lock: the others return 0). SECURITY DEFINER: the application role may fold, never write
--   rollups itself (INSERT revoked below, like the token tables) — the table owner updates them.
-- * Prefix search: the UI's actor and target filters match the start of the value in any case; two indexes on the
--   lower-cased values (text_pattern_ops, so LIKE 'x%' uses them under any collation) replace the plain ones, which
--   the API's exact filters now reach through the same expression.
-- * idx_approval_requests_live: the approval queue reads the requests of a domain that have not expired yet (no
--   expiry: never), instead of every request the domain ever had; idx_approval_resolutions_ending: its counts of
--   rejected, withdrawn and expired requests read those endings only.
-- Legacy databases: nothing to convert. Every decision already stored is folded by the server after this migration
-- (in chunks, while it serves; until then the pages count those decisions directly).
\set ON_ERROR_STOP on
BEGIN;

SET LOCAL search_path = mandate, public;

CREATE TABLE mandate.decision_rollups (
    organization_id uuid          NOT NULL,
    domain          text          NOT NULL,
    dimension       text          NOT NULL CHECK (dimension IN ('all', 'agent', 'policy', 'scope', 'owning_team', 'spec')),
    missing         boolean       NOT NULL,  -- the stage had no value for the dimension (then key is '')
    key             text          NOT NULL,
    grain           text          NOT NULL CHECK (grain IN ('hour', 'day')),
    bucket          timestamptz   NOT NULL,  -- the UTC hour or day the decision's timestamp falls in
    stage           mandate.stage NOT NULL,
    verdict         text          NOT NULL CHECK (verdict IN ('ALLOW', 'OBSERVE', 'PAUSE', 'BLOCK', 'NONE')),
    decisions       bigint        NOT NULL CHECK (decisions > 0),
    PRIMARY KEY (organization_id, domain, dimension, grain, missing, key, bucket, stage, verdict)
);

CREATE INDEX idx_decision_rollups_time ON mandate.decision_rollups (organization_id, domain, dimension, grain, bucket);

CREATE TABLE mandate.decision_rollup_progress (
    singleton     boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
    folded_before timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION mandate.fold_decision_rollups(horizon timestamptz, max_rows integer)
RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = mandate, pg_catalog, pg_temp AS $$
DECLARE
    lo timestamptz;
    hi timestamptz := least(horizon, now());
    cut timestamptz;
    folded bigint;
BEGIN
    IF NOT pg_try_advisory_xact_lock(hashtext('mandate.fold_decision_rollups')) THEN
        RETURN 0;  -- another session is folding
    END IF;
    SELECT p.folded_before INTO lo FROM mandate.decision_rollup_progress p;
    lo := coalesce(lo, '-infinity');
    IF hi IS NULL OR hi <= lo THEN
        RETURN 0;
    END IF;
    -- At most about max_rows: stop at the created_at of the next row (all the rows of one instant go together).
    SELECT e.created_at INTO cut FROM mandate.decision_events e
    WHERE e.created_at >= lo AND e.created_at < hi ORDER BY e.created_at OFFSET greatest(max_rows, 1) LIMIT 1;
    IF cut = lo THEN
        SELECT min(e.created_at) INTO cut FROM mandate.decision_events e WHERE e.created_at > lo AND e.created_at < hi;
    END IF;
    hi := coalesce(cut, hi);

    WITH src AS (
        SELECT d.organization_id, d.domain, date_trunc('hour', d."timestamp", 'UTC') AS hour, d.stage,
               coalesce(v.verdict::text, 'NONE') AS verdict, d.scope->>'agent' AS agent, v.scope_id, v.owning_team,
               d.spec_id, v.matched_policy_ids
        FROM mandate.decision_events d
        LEFT JOIN LATERAL (
            SELECT v.* FROM mandate.verdict_events v
            WHERE v.decision_id = d.decision_id
              AND coalesce(v.stage, (SELECT e.stage FROM mandate.decision_events e
                                     WHERE e.decision_id = v.decision_id ORDER BY e.created_at, e.stage LIMIT 1))
                  = d.stage
            ORDER BY v."timestamp" DESC, v.verdict_id DESC LIMIT 1) v ON true
        WHERE d.created_at >= lo AND d.created_at < hi
    ), keyed AS (
        SELECT organization_id, domain, hour, stage, verdict, k.dimension, k.key
        FROM src
        CROSS JOIN LATERAL (VALUES ('all', ''), ('agent', agent), ('scope', scope_id), ('owning_team', owning_team),
                                   ('spec', spec_id)) AS k (dimension, key)
        UNION ALL
        SELECT organization_id, domain, hour, stage, verdict, 'policy', p.policy_id
        FROM src LEFT JOIN LATERAL unnest(matched_policy_ids) AS p (policy_id) ON true
    ), hours AS (
        SELECT organization_id, domain, dimension, key IS NULL AS missing, coalesce(key, '') AS key, hour, stage,
               verdict, count(*) AS decisions
        FROM keyed GROUP BY 1, 2, 3, 4, 5, 6, 7, 8
    ), grains AS (
        SELECT organization_id, domain, dimension, missing, key, 'hour' AS grain, hour AS bucket, stage, verdict,
               decisions
        FROM hours
        UNION ALL
        SELECT organization_id, domain, dimension, missing, key, 'day', date_trunc('day', hour, 'UTC'), stage, verdict,
               sum(decisions)
        FROM hours GROUP BY 1, 2, 3, 4, 5, 7, 8, 9
    )
    INSERT INTO mandate.decision_rollups AS r
        (organization_id, domain, dimension, missing, key, grain, bucket, stage, verdict, decisions)
    SELECT organization_id, domain, dimension, missing, key, grain, bucket, stage, verdict, decisions FROM grains
    ON CONFLICT (organization_id, domain, dimension, grain, missing, key, bucket, stage, verdict)
    DO UPDATE SET decisions = r.decisions + EXCLUDED.decisions;

    SELECT count(*) INTO folded FROM mandate.decision_events e WHERE e.created_at >= lo AND e.created_at < hi;
    INSERT INTO mandate.decision_rollup_progress (singleton, folded_before) VALUES (true, hi)
    ON CONFLICT (singleton) DO UPDATE SET folded_before = EXCLUDED.folded_before, updated_at = now();
    RETURN folded;
END
$$;

-- Only roles that may store decisions may fold them (the application role; the owner runs it as itself).
REVOKE ALL ON FUNCTION mandate.fold_decision_rollups(timestamptz, integer) FROM PUBLIC;
DO $$
DECLARE r record;
BEGIN
    FOR r IN SELECT DISTINCT grantee FROM information_schema.role_table_grants
             WHERE table_schema = 'mandate' AND table_name IN ('decision_rollups', 'decision_rollup_progress')
               AND privilege_type = 'INSERT' AND grantee <> current_user
    LOOP
        EXECUTE format('REVOKE INSERT ON mandate.decision_rollups, mandate.decision_rollup_progress FROM %I',
                       r.grantee);
    END LOOP;
    FOR r IN SELECT DISTINCT grantee FROM information_schema.role_table_grants
             WHERE table_schema = 'mandate' AND table_name = 'decision_events' AND privilege_type = 'INSERT'
               AND grantee <> current_user
    LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION mandate.fold_decision_rollups(timestamptz, integer) TO %I',
                       r.grantee);
    END LOOP;
END $$;

DROP INDEX mandate.idx_decision_events_actor;
DROP INDEX mandate.idx_decision_events_target;
CREATE INDEX idx_decision_events_actor_lower ON mandate.decision_events (lower(actor) text_pattern_ops);
CREATE INDEX idx_decision_events_target_lower ON mandate.decision_events (lower(target) text_pattern_ops);

CREATE INDEX idx_approval_requests_live ON mandate.approval_requests
    (organization_id, domain, (coalesce(expires_at, 'infinity'::timestamptz)));
CREATE INDEX idx_approval_resolutions_ending ON mandate.approval_resolutions (kind, approval_id)
    WHERE kind <> 'approved';

COMMIT;
