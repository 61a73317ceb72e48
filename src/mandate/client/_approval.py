"""`Approval`: the approval request of a PAUSE, as a typed, frozen value. It holds what the server said — its state
now, each requirement and who satisfied it, the action it is bound to, its expiry and its events; nothing is
computed here but shorthands over those fields."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, cast
from uuid import UUID

ApprovalState = Literal["pending", "approved", "rejected", "withdrawn", "expired", "consumed"]
_STATES = frozenset({"pending", "approved", "rejected", "withdrawn", "expired", "consumed"})


@dataclass(frozen=True)
class ApprovalRequirement:
    """One thing a PAUSE waits for (`dba-approval`), and the approver who satisfied it (`by`, a token's name)."""

    requirement: str
    satisfied: bool
    by: str | None
    by_token_id: UUID | None


@dataclass(frozen=True)
class ApprovalEvent:
    """What happened to the request: `approved` (one requirement), `rejected`, `withdrawn` or `expired`, by whom."""

    kind: str
    requirement: str | None
    name: str | None
    token_id: UUID | None
    reason: str | None
    at: datetime | None


@dataclass(frozen=True)
class Approval:
    """An approval request with its state when the server answered.

    `state` is `pending` until every requirement is satisfied (`approved`), someone rejects it (`rejected`), the
    agent withdraws it (`withdrawn`) or its time runs out (`expired`); a resume that uses it makes it `consumed`.
    `binding` is the action it is bound to (organization, domain, intent, actor, target, signals, attribution): a
    resume proceeds only with that exact action. `body` is the JSON the server sent."""

    approval_id: UUID
    state: ApprovalState
    decision_id: UUID
    stage: str
    verdict_id: UUID
    organization_id: str
    domain: str
    spec_id: str | None
    spec_version: str | None
    scope_id: str | None
    owning_team: str | None
    escalation: tuple[str, ...]
    requirements: tuple[ApprovalRequirement, ...]
    binding_digest: str
    expires_at: datetime | None
    created_at: datetime | None
    events: tuple[ApprovalEvent, ...]
    binding: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False, repr=False)
    consumed_by: Mapping[str, Any] | None = field(default=None, hash=False, compare=False, repr=False)
    body: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False, repr=False)

    @property
    def pending(self) -> bool:
        return self.state == "pending"

    @property
    def approved(self) -> bool:
        return self.state == "approved"

    @property
    def missing(self) -> tuple[str, ...]:
        """The requirements nobody has satisfied yet."""
        return tuple(r.requirement for r in self.requirements if not r.satisfied)

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> Approval:
        """An Approval from the answer of `GET /api/approvals/{id}` or of an approve/reject/withdraw.

        Raises KeyError/ValueError/TypeError on a body that is not one (the client turns that into
        `MandateAPIError`)."""
        state = body["state"]
        if state not in _STATES:
            raise ValueError(f"unknown approval state {state!r}")
        spec = body.get("spec") or {}
        return cls(
            approval_id=UUID(str(body["approval_id"])),
            state=cast(ApprovalState, state),
            decision_id=UUID(str(body["decision_id"])),
            stage=str(body["stage"]),
            verdict_id=UUID(str(body["verdict_id"])),
            organization_id=str(body["organization_id"]),
            domain=str(body["domain"]),
            spec_id=_str(spec.get("spec_id")),
            spec_version=_str(spec.get("version")),
            scope_id=_str(body.get("scope_id")),
            owning_team=_str(body.get("owning_team")),
            escalation=tuple(str(t) for t in body.get("escalation") or ()),
            requirements=tuple(_requirement(r) for r in body["requirements"]),
            binding_digest=str(body["binding_digest"]),
            expires_at=_time(body.get("expires_at")),
            created_at=_time(body.get("created_at")),
            events=tuple(_event(e) for e in body.get("events") or ()),
            binding=dict(body.get("binding") or {}),
            consumed_by=body.get("consumed_by"),
            body=dict(body),
        )


def _requirement(row: Mapping[str, Any]) -> ApprovalRequirement:
    by = row.get("by") or {}
    return ApprovalRequirement(
        requirement=str(row["requirement"]),
        satisfied=bool(row["satisfied"]),
        by=_str(by.get("name")),
        by_token_id=_uuid(by.get("token_id")),
    )


def _event(row: Mapping[str, Any]) -> ApprovalEvent:
    return ApprovalEvent(
        kind=str(row["kind"]),
        requirement=_str(row.get("requirement")),
        name=_str(row.get("name")),
        token_id=_uuid(row.get("token_id")),
        reason=_str(row.get("reason")),
        at=_time(row.get("at")),
    )


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


def _uuid(value: Any) -> UUID | None:
    return None if value is None else UUID(str(value))


def _time(value: Any) -> datetime | None:
    return None if value is None else datetime.fromisoformat(str(value))
