"""What `mandate export` streams: every stored verdict with its decision stage, oldest first."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from mandate.db.decisions import VERDICT_STAGE
from mandate.vocabulary import Row

_VERDICTS = sql.SQL(
    """SELECT d.decision_id, d.stage::text AS stage, d.intent, d.actor, d.target, d.scope, d."timestamp" AS decided_at,
       d.organization_id, d.domain, v.verdict_id, v.verdict::text AS verdict, v."timestamp" AS evaluated_at,
       v.spec_id, v.spec_version, v.snapshot_id, v.snapshot_version, v.scope_id, v.owning_team, v.summary,
       v.matched_policy_ids, v.explanation ->> 'winning_policy_id' AS winning_policy_id,
       v.explanation ->> 'reason' AS reason, v.pause_requires, v.pause_expires_at
FROM mandate.verdict_events v
JOIN mandate.decision_events d ON d.decision_id = v.decision_id AND d.stage = {stage}
WHERE (%(since)s::timestamptz IS NULL OR v."timestamp" >= %(since)s)
  AND (%(domain)s::text IS NULL OR v.domain = %(domain)s)
ORDER BY v."timestamp", v.verdict_id"""
).format(stage=sql.SQL(VERDICT_STAGE))


def verdicts(conn: psycopg.Connection[Any], *, since: datetime | None, domain: str | None) -> Iterator[Row]:
    """Every stored verdict (at or after `since`, of `domain`) with its decision stage, oldest first, fetched in
    batches by a server-side cursor: constant memory whatever the history's size."""
    with conn.transaction(), conn.cursor(name="mandate_export", row_factory=dict_row) as cur:
        cur.itersize = 1000
        cur.execute(_VERDICTS, {"since": since, "domain": domain})
        yield from cur
