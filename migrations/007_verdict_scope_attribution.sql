-- Mandate legacy schema, migration 007: scope attribution on verdicts
--
-- What: verdict_events gains scope_id (UUID, foreign key to scopes), domain (the domain's name, copied at write
-- time) and owning_team (copied from the scope), each indexed.
-- Why: every verdict must say under whose authority it was given. Part of rebuilding the original project's schema
-- exactly (LEGACY-SCHEMA.md). All three are nullable: verdicts written before this migration have none of them.
--
-- Run with: psql -v ON_ERROR_STOP=1 -d <database> -f migrations/007_verdict_scope_attribution.sql
\set ON_ERROR_STOP on
BEGIN;

SET search_path = mandate, public;

-- Declared inline so the foreign key gets the default name verdict_events_scope_id_fkey.
ALTER TABLE mandate.verdict_events
    ADD COLUMN scope_id    UUID REFERENCES mandate.scopes (scope_id),
    ADD COLUMN domain      TEXT,
    ADD COLUMN owning_team TEXT;

CREATE INDEX idx_verdict_events_scope_id ON mandate.verdict_events (scope_id);
CREATE INDEX idx_verdict_events_domain ON mandate.verdict_events (domain);
CREATE INDEX idx_verdict_events_owning_team ON mandate.verdict_events (owning_team);

COMMIT;
