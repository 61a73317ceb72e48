-- Mandate legacy schema, migration 002: policy snapshots and verdict events
--
-- What: policy_snapshots (immutable sets of policies, stored as a JSON array) and verdict_events (Mandate's answer
-- to a decision, recording the snapshot it was computed from), both append-only.
-- Why: part of rebuilding the original project's schema exactly (LEGACY-SCHEMA.md). Organization, domain, spec and
-- scope attribution columns are added by migrations 005-007, in the original order.
--
-- Run with: psql -v ON_ERROR_STOP=1 -d <database> -f migrations/002_policy_snapshots_and_verdicts.sql
\set ON_ERROR_STOP on
BEGIN;

SET search_path = mandate, public;

-- -----------------------------------------------------------------------------------------------------------------
-- policy_snapshots: an immutable set of policies; never edited, only superseded by a new snapshot
-- -----------------------------------------------------------------------------------------------------------------

-- snapshot_id has no default: the writer chooses it (the original did so too).
CREATE TABLE mandate.policy_snapshots (
    snapshot_id     UUID        PRIMARY KEY,
    version         INTEGER     NOT NULL DEFAULT 1,
    policies        JSONB       NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),

    CONSTRAINT policy_snapshots_version_positive CHECK (version > 0),
    CONSTRAINT policy_snapshots_policies_array CHECK (jsonb_typeof(policies) = 'array')
);

CREATE INDEX idx_policy_snapshots_created_at ON mandate.policy_snapshots (created_at DESC);

CREATE TRIGGER prevent_policy_snapshots_mutation
    BEFORE UPDATE OR DELETE ON mandate.policy_snapshots
    FOR EACH ROW EXECUTE FUNCTION mandate.prevent_mutation();

-- -----------------------------------------------------------------------------------------------------------------
-- verdict_events: Mandate's authoritative answer to a decision event
-- -----------------------------------------------------------------------------------------------------------------

CREATE TABLE mandate.verdict_events (
    verdict_id          UUID            PRIMARY KEY,
    decision_id         UUID            NOT NULL REFERENCES mandate.decision_events (decision_id),
    snapshot_id         UUID            NOT NULL REFERENCES mandate.policy_snapshots (snapshot_id),
    verdict             mandate.verdict NOT NULL,
    matched_policy_ids  TEXT[]          NOT NULL DEFAULT '{}',
    timestamp           TIMESTAMPTZ     NOT NULL,
    created_at          TIMESTAMPTZ     NOT NULL DEFAULT now()
);

CREATE INDEX idx_verdict_events_decision_id ON mandate.verdict_events (decision_id);
CREATE INDEX idx_verdict_events_snapshot_id ON mandate.verdict_events (snapshot_id);
CREATE INDEX idx_verdict_events_verdict ON mandate.verdict_events (verdict);
CREATE INDEX idx_verdict_events_timestamp ON mandate.verdict_events (timestamp DESC);
CREATE INDEX idx_verdict_events_created_at ON mandate.verdict_events (created_at DESC);
CREATE INDEX idx_verdict_events_matched_policies ON mandate.verdict_events USING GIN (matched_policy_ids);

CREATE TRIGGER prevent_verdict_events_mutation
    BEFORE UPDATE OR DELETE ON mandate.verdict_events
    FOR EACH ROW EXECUTE FUNCTION mandate.prevent_mutation();

COMMIT;
