-- Control plane: multi-stage decisions, stored explanations, spec status events, the rejection log
--
-- What and why:
-- * A decision passes through stages (proposed → pre_commit → executed) under one decision_id, and ingestion is
--   idempotent on (decision_id, stage): decision_events is keyed by (decision_id, stage), and verdicts reference
--   that pair. verdict_events.stage is NULL on rows written before 009 (each of those decisions had exactly one
--   stage); those rows are immutable and were verified by 008. The foreign keys keep their names.
-- * Edited once after release (see docs/migrations.md, "Migration 009 was edited once"): as released, 009 also keyed
--   the timeline to (decision_id, stage), which rejects the original server's outcome reports (stage `executed` on a
--   decision stored only at `pre_commit`) and so could never apply to a database holding them. That one foreign key
--   moved to 010, which keys the timeline to the stage each entry belongs to. The runner accepts the released file's
--   checksum for databases that applied it; 010 brings both kinds of database to the same schema.
-- * decision_events.request_hash (SHA-256 of the canonical request) tells a re-send (same hash: return the stored
--   verdict) from a conflicting one (409). NULL on older rows.
-- * verdict_events stores the evaluator's structured explanation, its one-line summary, the snapshot version and
--   what a PAUSE requires and when it expires. snapshot_id becomes nullable: a governance gap (no active spec, no
--   snapshot for the domain) is recorded too, and has no snapshot.
-- * Spec status changes are append-only events (spec_status_events); a spec version's status is its latest event,
--   else the status it was created with. "Exactly one active version per (org, domain, intent, stage)" is checked
--   at commit by a deferred constraint trigger, so one transaction can deprecate the old version and activate the
--   new one.
-- * decision_rejections: requests refused before they belong to a known domain (missing or unknown attribution)
--   are recorded there, append-only.
-- * Governance changes NOTIFY channel mandate_governance, so servers refresh their in-memory caches.
\set ON_ERROR_STOP on
BEGIN;

SET LOCAL search_path = mandate, public;

-- Multi-stage decisions ------------------------------------------------------------------------------------------
ALTER TABLE mandate.verdict_events DROP CONSTRAINT verdict_events_decision_id_fkey;
ALTER TABLE mandate.audit_timeline_entries DROP CONSTRAINT audit_timeline_entries_decision_id_fkey;
ALTER TABLE mandate.decision_events DROP CONSTRAINT decision_events_pkey;
ALTER TABLE mandate.decision_events ADD CONSTRAINT decision_events_pkey PRIMARY KEY (decision_id, stage);
ALTER TABLE mandate.decision_events ADD COLUMN request_hash text;

ALTER TABLE mandate.verdict_events
    ADD COLUMN stage mandate.stage,
    ADD COLUMN snapshot_version integer,
    ADD COLUMN summary text,
    ADD COLUMN explanation jsonb,
    ADD COLUMN pause_requires text[],
    ADD COLUMN pause_expires_at timestamptz,
    ALTER COLUMN snapshot_id DROP NOT NULL;
ALTER TABLE mandate.verdict_events ADD CONSTRAINT verdict_events_decision_id_fkey
    FOREIGN KEY (decision_id, stage) REFERENCES mandate.decision_events (decision_id, stage);
-- One verdict per decision stage (from 009 on; older rows have stage NULL and one verdict per decision).
CREATE UNIQUE INDEX idx_verdict_events_decision_stage ON mandate.verdict_events (decision_id, stage)
    WHERE stage IS NOT NULL;
-- The timeline's foreign key to decision_events is re-created by 010, on the decision stage each entry belongs to.

-- Read paths: newest first within a domain, keyset-paginated.
CREATE INDEX idx_decision_events_org_domain_ts
    ON mandate.decision_events (organization_id, domain, "timestamp" DESC, decision_id DESC, stage DESC);
CREATE INDEX idx_decision_events_ts_key ON mandate.decision_events ("timestamp" DESC, decision_id DESC, stage DESC);
CREATE INDEX idx_verdict_events_org_domain_ts
    ON mandate.verdict_events (organization_id, domain, "timestamp" DESC, verdict_id DESC);
CREATE INDEX idx_policy_snapshots_org_domain_version
    ON mandate.policy_snapshots (organization_id, domain, version DESC);

