-- Mandate legacy schema, migration 004: scopes
--
-- What: scopes, the selectors that say where authority applies (domain, service, agent, system, environment,
-- tenant). A missing selector acts as a wildcard. Identity is a UUID; one row per distinct selector combination.
-- Why: part of rebuilding the original project's schema exactly (LEGACY-SCHEMA.md). Ownership and organizational
-- columns (organization_id, domain_id, owning_team, owner_contact, description) are appended by migration 005.
-- Note that scope_domain is a free-text copy of a domain name: nothing ties it to a domain row.
--
-- Run with: psql -v ON_ERROR_STOP=1 -d <database> -f migrations/004_scopes.sql
\set ON_ERROR_STOP on
BEGIN;

SET search_path = mandate, public;

CREATE TABLE mandate.scopes (
    scope_id        UUID        PRIMARY KEY DEFAULT gen_random_uuid(),
    scope_domain    TEXT,
    service         TEXT,
    agent           TEXT,
    scope_system    TEXT,
    environment     TEXT,
    tenant          TEXT,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX idx_scopes_domain ON mandate.scopes (scope_domain);
CREATE INDEX idx_scopes_service ON mandate.scopes (service);
CREATE INDEX idx_scopes_environment ON mandate.scopes (environment);
CREATE INDEX idx_scopes_tenant ON mandate.scopes (tenant);

-- One scope per selector combination (NULL and '' count as the same "unset" value), so that writers can insert
-- idempotently with ON CONFLICT. Note: organization_id is NOT part of it (it did not exist yet).
CREATE UNIQUE INDEX idx_scopes_unique ON mandate.scopes (
    COALESCE(scope_domain, ''),
    COALESCE(service, ''),
    COALESCE(agent, ''),
    COALESCE(scope_system, ''),
    COALESCE(environment, ''),
    COALESCE(tenant, '')
);

CREATE TRIGGER prevent_scopes_mutation
    BEFORE UPDATE OR DELETE ON mandate.scopes
    FOR EACH ROW EXECUTE FUNCTION mandate.prevent_mutation();

COMMIT;
