-- Decision stages list by agent through an index: a page of one agent's decisions reads only those decisions
--
-- What and why (docs/migrations.md "015"):
-- * A list filtered by domain and agent (`GET /api/decisions?agent=…`, exact) walked the domain's stages newest
--   first through idx_decision_events_org_domain_ts and read each one's row to test `scope->>'agent'`, until it had
--   a page: for an agent with one decision in 25 of its domain, ~1,250 rows read for a page of 50, from all over
--   the table (bench/findings.md, "Reads", the 10 M run of 2026-12-07).
-- * idx_decision_events_agent: (organization_id, domain, scope->>'agent', then the list's own order) — a page of
--   one agent is one ordered index range, ~50 entries and ~50 rows. The expression is the one the list tests
--   (db/decisions.py), so the planner matches it. Decisions without an agent are indexed under NULL, which no
--   filter asks for. The UI's search by part of an agent name (ILIKE) does not use it.
-- Legacy databases: nothing to convert; the index is built over every stored stage (about a minute at 10 M
-- decisions; writes to decision_events wait for it, as for every index of this chain).
\set ON_ERROR_STOP on
BEGIN;

SET LOCAL search_path = mandate, public;

CREATE INDEX idx_decision_events_agent ON mandate.decision_events
    (organization_id, domain, (scope ->> 'agent'), "timestamp" DESC, decision_id DESC, stage DESC);

COMMIT;