-- Spec status as events -------------------------------------------------------------------------------------------
CREATE TABLE mandate.spec_status_events (
    event_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    spec_id text NOT NULL,
    version text NOT NULL,
    status text NOT NULL CONSTRAINT spec_status_events_status_check
        CHECK (status IN ('draft', 'active', 'deprecated')),
    reason text,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT spec_status_events_spec_fkey FOREIGN KEY (spec_id, version)
        REFERENCES mandate.mandate_specs (spec_id, version)
);
CREATE INDEX idx_spec_status_events_spec ON mandate.spec_status_events (spec_id, version, event_id DESC);

-- The status index of legacy rows cannot follow events; uniqueness of the active version moves to the trigger below.
DROP INDEX mandate.idx_mandate_specs_active_unique;

CREATE VIEW mandate.spec_versions AS
SELECT s.*,
       coalesce((SELECT e.status FROM mandate.spec_status_events e
                 WHERE e.spec_id = s.spec_id AND e.version = s.version
                 ORDER BY e.event_id DESC LIMIT 1), s.status) AS current_status
FROM mandate.mandate_specs s;

CREATE FUNCTION mandate.check_single_active_spec() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    clash record;
BEGIN
    SELECT organization_id, domain, intent, stage, string_agg(spec_id || '@' || version, ', ') AS versions
    INTO clash
    FROM mandate.spec_versions
    WHERE current_status = 'active'
    GROUP BY organization_id, domain, intent, stage
    HAVING count(*) > 1
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'GOVERNANCE VIOLATION: more than one active spec for %/%/%/%: %',
            clash.organization_id, clash.domain, clash.intent, clash.stage, clash.versions
            USING ERRCODE = 'unique_violation',
                  HINT = 'deprecate the previous version in the same transaction that activates the new one';
    END IF;
    RETURN NULL;
END
$$;
CREATE CONSTRAINT TRIGGER check_single_active_spec AFTER INSERT ON mandate.spec_status_events
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION mandate.check_single_active_spec();
CREATE CONSTRAINT TRIGGER check_single_active_spec AFTER INSERT ON mandate.mandate_specs
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION mandate.check_single_active_spec();

-- Rejections: requests that belong to no known domain ---------------------------------------------------------------
CREATE TABLE mandate.decision_rejections (
    rejection_id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    received_at timestamptz NOT NULL DEFAULT now(),
    reason text NOT NULL,
    problems jsonb NOT NULL CONSTRAINT decision_rejections_problems_array CHECK (jsonb_typeof(problems) = 'array'),
    decision_id text,
    organization_id text,
    domain text,
    intent text,
    stage text,
    verdict mandate.verdict NOT NULL DEFAULT 'OBSERVE'
);
CREATE INDEX idx_decision_rejections_received_at ON mandate.decision_rejections (received_at DESC);

-- Append-only, like every other table.
CREATE TRIGGER prevent_spec_status_events_mutation BEFORE UPDATE OR DELETE ON mandate.spec_status_events
    FOR EACH ROW EXECUTE FUNCTION mandate.prevent_mutation();
CREATE TRIGGER prevent_spec_status_events_truncate BEFORE TRUNCATE ON mandate.spec_status_events
    FOR EACH STATEMENT EXECUTE FUNCTION mandate.prevent_mutation();
CREATE TRIGGER prevent_decision_rejections_mutation BEFORE UPDATE OR DELETE ON mandate.decision_rejections
    FOR EACH ROW EXECUTE FUNCTION mandate.prevent_mutation();
CREATE TRIGGER prevent_decision_rejections_truncate BEFORE TRUNCATE ON mandate.decision_rejections
    FOR EACH STATEMENT EXECUTE FUNCTION mandate.prevent_mutation();

-- Cache invalidation: servers LISTEN on mandate_governance ----------------------------------------------------------
CREATE FUNCTION mandate.notify_governance_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('mandate_governance', TG_TABLE_NAME);
    RETURN NULL;
END
$$;
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['organizations', 'domains', 'scopes', 'policy_snapshots', 'mandate_specs',
                             'spec_status_events'] LOOP
        EXECUTE format('CREATE TRIGGER %I AFTER INSERT ON mandate.%I '
                       'FOR EACH STATEMENT EXECUTE FUNCTION mandate.notify_governance_change()',
                       'notify_' || t || '_change', t);
    END LOOP;
END
$$;

COMMIT;
