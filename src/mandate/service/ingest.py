"""Storing: a prepared decision submitted to the writer (and decided again once if a concurrent resume consumed its
approval), the answer to a re-send, an outcome report, and the log of refused attributions."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

import psycopg
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from mandate.db import decisions, writes
from mandate.errors import IngestError
from mandate.governance.cache import Governance
from mandate.service.approvals import approval_facts, concerns_approvals, settled_facts
from mandate.service.prepare import Prepared, prepare
from mandate.service.request import ATTRIBUTION_FIELDS, DecisionRequest, IngestResult
from mandate.service.stages import StageReader
from mandate.vocabulary import Row


async def record_rejection(conn: AsyncConnection[Row], exc: IngestError, fields: Mapping[str, str | None]) -> None:
    """Append an attribution rejection (§3.1) to `mandate.decision_rejections`. `fields` (ATTRIBUTION_FIELDS) are
    what the client sent, rendered safe to store: no NUL, no lone surrogate."""
    problems = [p.to_dict() for p in exc.problems]
    await writes.insert_rejection(conn, exc.message, problems, [fields.get(name) for name in ATTRIBUTION_FIELDS])


class Writer(Protocol):
    """What stores a prepared decision (the group-commit writer)."""

    async def ingest(self, prepared: Prepared) -> IngestResult: ...


async def submit(
    governance: Governance,
    req: DecisionRequest,
    pool: AsyncConnectionPool[AsyncConnection[Row]],
    writer: Writer,
    *,
    received_at: datetime,
    stages: StageReader | None = None,
) -> IngestResult:
    """Prepare and store `req`. A stage approvals concern reads their facts first; when a concurrent resume consumed
    the same approval between that read and the write (the consumption's primary key refused this one, and nothing
    of it was stored), it is decided again on the facts as they are now — once.

    `stages`: the server's reader of stored stages, which reads those of concurrent `executed` stages in one query;
    an `executed` stage whose facts need nothing more (`settled_facts`) then takes no connection of its own."""
    for attempt in (1, 2):
        facts = None
        if concerns_approvals(req):
            known = await stages.stages(req.decision_id) if stages is not None and req.stage == "executed" else None
            facts = None if known is None else settled_facts(req, known)
            if facts is None:
                async with pool.connection() as conn:
                    facts = await approval_facts(conn, req, known)
        prepared = prepare(governance, req, received_at=received_at, facts=facts)
        try:
            return await writer.ingest(prepared)
        except psycopg.errors.UniqueViolation as exc:
            if attempt == 2 or exc.diag.constraint_name != "approval_consumptions_pkey":
                raise
    raise AssertionError("unreachable")


async def existing(conn: AsyncConnection[Row], prepared: Prepared) -> IngestResult:
    """The answer when the decision stage was already stored: the stored verdict for an identical re-send,
    IngestError "conflict" for a different body."""
    req = prepared.req
    assert req.stage is not None
    stored = await decisions.stored_answer(conn, req.decision_id, req.stage)
    if stored is None or stored["request_hash"] != prepared.request_hash:
        raise IngestError(
            "conflict",
            f"decision {req.decision_id} at stage {req.stage} was already received with a different body; "
            "a decision stage is immutable — use a new decision_id or another stage",
        )
    return IngestResult(req.decision_id, req.stage, stored["verdict_id"], stored["explanation"], created=False)


async def record_outcome(
    conn: AsyncConnection[Row], decision_id: uuid.UUID, stage: str | None, outcome: str, details: Mapping[str, Any]
) -> Row:
    """Append an `outcome reported` timeline entry to a decision's stage (the latest stage when not given)."""
    row = await writes.insert_outcome(conn, decision_id, stage, outcome, details)
    if row is None:
        where = f" at stage {stage}" if stage else ""
        raise IngestError("not_found", f"decision {decision_id}{where} does not exist")
    return row
