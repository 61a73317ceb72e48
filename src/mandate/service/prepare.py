"""A decision evaluated and ready to store: the parameters of the one statement that writes it (db/writes.py)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from psycopg.types.json import Jsonb

from mandate.db import writes
from mandate.evaluator import Evaluation
from mandate.governance.cache import Governance
from mandate.service.approvals import ApprovalFacts, approval_work, concerns_approvals
from mandate.service.decide import check_attribution, decide, explanation_dict
from mandate.service.request import DecisionRequest, IngestResult

_TIMELINE_SEVERITY = {"ALLOW": "info", "OBSERVE": "info", "PAUSE": "warning", "BLOCK": "critical"}
"""The severity of a verdict's `evaluated` timeline entry (which verdict wins is evaluator/verdicts.py SEVERITY)."""


@dataclass(frozen=True)
class Prepared:
    """A decision evaluated and ready to store: the one statement's parameters and what the answer needs."""

    req: DecisionRequest
    params: dict[str, Any]
    verdict_id: uuid.UUID
    explanation: dict[str, Any]
    request_hash: str
    statement: str = writes.INSERT_DECISION

    def created(self) -> IngestResult:
        """The answer once `INSERT_DECISION` stored it (its row says `inserted`)."""
        assert self.req.stage is not None
        return IngestResult(self.req.decision_id, self.req.stage, self.verdict_id, self.explanation, created=True)


def prepare(
    governance: Governance,
    req: DecisionRequest,
    *,
    received_at: datetime | None = None,
    facts: ApprovalFacts | None = None,
) -> Prepared:
    """Resolve, validate and evaluate `req` (IngestError when it cannot be attributed or its signals are invalid):
    everything but the write, which `INSERT` (`store`, or a group commit) does in one statement. `facts` (from
    `approval_facts`) are needed when `concerns_approvals(req)`."""
    d = check_attribution(req, governance)
    evaluation, decision, observed = decide(req, d)
    received_at = received_at or datetime.now(UTC)
    evaluated_at = datetime.now(UTC)
    verdict_id = uuid.uuid4()
    explanation = explanation_dict(evaluation, observed)
    statement = writes.INSERT_DECISION
    extra: dict[str, Any] = {}
    if evaluation.verdict.value == "PAUSE" or concerns_approvals(req):
        approvals = approval_work(req, d, evaluation, decision, explanation, facts)
        if approvals is not None:
            explanation, extra = approvals
            statement = writes.INSERT_GOVERNED_DECISION
    verdict = explanation["verdict"]
    request_hash = req.request_hash()
    assert req.stage is not None
    params = {
        "decision_id": req.decision_id,
        "intent": req.intent,
        "stage": req.stage,
        "actor": req.actor,
        "target": req.target,
        "context": Jsonb(dict(req.context)),
        "scope": Jsonb(dict(req.scope)),
        "timestamp": req.timestamp,
        "organization_id": d.organization_id,
        "domain": d.domain,
        "spec_id": evaluation.spec_id,
        "spec_version": evaluation.spec_version,
        "request_hash": request_hash,
        "token_id": req.token_id,
        "verdict_id": verdict_id,
        "snapshot_id": evaluation.snapshot_id,
        "snapshot_version": evaluation.snapshot_version,
        "verdict": verdict,
        "matched": list(evaluation.matched_policy_ids),
        "evaluated_at": evaluated_at,
        "received_at": received_at,
        "scope_id": evaluation.scope_id,
        "owning_team": evaluation.owning_team,
        "summary": explanation["summary"],
        "explanation": Jsonb(explanation),
        "pause_requires": list(evaluation.pause_requires) if verdict == "PAUSE" else None,
        "pause_expires_at": evaluation.expires_at if verdict == "PAUSE" else None,
        "received_details": Jsonb(_received_details(req, request_hash, observed is not None)),
        "evaluated_summary": explanation["summary"],
        "evaluated_details": Jsonb(_evaluated_details(evaluation, explanation, verdict_id)),
        "severity": _TIMELINE_SEVERITY[verdict],
        **extra,
    }
    return Prepared(req, params, verdict_id, explanation, request_hash, statement)


def _received_details(req: DecisionRequest, request_hash: str, observed: bool) -> dict[str, Any]:
    """The details of the decision's `received` timeline entry."""
    return {
        "request_hash": request_hash,
        "observe_phase": observed,
        **({} if req.token_id is None else {"token_id": str(req.token_id)}),
        **({} if req.approval_id is None else {"approval_id": str(req.approval_id)}),
    }


def _evaluated_details(evaluation: Evaluation, explanation: dict[str, Any], verdict_id: uuid.UUID) -> dict[str, Any]:
    """The details of the decision's `evaluated` timeline entry."""
    verdict = explanation["verdict"]
    return {
        "verdict": verdict,
        "verdict_id": str(verdict_id),
        "reason": explanation["reason"],
        "scope_id": evaluation.scope_id,
        "owning_team": evaluation.owning_team,
        "snapshot_id": evaluation.snapshot_id,
        "matched_policy_ids": list(evaluation.matched_policy_ids),
        "errors": [error._asdict() for error in evaluation.errors],
        **({} if verdict != "PAUSE" else {"approval_id": str(verdict_id)}),
        **({} if "approval" not in explanation else {"approval": explanation["approval"]}),
    }
