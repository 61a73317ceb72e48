"""Resuming with an approval, and findings on `executed` stages. Pure: the service gathers the facts, this decides.

A resume is a decision stage sent with `approval_id` (a new `pre_commit`, or the decision's next stage), or an
`executed` stage of a decision whose earlier stage was PAUSEd. It is evaluated on the *current* governance like any
decision; then the approval is checked: it exists in the same domain, is approved (every requirement), was not used,
has not expired, the action's binding digest equals the approved one, the spec version is the one it was approved
under, and evaluating the approved stage now gives no BLOCK and requires nothing more than was approved. When every
check passes the approval is consumed (once: a primary key) and a PAUSE of this stage becomes ALLOW; otherwise the
refusal names what changed, and a stage that is not `executed` is BLOCKed (fail closed: an agent that presents an
approval that does not hold must not proceed). An `executed` stage keeps its verdict (it reports what happened) and
gets a finding instead.

`apply` turns the evaluator's explanation into the stored one; replay applies it again to the replayed evaluation
with the stored outcome, so replay stays deterministic: the PAUSE decision replays as PAUSE, the resume as what it was.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mandate.approvals.binding import differences
from mandate.approvals.state import Approval, State
from mandate.vocabulary import Row


@dataclass(frozen=True)
class Refusal:
    """Why an approval does not cover this resume: `code` for programs, `message` for people, `differences` of the
    action when it is not the one approved."""

    code: str
    message: str
    differences: list[str] = field(default_factory=list)

    def to_dict(self) -> Row:
        return {"code": self.code, "message": self.message, "differences": list(self.differences)}


@dataclass(frozen=True)
class Bound:
    """The approved stage evaluated now, with this resume's action: its verdict, spec version and what a PAUSE
    requires (None when the action no longer fits the approved spec: `problem` says why)."""

    verdict: str | None
    spec_version: str | None
    requires: tuple[str, ...] = ()
    summary: str = ""
    problem: str | None = None


def check(
    approval: Approval | None, approval_id: str, *, binding: Mapping[str, Any], digest: str, bound: Bound, now: datetime
) -> Refusal | None:
    """None when `approval` covers this resume, else the first reason it does not (in the order a person checks)."""
    if approval is None:
        return Refusal("unknown", f"approval {approval_id} does not exist in this domain")
    current = approval.state(now)
    if current is State.CONSUMED:
        used = approval.consumption or {}
        return Refusal(
            "consumed",
            f"approval {approval_id} was already used (by decision {used.get('decision_id')}, stage "
            f"{used.get('stage')}); an approval is single-use",
        )
    if current is State.EXPIRED:
        return Refusal("expired", f"approval {approval_id} expired at {_iso(approval.expires_at)}")
    if current is not State.APPROVED:
        missing = [r for r in approval.requirements if r not in approval.satisfied()]
        detail = f" (still waiting for {', '.join(missing)})" if current is State.PENDING else ""
        return Refusal(current.value, f"approval {approval_id} is {current.value}{detail}")
    if digest != approval.request["binding_digest"]:
        changed = differences(approval.request["binding"], binding)
        return Refusal(
            "action_differs",
            f"this action is not the one approved: {'; '.join(changed) or 'its binding digest differs'}",
            changed,
        )
    if bound.problem is not None:
        return Refusal("governance_changed", f"the approved spec no longer accepts this action: {bound.problem}")
    approved_version = str(approval.request["spec_version"])
    if bound.spec_version != approved_version:
        return Refusal(
            "spec_changed",
            f"spec {approval.request['spec_id']} changed from version {approved_version} to {bound.spec_version} "
            "since the approval; ask again",
        )
    if bound.verdict == "BLOCK":
        return Refusal("governance_changed", f"governance changed since the approval: now {bound.summary}")
    beyond = [r for r in bound.requires if r not in approval.requirements]
    if bound.verdict == "PAUSE" and beyond:
        return Refusal(
            "requirements_changed",
            f"the PAUSE now also requires {', '.join(beyond)}, which this approval did not satisfy",
        )
    return None


def apply(explanation: Mapping[str, Any], approval_id: str, refusal: Refusal | None, *, enforce: bool) -> Row:
    """The stored explanation of a resume: the evaluator's `explanation` with the approval's outcome. Accepted: a
    PAUSE becomes ALLOW (reason `approved`). Refused and `enforce` (any stage but `executed`): BLOCK (reason
    `approval_refused`) unless it already is. The evaluator's own verdict, reason and summary are kept under
    `approval.evaluated`."""
    e = dict(explanation)
    evaluated = {key: e.get(key) for key in ("verdict", "reason", "summary", "pause")}
    accepted = refusal is None
    if accepted and e["verdict"] == "PAUSE":
        e.update(
            verdict="ALLOW",
            reason="approved",
            pause=None,
            summary=f"ALLOW by approval {approval_id} of: {evaluated['summary']}",
        )
    elif refusal is not None and enforce and e["verdict"] != "BLOCK":
        e.update(
            verdict="BLOCK",
            reason="approval_refused",
            pause=None,
            summary=f"BLOCK: approval {approval_id} does not cover this action: {refusal.message}",
        )
    e["approval"] = {
        "approval_id": approval_id,
        "accepted": accepted,
        "refusal": None if refusal is None else refusal.to_dict(),
        "enforced": enforce,
        "evaluated": evaluated,
    }
    return e


def reapply(replayed: Mapping[str, Any], stored: Mapping[str, Any]) -> Row:
    """`apply` again, on a replayed explanation, with the outcome `stored` (a stored explanation) recorded."""
    section = stored.get("approval")
    if not isinstance(section, Mapping):
        return dict(replayed)
    refusal = section.get("refusal")
    return apply(
        replayed,
        str(section.get("approval_id")),
        None
        if not isinstance(refusal, Mapping)
        else Refusal(str(refusal["code"]), str(refusal["message"]), list(refusal.get("differences") or ())),
        enforce=bool(section.get("enforced")),
    )


@dataclass(frozen=True)
class Finding:
    kind: str  # unapproved_execution | action_differs
    summary: str
    details: Row


def finding(
    gate: Mapping[str, Any] | None,
    gated: bool,
    *,
    binding: Mapping[str, Any],
    gate_binding: Mapping[str, Any] | None,
    approval_id: str | None,
    refusal: Refusal | None,
) -> Finding | None:
    """The finding an `executed` stage gets, if any.

    `gate` is the decision's latest earlier stage (its verdict), `gated` whether the domain gates this intent before
    it executes (an active `pre_commit` or `proposed` spec), `gate_binding` the earlier stage's action. With an
    approval (`approval_id`): a refusal is a finding. Without: BLOCK or PAUSE before it, or no earlier stage although
    the intent is gated, is `unapproved_execution`; an ALLOW for another action is `action_differs`."""
    if approval_id is not None:
        if refusal is None:
            return None
        kind = "action_differs" if refusal.code == "action_differs" else "unapproved_execution"
        return Finding(
            kind,
            f"executed without a valid approval: {refusal.message}",
            {"approval_id": approval_id, "refusal": refusal.to_dict()},
        )
    if gate is None:
        if not gated:
            return None
        return Finding(
            "unapproved_execution", "executed without asking first: no earlier stage was decided", {"gate": None}
        )
    verdict = gate["verdict"]
    where = {"gate": {"stage": gate["stage"], "verdict": verdict, "verdict_id": str(gate.get("verdict_id"))}}
    if verdict in ("BLOCK", "PAUSE"):
        return Finding(
            "unapproved_execution", f"executed after {verdict} at {gate['stage']} without an approval", where
        )
    if verdict == "ALLOW" and gate_binding is not None and gate_binding != binding:
        changed = differences(gate_binding, binding)
        return Finding(
            "action_differs",
            f"executed another action than the one allowed: {'; '.join(changed)}",
            {**where, "differences": changed},
        )
    return None


def _iso(moment: object) -> str | None:
    return moment.isoformat() if isinstance(moment, datetime) else None
