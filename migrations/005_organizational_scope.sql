-- Mandate legacy schema, migration 005: organizations, domains and organizational attribution (RFC-002 v1.0)
--
-- What: the organizations and domains tables (UUID identity; a domain's name is free text), scope ownership
-- columns, and nullable organization_id / domain_id columns (with foreign keys and indexes) on scopes,
-- policy_snapshots, decision_events, verdict_events and audit_timeline_entries.
-- Why: part of rebuilding the original project's schema exactly (LEGACY-SCHEMA.md). The new columns are nullable
-- because rows written before this migration have no organization or domain; migration 008 has to deal with them.
-- The foreign keys are declared inline so they get PostgreSQL's default names (<table>_<column>_fkey).
--
-- Run with: psql -v ON_ERROR_STOP=1 -d <database> -f migrations/005_organizational_scope.sql
\set ON_ERROR_STOP on
BEGIN;

SET search_path = mandate, public;

-- -----------------------------------------------------------------------------------------------------------------
-- organizations: the top isolation boundary
-- -----------------------------------------------------------------------------------------------------------------

CREATE TABLE mandate.organizations (
    organization_id UUID        PRIMARY KEY DEFAULT gen_random_uuid(),
    name            TEXT        NOT NULL,
    description     TEXT,
    metadata        JSONB       NOT NULL DEFAULT '{}',
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Uniqueness of the name is a unique index, not a constraint (as in the original).
CREATE UNIQUE INDEX idx_organizations_name ON mandate.organizations (name);
CREATE INDEX idx_organizations_created_at ON mandate.organizations (created_at DESC);

CREATE TRIGGER prevent_organizations_mutation
    BEFORE UPDATE OR DELETE ON mandate.organizations
    FOR EACH ROW EXECUTE FUNCTION mandate.prevent_mutation();

-- -----------------------------------------------------------------------------------------------------------------
-- domains: a business area within an organization; identified by a UUID, named by free text (no slug check)
-- -----------------------------------------------------------------------------------------------------------------

CREATE TABLE mandate.domains (
    domain_id       UUID        PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id UUID        NOT NULL REFERENCES mandate.organizations (organization_id),
    name            TEXT        NOT NULL,
    description     TEXT,
    metadata        JSONB       NOT NULL DEFAULT '{}',
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),

    CONSTRAINT domains_unique_name_per_org UNIQUE (organization_id, name)
);

CREATE INDEX idx_domains_organization_id ON mandate.domains (organization_id);
CREATE INDEX idx_domains_name ON mandate.domains (name);
CREATE INDEX idx_domains_created_at ON mandate.domains (created_at DESC);

CREATE TRIGGER prevent_domains_mutation
    BEFORE UPDATE OR DELETE ON mandate.domains
    FOR EACH ROW EXECUTE FUNCTION mandate.prevent_mutation();

-- -----------------------------------------------------------------------------------------------------------------
-- scopes: organizational attribution and ownership
-- -----------------------------------------------------------------------------------------------------------------

ALTER TABLE mandate.scopes
    ADD COLUMN organization_id UUID REFERENCES mandate.organizations (organization_id),
    ADD COLUMN domain_id       UUID REFERENCES mandate.domains (domain_id),
    ADD COLUMN owning_team     TEXT,
    ADD COLUMN owner_contact   TEXT,
    ADD COLUMN description     TEXT;

CREATE INDEX idx_scopes_organization_id ON mandate.scopes (organization_id);
CREATE INDEX idx_scopes_domain_id ON mandate.scopes (domain_id);
CREATE INDEX idx_scopes_owning_team ON mandate.scopes (owning_team);

-- -----------------------------------------------------------------------------------------------------------------
-- policy_snapshots, decision_events, verdict_events, audit_timeline_entries: organizational attribution
-- -----------------------------------------------------------------------------------------------------------------

ALTER TABLE mandate.policy_snapshots
    ADD COLUMN organization_id UUID REFERENCES mandate.organizations (organization_id),
    ADD COLUMN domain_id       UUID REFERENCES mandate.domains (domain_id);

CREATE INDEX idx_policy_snapshots_organization_id ON mandate.policy_snapshots (organization_id);
CREATE INDEX idx_policy_snapshots_domain_id ON mandate.policy_snapshots (domain_id);

ALTER TABLE mandate.decision_events
    ADD COLUMN organization_id UUID REFERENCES mandate.organizations (organization_id),
    ADD COLUMN domain_id       UUID REFERENCES mandate.domains (domain_id);

CREATE INDEX idx_decision_events_organization_id ON mandate.decision_events (organization_id);
CREATE INDEX idx_decision_events_domain_id ON mandate.decision_events (domain_id);

ALTER TABLE mandate.verdict_events
    ADD COLUMN organization_id UUID REFERENCES mandate.organizations (organization_id),
    ADD COLUMN domain_id       UUID REFERENCES mandate.domains (domain_id);

CREATE INDEX idx_verdict_events_organization_id ON mandate.verdict_events (organization_id);
CREATE INDEX idx_verdict_events_domain_id ON mandate.verdict_events (domain_id);

ALTER TABLE mandate.audit_timeline_entries
    ADD COLUMN organization_id UUID REFERENCES mandate.organizations (organization_id),
    ADD COLUMN domain_id       UUID REFERENCES mandate.domains (domain_id);

-- The timeline's indexes use the short prefix idx_audit_timeline_, like its other indexes.
CREATE INDEX idx_audit_timeline_organization_id ON mandate.audit_timeline_entries (organization_id);
CREATE INDEX idx_audit_timeline_domain_id ON mandate.audit_timeline_entries (domain_id);

COMMIT;
