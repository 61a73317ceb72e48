"""What approvals add to storing a stage: the facts of the approval it resumes with (or the earlier stage an
`executed` stage follows), the resume's checks (`approvals/resume.py`), and the extra parameters of
`INSERT_GOVERNED_DECISION` (an escalation, a consumption, a finding)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from mandate.approvals import binding as bindings
from mandate.approvals import resume
from mandate.approvals.state import IMPLICIT_REQUIREMENT, Approval
from mandate.db import approvals as approval_queries
from mandate.errors import IngestError
from mandate.evaluator import Decision, Evaluation
from mandate.governance.cache import DomainGovernance
from mandate.service.decide import decide
from mandate.service.request import DecisionRequest, attribution_of
from mandate.vocabulary import Row

_NO_APPROVAL_WORK: dict[str, Any] = {
    "escalation": None,
    "requirements": None,
    "binding_digest": None,
    "binding": None,
    "consumes": None,
    "finding_id": None,
    "finding_kind": None,
    "finding_approval": None,
    "finding_summary": None,
    "finding_details": None,
}


@dataclass(frozen=True)
class ApprovalFacts:
    """What the store says about the approvals a stage concerns (`approval_facts`): the approval it resumes with
    (sent as `approval_id`, or the PAUSEd earlier stage's for an `executed` stage) and, for `executed`, the latest
    earlier stage (`gate`) with its verdict."""

    approval_id: uuid.UUID | None = None
    approval: Approval | None = None  # None: no such approval in the decision's domain
    gate: Row | None = None
    now: datetime = field(default_factory=lambda: datetime.now(UTC))


def concerns_approvals(req: DecisionRequest) -> bool:
    """Whether storing `req` needs `approval_facts` first: a resume, or an `executed` stage."""
    return req.approval_id is not None or req.stage == "executed"


def _gate(earlier: list[Row]) -> Row | None:
    """The stage an `executed` stage follows: the latest of its decision's stored stages that is not `executed`."""
    before = [r for r in earlier if r["stage"] != "executed"]
    return before[-1] if before else None


def settled_facts(req: DecisionRequest, earlier: list[Row]) -> ApprovalFacts | None:
    """The facts of an `executed` stage from its decision's stored stages (`earlier`) alone, when they need no
    approval read: no `approval_id` sent and the gate not a PAUSE. None otherwise (`approval_facts` reads them)."""
    if req.stage != "executed" or req.approval_id is not None:
        return None
    gate = _gate(earlier)
    return None if gate is not None and gate["verdict"] == "PAUSE" else ApprovalFacts(None, None, gate)


async def approval_facts(
    conn: AsyncConnection[Row], req: DecisionRequest, earlier: list[Row] | None = None
) -> ApprovalFacts:
    """The facts of a stage that `concerns_approvals`. `earlier`: its decision's stored stages when already read
    (`earlier_stages`), else they are read here."""
    gate = None
    if req.stage == "executed":
        if earlier is None:
            earlier = await approval_queries.earlier_stages(conn, req.decision_id)
        settled = settled_facts(req, earlier)
        if settled is not None:
            return settled
        gate = _gate(earlier)
    if req.approval_id is not None:
        found = await approval_queries.get(conn, req.approval_id)
        same_domain = found is not None and (
            str(found.request["organization_id"]) == str(req.organization_id).lower()
            and found.request["domain"] == req.domain
        )
        return ApprovalFacts(req.approval_id, found if same_domain else None, gate)
    if gate is None:  # not a stage approvals concern
        return ApprovalFacts()
    implicit = await approval_queries.get(conn, gate["verdict_id"])  # the PAUSEd stage's approval, if it asked one
    return ApprovalFacts(None if implicit is None else implicit.approval_id, implicit, gate)


def _binding_of(req: DecisionRequest, decision: Decision) -> dict[str, Any]:
    return bindings.binding(
        organization_id=decision.organization_id,
        domain=decision.domain,
        intent=decision.intent,
        actor=req.actor,
        target=req.target,
        signals=decision.context,
        attribution=decision.attribution,
    )


def stored_binding(row: Row) -> dict[str, Any]:
    """The binding of a stored stage (an `earlier_stages` row): its signals as the evaluator saw them."""
    explanation = row.get("explanation") if isinstance(row.get("explanation"), dict) else {}
    observed = (explanation or {}).get("observe") or {}
    return bindings.binding(
        organization_id=row["organization_id"],
        domain=row["domain"],
        intent=row["intent"],
        actor=row["actor"],
        target=row["target"],
        signals={**row["context"], **observed.get("values", {})},
        attribution=attribution_of(row["scope"]),
    )


def _bound(
    req: DecisionRequest, d: DomainGovernance, approval: Approval | None, evaluation: Evaluation
) -> resume.Bound:
    """The approved stage evaluated now with this action (this stage's own evaluation when it is that stage)."""
    stage = None if approval is None else str(approval.request["stage"])
    if stage is None or stage == req.stage:
        ev = evaluation
    else:
        try:
            ev, _, _ = decide(replace(req, stage=stage), d)
        except IngestError as exc:
            return resume.Bound(None, None, problem=exc.message)
    if ev.spec_id is None:
        return resume.Bound(None, None, problem=f"no active spec for {req.intent} at {stage} any more")
    return resume.Bound(ev.verdict.value, ev.spec_version, tuple(ev.pause_requires), ev.summary)


def approval_work(
    req: DecisionRequest,
    d: DomainGovernance,
    evaluation: Evaluation,
    decision: Decision,
    explanation: dict[str, Any],
    facts: ApprovalFacts | None,
) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The stored explanation and the extra parameters of `INSERT_GOVERNED_DECISION`, or None when approvals do not
    concern this stage (a stage that is neither a PAUSE, a resume nor `executed`)."""
    final = explanation
    work = dict(_NO_APPROVAL_WORK)
    action = _binding_of(req, decision)
    action_digest = bindings.digest(action)
    refusal = None
    if facts is not None and facts.approval_id is not None:
        bound = _bound(req, d, facts.approval, evaluation)
        refusal = resume.check(
            facts.approval, str(facts.approval_id), binding=action, digest=action_digest, bound=bound, now=facts.now
        )
        final = resume.apply(explanation, str(facts.approval_id), refusal, enforce=req.stage != "executed")
        if refusal is None:
            work["consumes"] = facts.approval_id
    if req.stage == "executed" and facts is not None:
        gate = facts.gate
        gated = any((req.intent, stage) in d.active_specs for stage in ("pre_commit", "proposed"))
        found = resume.finding(
            gate,
            gated,
            binding=action,
            gate_binding=None if gate is None else stored_binding(gate),
            approval_id=None if facts.approval_id is None else str(facts.approval_id),
            refusal=refusal,
        )
        if found is not None:
            work.update(
                finding_id=uuid.uuid4(),
                finding_kind=found.kind,
                finding_approval=facts.approval_id if facts.approval is not None else None,
                finding_summary=found.summary,
                finding_details=Jsonb(found.details),
            )
    if final["verdict"] == "PAUSE":
        scopes = {s.scope_id: s for s in d.scopes}
        ancestors = ((final.get("scope") or {}).get("ancestors")) or []
        work.update(
            requirements=list(evaluation.pause_requires) or [IMPLICIT_REQUIREMENT],
            escalation=[t for t in (getattr(scopes.get(a), "owning_team", None) for a in ancestors) if t],
            binding_digest=action_digest,
            binding=Jsonb(action),
        )
    if final is explanation and all(v is None for v in work.values()):
        return None
    return final, work
