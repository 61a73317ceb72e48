-- Mandate legacy schema, migration 003: audit timeline
--
-- What: audit_timeline_entries, the ordered, append-only story of each decision (received, evaluated, outcome),
-- with who wrote each entry (event_source) and under which authority (authority_level).
-- Why: part of rebuilding the original project's schema exactly (LEGACY-SCHEMA.md). The column order follows the
-- original project's table (intent, stage, actor, target, summary, ...).
--
-- Run with: psql -v ON_ERROR_STOP=1 -d <database> -f migrations/003_audit_timeline.sql
\set ON_ERROR_STOP on
BEGIN;

SET search_path = mandate, public;

CREATE TABLE mandate.audit_timeline_entries (
    entry_id            UUID                    PRIMARY KEY DEFAULT gen_random_uuid(),
    decision_id         UUID                    NOT NULL REFERENCES mandate.decision_events (decision_id),
    intent              TEXT                    NOT NULL,
    stage               mandate.stage           NOT NULL,
    actor               TEXT                    NOT NULL,
    target              TEXT                    NOT NULL,
    summary             TEXT                    NOT NULL,
    -- Free-form structured details; may embed scope UUIDs as text (e.g. {"scope_id": "..."}).
    details             JSONB                   NOT NULL DEFAULT '{}',
    severity            TEXT                    NOT NULL,
    event_source        mandate.event_source    NOT NULL,
    authority_level     mandate.authority_level NOT NULL,
    timestamp           TIMESTAMPTZ             NOT NULL,
    created_at          TIMESTAMPTZ             NOT NULL DEFAULT now()
);

CREATE INDEX idx_audit_timeline_decision_id ON mandate.audit_timeline_entries (decision_id);
CREATE INDEX idx_audit_timeline_intent ON mandate.audit_timeline_entries (intent);
CREATE INDEX idx_audit_timeline_stage ON mandate.audit_timeline_entries (stage);
CREATE INDEX idx_audit_timeline_actor ON mandate.audit_timeline_entries (actor);
CREATE INDEX idx_audit_timeline_severity ON mandate.audit_timeline_entries (severity);
CREATE INDEX idx_audit_timeline_source ON mandate.audit_timeline_entries (event_source);
CREATE INDEX idx_audit_timeline_authority_level ON mandate.audit_timeline_entries (authority_level);
CREATE INDEX idx_audit_timeline_timestamp ON mandate.audit_timeline_entries (timestamp DESC);
CREATE INDEX idx_audit_timeline_created_at ON mandate.audit_timeline_entries (created_at DESC);
CREATE INDEX idx_audit_timeline_details ON mandate.audit_timeline_entries USING GIN (details);

-- The original names this trigger after the short name "audit_timeline", not the table.
CREATE TRIGGER prevent_audit_timeline_mutation
    BEFORE UPDATE OR DELETE ON mandate.audit_timeline_entries
    FOR EACH ROW EXECUTE FUNCTION mandate.prevent_mutation();

COMMIT;
