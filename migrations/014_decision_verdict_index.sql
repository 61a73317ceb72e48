-- Decision stages list by verdict through an index: the verdict filter reads only the stages it shows
--
-- What and why (docs/migrations.md "014"):
-- * A list of decision stages is in their declared order (`timestamp`, decision_id, stage, newest first), and a
--   stage's verdict lives in verdict_events. Filtered by verdict, the list walked the domain's stages newest first and
--   looked each one's verdict up until it had a page: fine for a common verdict, and on a large database (10 M
--   decisions, a cold cache) tens of seconds for one whose matches are sparse in the part of history it walks.
-- * New column decision_events.verdict: the verdict stored with the stage. The server writes a stage and its verdict
--   in one statement (db/writes.py), so it fills the column in that statement; nothing ever changes it. The verdict
--   of a stage is still defined as its latest verdict (db/decisions.py, VERDICT_OF_DECISION) and the list checks it;
--   the column only lets an index find the candidates in the list's order.
-- * idx_decision_events_verdict: (organization_id, domain, verdict, "timestamp" DESC, decision_id DESC, stage DESC):
--   a verdict-filtered page is one ordered index range. idx_decision_events_unlisted: the same order over the stages
--   whose column is NULL (stored without a verdict, or written by something other than the server), which the list
--   reads beside it, so no stage is missed.
-- Legacy databases: the column is filled on every stored stage that has a verdict, with its latest one (the rule of
-- VERDICT_OF_DECISION: a verdict's own stage, or, for a verdict written before decisions had stages, its decision's
-- earliest stage). The latest verdicts are gathered once into a temporary table, and decision_events is rewritten
-- with the column filled from it (ALTER COLUMN … TYPE … USING: a new heap written in one pass and its indexes
-- rebuilt, as PostgreSQL rewrites a table; no row trigger fires, no dead row is left). No recorded value changes.
-- (The first version of this file filled the column with an UPDATE of every row: at 1 M decisions it took 339 s
-- and left decision_events 2.3 × its size, every row and index entry written twice: docs/migrations.md "014".)
\set ON_ERROR_STOP on
BEGIN;

SET LOCAL search_path = mandate, public;

ALTER TABLE mandate.decision_events ADD COLUMN verdict mandate.verdict;
COMMENT ON COLUMN mandate.decision_events.verdict IS
    'The verdict stored with this stage (written with it, never changed); NULL when stored without one. For lists '
    'by verdict; the verdict of a stage is its latest verdict_events row.';

-- When 008 runs in the same transaction (the runbook), these tables were just rebuilt and have no statistics yet:
-- without them the planner pairs verdicts and stages by nested loops, quadratic in the rows.
ANALYZE mandate.decision_events, mandate.verdict_events;
CREATE TEMPORARY TABLE m014_latest_verdicts ON COMMIT DROP AS
SELECT DISTINCT ON (v.decision_id, s.stage) v.decision_id, s.stage, v.verdict
FROM mandate.verdict_events v
CROSS JOIN LATERAL (
    SELECT coalesce(v.stage, (SELECT e.stage FROM mandate.decision_events e
                              WHERE e.decision_id = v.decision_id ORDER BY e.created_at, e.stage LIMIT 1)) AS stage
) s
WHERE s.stage IS NOT NULL
ORDER BY v.decision_id, s.stage, v."timestamp" DESC, v.verdict_id DESC;
ALTER TABLE m014_latest_verdicts ADD PRIMARY KEY (decision_id, stage);
ANALYZE m014_latest_verdicts;
CREATE FUNCTION pg_temp.m014_latest_verdict(uuid, mandate.stage) RETURNS mandate.verdict
    LANGUAGE sql STABLE AS 'SELECT verdict FROM m014_latest_verdicts WHERE decision_id = $1 AND stage = $2';
ALTER TABLE mandate.decision_events
    ALTER COLUMN verdict TYPE mandate.verdict USING pg_temp.m014_latest_verdict(decision_id, stage);
DROP FUNCTION pg_temp.m014_latest_verdict(uuid, mandate.stage);

CREATE INDEX idx_decision_events_verdict ON mandate.decision_events
    (organization_id, domain, verdict, "timestamp" DESC, decision_id DESC, stage DESC);
CREATE INDEX idx_decision_events_unlisted ON mandate.decision_events
    (organization_id, domain, "timestamp" DESC, decision_id DESC, stage DESC) WHERE verdict IS NULL;

COMMIT;
