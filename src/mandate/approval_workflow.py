"""Use cases: approve, reject or withdraw an approval request; wait for one to change; sweep expired ones.

Each state change runs in one transaction holding the request's advisory lock: read the request and its events,
check the transition (`state.Approval.check_resolution`) and who asks (routing, role, the agent that sent it),
append the event. Two approvers racing on one request are therefore serialised, and the unique indexes of
migration 012 refuse what slips through anyway.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from psycopg import AsyncConnection

from mandate.approvals.state import Approval, Refused, may_answer, route
from mandate.db import approvals as q
from mandate.tokens import Principal, Role
from mandate.vocabulary import Row


class NotFound(LookupError):
    """No such approval request, or one the caller may not see (the same answer for both)."""


def visible(p: Principal, approval: Approval) -> bool:
    r = approval.request
    return p.sees_decision(str(r["organization_id"]), str(r["domain"]), r.get("token_id"))


async def get(conn: AsyncConnection[Row], p: Principal, approval_id: UUID) -> Approval:
    approval = await q.get(conn, approval_id)
    if approval is None or not visible(p, approval):
        raise NotFound(f"approval {approval_id} does not exist")
    return approval


async def resolve(
    conn: AsyncConnection[Row],
    p: Principal,
    approval_id: UUID,
    *,
    kind: str,
    requirement: str | None,
    reason: str | None,
    now: datetime,
) -> Approval:
    """Append an `approved` (one requirement), `rejected` or `withdrawn` event, or raise Refused / NotFound.

    Approve and reject: an approver (or admin) of the request's domain to whom it is routed — its scope's owning
    team, or the nearest ancestor's team that has an approver token, or any approver of the domain when no team
    has one. Withdraw: the agent token that sent the PAUSEd decision, or an admin."""
    async with conn.transaction():
        await q.lock(conn, approval_id)
        approval = await get(conn, p, approval_id)
        r = approval.request
        if kind == "withdrawn":
            if p.role is Role.AGENT and (p.token_id is None or p.token_id != r.get("token_id")):
                raise NotFound(f"approval {approval_id} does not exist")  # an agent sees only its own decisions
        elif p.role is Role.APPROVER:
            teams = await q.teams_with_approvers(conn, r["organization_id"], r["domain"], now)
            routed = route(approval, teams)
            if not may_answer(p.teams, routed):
                raise Refused(
                    "not_routed",
                    f"approval {approval_id} is routed to team {routed or '(any approver of the domain)'}; this token "
                    f"answers for {', '.join(sorted(p.teams or ())) or 'no team'}",
                )
        chosen = approval.check_resolution(kind, requirement, p.token_id, now)
        await q.append_resolution(
            conn,
            approval,
            kind=kind,
            requirement=chosen,
            token_id=p.token_id,
            actor=p.name,
            reason=reason,
            source="agent" if kind == "withdrawn" else "human",
        )
        return await get(conn, p, approval_id)
