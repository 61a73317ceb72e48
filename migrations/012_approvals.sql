-- Approvals: every PAUSE gets an approval request bound to the exact action; resolutions, consumption and findings
--
-- What and why (docs/approvals.md):
-- * approval_requests: one row per PAUSE verdict, whose id it shares (approval_id = verdict_id), written in the same statement as the verdict (no PAUSE exists
--   without its request). It is bound to the action: the decision stage, the verdict, the spec version and snapshot
--   it was decided under, and `binding_digest`, the SHA-256 of the canonical JSON of `binding` (intent, target,
--   signal values, scope attribution). `requirements` are the spec's `pause_requires` (or `approval` when it names
--   none); `owning_team` and `escalation` (the ancestors' teams, nearest first) route it. `expires_at` is the
--   PAUSE's expiry (NULL: the spec sets no resolution timeout).
-- * approval_resolutions: append-only events — approved (one requirement each), rejected, withdrawn (by the agent),
--   expired (written by the sweeper; the state reads as expired from `expires_at` whether or not it ran). At most
--   one ending event per request, each requirement satisfied once, one approver per requirement: unique indexes.
-- * approval_consumptions: the resume that used an approval. Its primary key makes an approval single-use in the
--   database itself, whatever the code does.
-- * findings: an `executed` stage that no ALLOW or approved PAUSE covers, or whose action differs from the one
--   approved or allowed. Written with the decision stage it is about.
-- * api_tokens.teams: the owning teams an approver token answers for (NULL: every team of its domains). A request
--   goes to its scope's owning team; when no valid approver token names that team, to the nearest ancestor scope's
--   team that has one; when none has, to approvers of the domain without teams (docs/approvals.md, "Routing").
-- * approval_webhooks: per organization and owning team, where to announce approval events (a URL and the secret
--   that signs them); the latest row of a team is in force, a row without URL removes it. Written by the CLI as the
--   owner role: the application role may read it, never write it (INSERT revoked below, like the token tables).
-- * webhook_deliveries: every delivery attempt of an approval event to a webhook (at least once: retried with
--   back-off until delivered or given up), so each one is visible and a restarted server resumes where it was.
-- * Every table is append-only, like the others (UPDATE, DELETE and TRUNCATE refused by triggers).
\set ON_ERROR_STOP on
BEGIN;

SET LOCAL search_path = mandate, public;

ALTER TABLE mandate.api_tokens ADD COLUMN teams text[]
    CHECK (teams IS NULL OR (cardinality(teams) > 0 AND array_position(teams, NULL) IS NULL));

CREATE TABLE mandate.approval_requests (
    approval_id      uuid          PRIMARY KEY,
    decision_id      uuid          NOT NULL,
    stage            mandate.stage NOT NULL,
    verdict_id       uuid          NOT NULL UNIQUE REFERENCES mandate.verdict_events (verdict_id),
    organization_id  uuid          NOT NULL,
    domain           text          NOT NULL,
    spec_id          text          NOT NULL,
    spec_version     text          NOT NULL,
    snapshot_id      uuid,
    snapshot_version integer,
    scope_id         text,
    owning_team      text,
    escalation       text[]        NOT NULL DEFAULT '{}',
    requirements     text[]        NOT NULL CHECK (cardinality(requirements) > 0),
    binding_digest   text          NOT NULL CHECK (binding_digest ~ '^[0-9a-f]{64}$'),
    binding          jsonb         NOT NULL,
    expires_at       timestamptz,
    token_id         uuid,
    created_at       timestamptz   NOT NULL DEFAULT now(),
    CHECK (approval_id = verdict_id),
    FOREIGN KEY (decision_id, stage) REFERENCES mandate.decision_events (decision_id, stage)
);
CREATE INDEX idx_approval_requests_domain ON mandate.approval_requests (organization_id, domain, created_at);
CREATE INDEX idx_approval_requests_decision ON mandate.approval_requests (decision_id, stage);

CREATE TABLE mandate.approval_resolutions (
    resolution_id uuid        PRIMARY KEY,
    approval_id   uuid        NOT NULL REFERENCES mandate.approval_requests (approval_id),
    kind          text        NOT NULL CHECK (kind IN ('approved', 'rejected', 'withdrawn', 'expired')),
    requirement   text        CHECK ((kind = 'approved') = (requirement IS NOT NULL)),
    token_id      uuid,
    actor         text        NOT NULL CHECK (octet_length(actor) <= 200),
    reason        text        CHECK (octet_length(reason) <= 2000),
    created_at    timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE UNIQUE INDEX approval_resolutions_one_ending ON mandate.approval_resolutions (approval_id)
    WHERE kind <> 'approved';
CREATE UNIQUE INDEX approval_resolutions_requirement_once ON mandate.approval_resolutions (approval_id, requirement)
    WHERE kind = 'approved';
CREATE UNIQUE INDEX approval_resolutions_one_requirement_per_approver
    ON mandate.approval_resolutions (approval_id, token_id) WHERE kind = 'approved';

CREATE TABLE mandate.approval_consumptions (
    approval_id uuid          PRIMARY KEY REFERENCES mandate.approval_requests (approval_id),
    decision_id uuid          NOT NULL,
    stage       mandate.stage NOT NULL,
    verdict_id  uuid          NOT NULL,
    created_at  timestamptz   NOT NULL DEFAULT clock_timestamp(),
    FOREIGN KEY (decision_id, stage) REFERENCES mandate.decision_events (decision_id, stage)
);

CREATE TABLE mandate.findings (
    finding_id      uuid          PRIMARY KEY,
    decision_id     uuid          NOT NULL,
    stage           mandate.stage NOT NULL,
    organization_id uuid          NOT NULL,
    domain          text          NOT NULL,
    kind            text          NOT NULL CHECK (kind IN ('unapproved_execution', 'action_differs')),
    approval_id     uuid          REFERENCES mandate.approval_requests (approval_id),
    summary         text          NOT NULL,
    details         jsonb         NOT NULL,
    created_at      timestamptz   NOT NULL DEFAULT now(),
    FOREIGN KEY (decision_id, stage) REFERENCES mandate.decision_events (decision_id, stage)
);
CREATE INDEX idx_findings_domain ON mandate.findings (organization_id, domain, created_at);

CREATE TABLE mandate.approval_webhooks (
    webhook_id      uuid        PRIMARY KEY,
    organization_id uuid        NOT NULL,
    owning_team     text        NOT NULL CHECK (octet_length(owning_team) BETWEEN 1 AND 200),
    url             text        CHECK (url ~ '^https?://[^\s]+$' AND octet_length(url) <= 2000),
    secret          text        CHECK ((url IS NULL) = (secret IS NULL)),
    created_by      text        NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX idx_approval_webhooks_team ON mandate.approval_webhooks (organization_id, owning_team, created_at DESC);

CREATE TABLE mandate.webhook_deliveries (
    attempt_id  uuid        PRIMARY KEY,
    webhook_id  uuid        NOT NULL REFERENCES mandate.approval_webhooks (webhook_id),
    event_id    uuid        NOT NULL,
    approval_id uuid        NOT NULL REFERENCES mandate.approval_requests (approval_id),
    event_kind  text        NOT NULL,
    attempt     integer     NOT NULL CHECK (attempt > 0),
    outcome     text        NOT NULL CHECK (outcome IN ('delivered', 'failed', 'gave_up')),
    status      integer,
    error       text        CHECK (octet_length(error) <= 2000),
    next_at     timestamptz CHECK ((outcome = 'failed') = (next_at IS NOT NULL)),
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    UNIQUE (webhook_id, event_id, attempt)
);
CREATE INDEX idx_approval_requests_created ON mandate.approval_requests (created_at);  -- what webhooks owe
CREATE INDEX idx_approval_resolutions_created ON mandate.approval_resolutions (created_at);
CREATE UNIQUE INDEX webhook_deliveries_end_once ON mandate.webhook_deliveries (webhook_id, event_id)
    WHERE outcome <> 'failed';

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['approval_requests', 'approval_resolutions', 'approval_consumptions', 'findings',
                             'approval_webhooks', 'webhook_deliveries'] LOOP
        EXECUTE format('CREATE TRIGGER prevent_%1$s_mutation BEFORE UPDATE OR DELETE ON mandate.%1$I
                        FOR EACH ROW EXECUTE FUNCTION mandate.prevent_mutation()', t);
        EXECUTE format('CREATE TRIGGER prevent_%1$s_truncate BEFORE TRUNCATE ON mandate.%1$I
                        FOR EACH STATEMENT EXECUTE FUNCTION mandate.prevent_mutation()', t);
    END LOOP;
END $$;

-- Roles created before this migration got INSERT on the new tables through their default privileges: the webhook
-- configuration, like the tokens, is not the server's to write.
DO $$
DECLARE r record;
BEGIN
    FOR r IN SELECT DISTINCT grantee FROM information_schema.role_table_grants
             WHERE table_schema = 'mandate' AND table_name = 'approval_webhooks' AND privilege_type = 'INSERT'
               AND grantee <> current_user
    LOOP
        EXECUTE format('REVOKE INSERT ON mandate.approval_webhooks FROM %I', r.grantee);
    END LOOP;
END $$;

COMMIT;
