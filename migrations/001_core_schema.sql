-- Mandate legacy schema, migration 001: core schema
--
-- What: creates the `mandate` schema, makes it part of the database's default search_path, defines the four enum
-- types, the append-only guard function prevent_mutation(), and the first event table, decision_events.
-- Why: migrations 001-007 reproduce, step by step, the schema of the original Mandate project (the "legacy
-- schema", LEGACY-SCHEMA.md). Databases in that shape exist in the field and migration 008 converts them, so
-- our migrations 001-007 must build exactly the same structure. Columns added by later migrations (organization,
-- domain, spec attribution) are appended by those migrations so that column order matches the original.
--
-- Run with: psql -v ON_ERROR_STOP=1 -d <database> -f migrations/001_core_schema.sql
\set ON_ERROR_STOP on
BEGIN;

CREATE SCHEMA IF NOT EXISTS mandate;
SET search_path = mandate, public;

-- The checklist's plain `psql -d mandate -c "INSERT INTO domains ..."` commands rely on `mandate` being on the
-- database's default search_path. The database name is not hard-coded: whatever database we run in gets it.
DO $$
BEGIN
    EXECUTE format('ALTER DATABASE %I SET search_path = mandate, public', current_database());
END
$$;

-- gen_random_uuid() is core since PostgreSQL 13; PostgreSQL 12 (still supported) needs pgcrypto for it.
DO $$
BEGIN
    IF current_setting('server_version_num')::integer < 130000 THEN
        CREATE EXTENSION IF NOT EXISTS pgcrypto;
    END IF;
END
$$;

-- -----------------------------------------------------------------------------------------------------------------
-- Enum types
-- -----------------------------------------------------------------------------------------------------------------

-- Where in its life a decision is when it is submitted.
CREATE TYPE mandate.stage AS ENUM ('proposed', 'pre_commit', 'executed');

-- Mandate's answer to a decision.
CREATE TYPE mandate.verdict AS ENUM ('ALLOW', 'PAUSE', 'BLOCK', 'OBSERVE');

-- Who wrote an audit timeline entry, and with which authority.
CREATE TYPE mandate.event_source AS ENUM ('system', 'agent', 'human');
CREATE TYPE mandate.authority_level AS ENUM ('system', 'agent', 'human');

-- -----------------------------------------------------------------------------------------------------------------
-- Append-only guard
-- -----------------------------------------------------------------------------------------------------------------

-- Attached as a BEFORE UPDATE OR DELETE row trigger to every append-only table: the database itself refuses to
-- change history, whatever the application does.
CREATE FUNCTION mandate.prevent_mutation()
RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    RAISE EXCEPTION 'Mutations are not allowed on append-only table %', TG_TABLE_NAME;
END;
$$;

-- -----------------------------------------------------------------------------------------------------------------
-- decision_events: an agent's declaration of intent (immutable)
-- -----------------------------------------------------------------------------------------------------------------

CREATE TABLE mandate.decision_events (
    decision_id     UUID        PRIMARY KEY,
    intent          TEXT        NOT NULL,
    stage           mandate.stage NOT NULL,
    actor           TEXT        NOT NULL,
    target          TEXT        NOT NULL,
    context         JSONB       NOT NULL DEFAULT '{}',
    scope           JSONB       NOT NULL DEFAULT '{}',
    timestamp       TIMESTAMPTZ NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX idx_decision_events_intent ON mandate.decision_events (intent);
CREATE INDEX idx_decision_events_stage ON mandate.decision_events (stage);
CREATE INDEX idx_decision_events_actor ON mandate.decision_events (actor);
CREATE INDEX idx_decision_events_target ON mandate.decision_events (target);
CREATE INDEX idx_decision_events_timestamp ON mandate.decision_events (timestamp DESC);
CREATE INDEX idx_decision_events_created_at ON mandate.decision_events (created_at DESC);
CREATE INDEX idx_decision_events_scope ON mandate.decision_events USING GIN (scope);
CREATE INDEX idx_decision_events_context ON mandate.decision_events USING GIN (context);

CREATE TRIGGER prevent_decision_events_mutation
    BEFORE UPDATE OR DELETE ON mandate.decision_events
    FOR EACH ROW EXECUTE FUNCTION mandate.prevent_mutation();

COMMIT;
