-- Mandate legacy schema, migration 006: decision specs (RFC-001) and spec attribution
--
-- What: mandate_specs, the immutable, versioned contract for one kind of decision in one domain (signals,
-- allowed verdicts, enforcement), and nullable spec_id / spec_version columns on decision_events, verdict_events
-- and audit_timeline_entries recording which spec version governed each event.
-- Why: part of rebuilding the original project's schema exactly (LEGACY-SCHEMA.md). In that schema a spec names
-- its domain by free text (`domain`) and its organization without a foreign key; migration 008 has to reconcile
-- both with the domains table.
--
-- Run with: psql -v ON_ERROR_STOP=1 -d <database> -f migrations/006_mandate_specs.sql
\set ON_ERROR_STOP on
BEGIN;

SET search_path = mandate, public;

-- -----------------------------------------------------------------------------------------------------------------
-- mandate_specs
-- -----------------------------------------------------------------------------------------------------------------

CREATE TABLE mandate.mandate_specs (
    spec_id             TEXT              NOT NULL,
    version             TEXT              NOT NULL,
    organization_id     UUID              NOT NULL,   -- deliberately no foreign key (as in the original)
    domain              TEXT              NOT NULL,   -- a domain name; no foreign key, no slug check
    intent              TEXT              NOT NULL,
    stage               mandate.stage     NOT NULL,
    allowed_verdicts    mandate.verdict[] NOT NULL,
    signals             JSONB             NOT NULL,
    enforcement         JSONB             NOT NULL,
    status              TEXT              NOT NULL,
    replaced_by         TEXT,
    created_at          TIMESTAMPTZ       NOT NULL DEFAULT now(),

    PRIMARY KEY (spec_id, version),
    CONSTRAINT mandate_specs_status_check CHECK (status IN ('draft', 'active', 'deprecated')),
    CONSTRAINT spec_signals_is_array CHECK (jsonb_typeof(signals) = 'array'),
    CONSTRAINT spec_enforcement_is_object CHECK (jsonb_typeof(enforcement) = 'object')
);

-- Exactly one active version per (organization, domain, intent, stage).
CREATE UNIQUE INDEX idx_mandate_specs_active_unique
    ON mandate.mandate_specs (organization_id, domain, intent, stage)
    WHERE status = 'active';

CREATE INDEX idx_mandate_specs_organization_id ON mandate.mandate_specs (organization_id);
CREATE INDEX idx_mandate_specs_domain ON mandate.mandate_specs (domain);
CREATE INDEX idx_mandate_specs_intent ON mandate.mandate_specs (intent);
CREATE INDEX idx_mandate_specs_stage ON mandate.mandate_specs (stage);
CREATE INDEX idx_mandate_specs_status ON mandate.mandate_specs (status);
CREATE INDEX idx_mandate_specs_created_at ON mandate.mandate_specs (created_at DESC);

-- Specs are immutable once written; a status change is a new version row.
CREATE TRIGGER prevent_mandate_specs_mutation
    BEFORE UPDATE OR DELETE ON mandate.mandate_specs
    FOR EACH ROW EXECUTE FUNCTION mandate.prevent_mutation();

-- -----------------------------------------------------------------------------------------------------------------
-- Spec attribution on events (NULL on rows written before this migration)
-- -----------------------------------------------------------------------------------------------------------------

ALTER TABLE mandate.decision_events
    ADD COLUMN spec_id      TEXT,
    ADD COLUMN spec_version TEXT;

CREATE INDEX idx_decision_events_spec_id ON mandate.decision_events (spec_id, spec_version);

ALTER TABLE mandate.verdict_events
    ADD COLUMN spec_id      TEXT,
    ADD COLUMN spec_version TEXT;

CREATE INDEX idx_verdict_events_spec_id ON mandate.verdict_events (spec_id, spec_version);

ALTER TABLE mandate.audit_timeline_entries
    ADD COLUMN spec_id      TEXT,
    ADD COLUMN spec_version TEXT;

CREATE INDEX idx_audit_timeline_spec_id ON mandate.audit_timeline_entries (spec_id, spec_version);

COMMIT;
