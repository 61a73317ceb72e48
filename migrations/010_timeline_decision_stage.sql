-- Timeline entries name the decision stage they belong to; the original server's outcome reports are kept as such
--
-- What and why:
-- * A timeline entry has a `stage` of its own: the stage it speaks of. The original Mandate server's outcome route
--   (POST /api/v1/decisions/:id/outcome, which its example agent calls after every verdict) appended an entry with
--   intent `outcome` and stage `executed` ("the agent executed the action") to a decision stored only at
--   `pre_commit`. Those entries are history, as numerous as the decisions, and they are outcome events OF the
--   pre_commit decision. A foreign key on (decision_id, stage) rejects every one of them (released 009 did).
-- * New column audit_timeline_entries.decision_stage: the stored decision stage (decision_events.stage) the entry
--   belongs to. The foreign key audit_timeline_entries_decision_id_fkey is (decision_id, decision_stage) ->
--   decision_events. A BEFORE INSERT trigger fills it with the entry's own stage when the writer leaves it NULL, so
--   every entry written from 010 on is checked by the foreign key.
-- * Rows written before 010: decision_stage is set on the entries whose own stage is not a stored stage of their
--   decision (the original server's outcome reports) to the decision's earliest stored stage (before 009 a
--   decision had exactly one stage); it stays NULL on every other older row, meaning "the entry's own stage", which
--   this migration verifies is stored (as verdict_events.stage is NULL on verdicts written before 009). No recorded
--   value changes: `stage`, `intent`, `summary`, … stay as written; only the new column is filled, on those rows, with
--   the append-only trigger disabled for that one statement inside this transaction and enabled again right after.
-- * Databases that applied 009 as released (with the foreign key on (decision_id, stage)) get the same schema: that
--   key is dropped first and re-created on the new column.
\set ON_ERROR_STOP on
BEGIN;

SET LOCAL search_path = mandate, public;

ALTER TABLE mandate.audit_timeline_entries DROP CONSTRAINT IF EXISTS audit_timeline_entries_decision_id_fkey;
ALTER TABLE mandate.audit_timeline_entries ADD COLUMN decision_stage mandate.stage;

-- Every entry belongs to a stored decision (the legacy schema's foreign key on decision_id guaranteed it; say so
-- plainly if a database lost that guarantee some other way).
DO $$
DECLARE
    orphan record;
BEGIN
    SELECT t.entry_id, t.decision_id, count(*) OVER () AS n INTO orphan
    FROM mandate.audit_timeline_entries t
    WHERE NOT EXISTS (SELECT 1 FROM mandate.decision_events d WHERE d.decision_id = t.decision_id)
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'migration 010: % timeline entr(y/ies) belong to no stored decision', orphan.n
            USING ERRCODE = 'foreign_key_violation',
                  DETAIL = format('Key (decision_id)=(%s) of entry %s is not present in table "decision_events".',
                                  orphan.decision_id, orphan.entry_id),
                  HINT = 'the legacy foreign key on decision_id was dropped or bypassed; restore the missing decision '
                         'rows from a backup before migrating';
    END IF;
END
$$;

-- The original server's outcome reports (and any entry whose stage its decision does not have): they belong to the
-- decision's earliest stored stage.
ALTER TABLE mandate.audit_timeline_entries DISABLE TRIGGER prevent_audit_timeline_mutation;
UPDATE mandate.audit_timeline_entries t
SET decision_stage = (SELECT min(d.stage) FROM mandate.decision_events d WHERE d.decision_id = t.decision_id)
WHERE NOT EXISTS (
    SELECT 1 FROM mandate.decision_events d WHERE d.decision_id = t.decision_id AND d.stage = t.stage
);
ALTER TABLE mandate.audit_timeline_entries ENABLE TRIGGER prevent_audit_timeline_mutation;

CREATE FUNCTION mandate.fill_timeline_decision_stage() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.decision_stage := coalesce(NEW.decision_stage, NEW.stage);
    RETURN NEW;
END
$$;
CREATE TRIGGER fill_timeline_decision_stage BEFORE INSERT ON mandate.audit_timeline_entries
    FOR EACH ROW EXECUTE FUNCTION mandate.fill_timeline_decision_stage();

ALTER TABLE mandate.audit_timeline_entries ADD CONSTRAINT audit_timeline_entries_decision_id_fkey
    FOREIGN KEY (decision_id, decision_stage) REFERENCES mandate.decision_events (decision_id, stage);

COMMIT;
