-- Access control: API tokens (issued and revoked as append-only events) and the token that sent each decision
--
-- What and why:
-- * api_tokens: one row per issued bearer token, written once when it is created. The secret itself is never
--   stored: only its SHA-256 (`secret_sha256`), which the server looks up. A token belongs to exactly one
--   organization; `domains` lists its domains, NULL meaning every domain of that organization (now and later).
--   `role` is agent, approver, reader or admin (docs/security.md). No foreign key to organizations: a token may be
--   issued for an organization before its governance is applied (the CLI checks the organization exists unless
--   told otherwise).
-- * api_token_revocations: revoking a token appends a row here; the token's own row never changes. A token is valid
--   when it has no revocation row and its `expires_at` (if any) is in the future.
-- * decision_events.token_id: which token sent the decision (its id, never its secret); NULL for decisions sent
--   before 011 or to a server running without authentication.
-- * Both new tables are append-only, like every other table (UPDATE, DELETE and TRUNCATE refused by triggers).
\set ON_ERROR_STOP on
BEGIN;

SET LOCAL search_path = mandate, public;

CREATE TABLE mandate.api_tokens (
    token_id        uuid        PRIMARY KEY,
    secret_sha256   bytea       NOT NULL UNIQUE CHECK (octet_length(secret_sha256) = 32),
    name            text        NOT NULL CHECK (name <> '' AND octet_length(name) <= 200),
    organization_id uuid        NOT NULL,
    domains         text[]      CHECK (domains IS NULL OR (cardinality(domains) > 0 AND array_position(domains, NULL) IS NULL)),
    role            text        NOT NULL CHECK (role IN ('agent', 'approver', 'reader', 'admin')),
    expires_at      timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    created_by      text        NOT NULL DEFAULT session_user
);
CREATE INDEX idx_api_tokens_organization ON mandate.api_tokens (organization_id, created_at);

CREATE TABLE mandate.api_token_revocations (
    token_id    uuid        PRIMARY KEY REFERENCES mandate.api_tokens (token_id),
    revoked_at  timestamptz NOT NULL DEFAULT now(),
    revoked_by  text        NOT NULL DEFAULT session_user,
    reason      text        CHECK (octet_length(reason) <= 1000)
);

ALTER TABLE mandate.decision_events ADD COLUMN token_id uuid REFERENCES mandate.api_tokens (token_id);

CREATE TRIGGER prevent_api_tokens_mutation BEFORE UPDATE OR DELETE ON mandate.api_tokens
    FOR EACH ROW EXECUTE FUNCTION mandate.prevent_mutation();
CREATE TRIGGER prevent_api_tokens_truncate BEFORE TRUNCATE ON mandate.api_tokens
    FOR EACH STATEMENT EXECUTE FUNCTION mandate.prevent_mutation();
CREATE TRIGGER prevent_api_token_revocations_mutation BEFORE UPDATE OR DELETE ON mandate.api_token_revocations
    FOR EACH ROW EXECUTE FUNCTION mandate.prevent_mutation();
CREATE TRIGGER prevent_api_token_revocations_truncate BEFORE TRUNCATE ON mandate.api_token_revocations
    FOR EACH STATEMENT EXECUTE FUNCTION mandate.prevent_mutation();

COMMIT;
