"""An approval's lifecycle, computed from what is stored and the clock. Pure.

    pending ──approve (each requirement, distinct approvers)──▶ approved ──resume──▶ consumed
       │  └──reject──▶ rejected          approved ──withdraw──▶ withdrawn
       │  └──withdraw (the agent)──▶ withdrawn
       └──(expires_at passes)──▶ expired   (also an approved one that was never used)

The state is a function of the request, its resolution events, its consumption and `now`: expiry is read from
`expires_at`, so the state is the same whether or not the sweeper has written the `expired` event yet. Expired is
not rejected: nobody said no, the time ran out (MANDATE.md §3.12).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from mandate.vocabulary import Row

IMPLICIT_REQUIREMENT = "approval"
"""The one requirement of a PAUSE whose spec names none in `pause_requires`."""


class State(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"
    EXPIRED = "expired"
    CONSUMED = "consumed"


ENDINGS = frozenset({State.REJECTED, State.WITHDRAWN, State.EXPIRED})
"""States that an event of their own ends (at most one per request: a unique index)."""


class Refused(Exception):
    """A transition the lifecycle forbids: `code` for programs, the message for people (HTTP 409)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Approval:
    """One approval request with its events: `resolutions` oldest first, `consumption` the resume that used it."""

    request: Mapping[str, Any]
    resolutions: tuple[Mapping[str, Any], ...] = ()
    consumption: Mapping[str, Any] | None = None

    @property
    def approval_id(self) -> UUID:
        value = self.request["approval_id"]
        return value if isinstance(value, UUID) else UUID(str(value))

    @property
    def requirements(self) -> tuple[str, ...]:
        return tuple(self.request["requirements"])

    @property
    def expires_at(self) -> datetime | None:
        value = self.request.get("expires_at")
        return value if isinstance(value, datetime) else None

    def satisfied(self) -> dict[str, Mapping[str, Any]]:
        """requirement → the approval event that satisfied it."""
        return {r["requirement"]: r for r in self.resolutions if r["kind"] == "approved"}

    def ending(self) -> Mapping[str, Any] | None:
        return next((r for r in self.resolutions if r["kind"] != "approved"), None)

    def state(self, now: datetime) -> State:
        if self.consumption is not None:
            return State.CONSUMED
        ending = self.ending()
        if ending is not None:
            return State(ending["kind"])
        if self.expires_at is not None and now >= self.expires_at:
            return State.EXPIRED
        if set(self.requirements) <= set(self.satisfied()):
            return State.APPROVED
        return State.PENDING

    def check_resolution(self, kind: str, requirement: str | None, token_id: UUID | None, now: datetime) -> str | None:
        """The requirement an `approved`/`rejected`/`withdrawn` event by `token_id` may record now, or Refused.

        Approve: only while pending; the requirement must be one of the request's (may be left out when there is
        one) and not yet satisfied; one approver satisfies at most one requirement. Reject: only while pending.
        Withdraw: while pending or approved (an approval nobody used yet)."""
        current = self.state(now)
        allowed = {State.PENDING, State.APPROVED} if kind == "withdrawn" else {State.PENDING}
        if current not in allowed:
            raise Refused(current.value, self._not_now(kind, current))
        if kind != "approved":
            return None
        missing = [r for r in self.requirements if r not in self.satisfied()]
        if requirement is None:
            if len(self.requirements) > 1:
                raise Refused(
                    "requirement_needed",
                    f"approval {self.approval_id} needs {', '.join(self.requirements)}: say which one this approval "
                    "satisfies",
                )
            requirement = self.requirements[0]
        if requirement not in self.requirements:
            raise Refused(
                "unknown_requirement",
                f"approval {self.approval_id} does not require {requirement!r}; it requires "
                f"{', '.join(self.requirements)}",
            )
        if requirement not in missing:
            raise Refused(
                "already_satisfied", f"requirement {requirement!r} of {self.approval_id} is already satisfied"
            )
        if token_id is not None and any(r.get("token_id") == token_id for r in self.satisfied().values()):
            raise Refused(
                "same_approver",
                f"this approver already satisfied another requirement of {self.approval_id}; each requirement needs "
                "a different approver",
            )
        return requirement

    def _not_now(self, kind: str, current: State) -> str:
        verb = {"approved": "approve", "rejected": "reject", "withdrawn": "withdraw"}.get(kind, kind)
        if current is State.EXPIRED:
            return (
                f"cannot {verb} approval {self.approval_id}: it expired at {_iso(self.expires_at)} "
                "(expired is not rejected: the agent may ask again with a new decision)"
            )
        if current is State.CONSUMED:
            return f"cannot {verb} approval {self.approval_id}: it was already used by a resume"
        return f"cannot {verb} approval {self.approval_id}: it is {current.value}"

    def to_dict(self, now: datetime) -> Row:
        """The API's representation: the request, its state now, each requirement and who satisfied it, the events."""
        r = self.request
        satisfied = self.satisfied()
        return {
            "approval_id": str(self.approval_id),
            "state": self.state(now).value,
            "decision_id": str(r["decision_id"]),
            "stage": str(r["stage"]),
            "verdict_id": str(r["verdict_id"]),
            "organization_id": str(r["organization_id"]),
            "domain": r["domain"],
            "spec": {"spec_id": r["spec_id"], "version": r["spec_version"]},
            "snapshot": None
            if r.get("snapshot_id") is None
            else {"snapshot_id": str(r["snapshot_id"]), "version": r.get("snapshot_version")},
            "scope_id": r.get("scope_id"),
            "owning_team": r.get("owning_team"),
            "escalation": list(r.get("escalation") or ()),
            "requirements": [
                {
                    "requirement": name,
                    "satisfied": name in satisfied,
                    "by": None if name not in satisfied else _who(satisfied[name]),
                }
                for name in self.requirements
            ],
            "binding_digest": r["binding_digest"],
            "binding": r["binding"],
            "expires_at": _iso(self.expires_at),
            "created_at": _iso(r.get("created_at")),
            "events": [
                {
                    "kind": e["kind"],
                    "requirement": e.get("requirement"),
                    **_who(e),
                    "reason": e.get("reason"),
                    "at": _iso(e.get("created_at")),
                }
                for e in self.resolutions
            ],
            "consumed_by": None
            if self.consumption is None
            else {
                "decision_id": str(self.consumption["decision_id"]),
                "stage": str(self.consumption["stage"]),
                "verdict_id": str(self.consumption["verdict_id"]),
                "at": _iso(self.consumption.get("created_at")),
            },
        }


def route(approval: Approval, teams_with_approvers: Iterable[str]) -> str | None:
    """The team that answers for `approval` now: its scope's owning team when an approver token names it, else the
    nearest ancestor scope's team that has one; None when none has (the domain's approvers without teams answer)."""
    have = set(teams_with_approvers)
    for team in (approval.request.get("owning_team"), *(approval.request.get("escalation") or ())):
        if team is not None and team in have:
            return str(team)
    return None


def may_answer(token_teams: frozenset[str] | None, routed_to: str | None) -> bool:
    """Whether an approver whose token names `token_teams` (None: every team) answers for a request routed so."""
    return token_teams is None or (routed_to is not None and routed_to in token_teams)


def _who(event: Mapping[str, Any]) -> Row:
    token = event.get("token_id")
    return {"token_id": None if token is None else str(token), "name": event.get("actor")}


def _iso(moment: object) -> str | None:
    return moment.isoformat() if isinstance(moment, datetime) else None
