"""`Verdict`: Mandate's answer to a decision, as a typed, frozen value. It holds what the server said — nothing is
computed here but the four `allowed`/`blocked`/`paused`/`observed` shorthands for `verdict == …`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, cast
from uuid import UUID

from mandate.client._approval import Approval

VerdictName = Literal["ALLOW", "PAUSE", "BLOCK", "OBSERVE"]
_NAMES = frozenset({"ALLOW", "PAUSE", "BLOCK", "OBSERVE"})


@dataclass(frozen=True)
class Verdict:
    """A verdict with the authority it was given under and its explanation.

    `summary` is the one-line human sentence ("BLOCK by policy-… (scope …, owner dba-team): backup_first ==
    false"); `explanation` is the full structured explanation the server stored (every candidate policy and
    condition, provenance of observed signals, errors).

    `approval_id` names a PAUSE's approval request (wait on it, resume with it). `approval` is that request as
    `decide(on_pause="wait")` last saw it — its `state` says how the wait ended — and None otherwise."""

    verdict: VerdictName
    summary: str
    decision_id: UUID
    stage: str
    verdict_id: UUID
    reason: str | None
    organization_id: str | None
    domain: str | None
    spec_id: str | None
    spec_version: str | None
    scope_id: str | None
    owning_team: str | None
    snapshot_id: str | None
    snapshot_version: int | None
    matched_policy_ids: tuple[str, ...]
    winning_policy_id: str | None
    pause_requires: tuple[str, ...]
    pause_expires_at: datetime | None
    idempotent_replay: bool = False
    approval_id: UUID | None = None
    explanation: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False, repr=False)
    approval: Approval | None = field(default=None, compare=False, repr=False)

    @property
    def allowed(self) -> bool:
        return self.verdict == "ALLOW"

    @property
    def blocked(self) -> bool:
        return self.verdict == "BLOCK"

    @property
    def paused(self) -> bool:
        return self.verdict == "PAUSE"

    @property
    def observed(self) -> bool:
        return self.verdict == "OBSERVE"

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> Verdict:
        """A Verdict from the answer of `POST /api/decisions` or of `GET /api/decisions/{id}/verdict`.

        Raises KeyError/ValueError/TypeError on a body that is not one of those (the client turns that into
        `MandateAPIError`)."""
        explanation: Mapping[str, Any] = body.get("explanation") or {}
        name = body["verdict"]
        if name not in _NAMES:
            raise ValueError(f"unknown verdict {name!r}")
        spec = _obj(body.get("spec")) or _obj(explanation.get("spec"))
        snapshot = _obj(body.get("snapshot")) or _obj(explanation.get("snapshot"))
        scope = _obj(body.get("scope")) or _obj(explanation.get("scope"))
        pause = _obj(body.get("pause")) or _obj(explanation.get("pause"))
        requires = body.get("pause_requires") if "pause_requires" in body else pause.get("requires")
        expires = body.get("pause_expires_at") if "pause_expires_at" in body else pause.get("expires_at")
        snapshot_version = _first(body, "snapshot_version", snapshot.get("version"))
        approval_id = _obj(body.get("approval_request")).get("approval_id")
        return cls(
            verdict=cast(VerdictName, name),
            summary=str(body.get("summary") or explanation.get("summary") or ""),
            decision_id=UUID(str(body["decision_id"])),
            stage=str(body["stage"]),
            verdict_id=UUID(str(body["verdict_id"])),
            reason=_first(body, "reason", explanation.get("reason")),
            organization_id=_str(_first(body, "organization_id", explanation.get("organization_id"))),
            domain=_first(body, "domain", explanation.get("domain")),
            spec_id=_first(body, "spec_id", spec.get("spec_id")),
            spec_version=_str(_first(body, "spec_version", spec.get("version"))),
            scope_id=_first(body, "scope_id", scope.get("scope_id")),
            owning_team=_first(body, "owning_team", scope.get("owning_team")),
            snapshot_id=_str(_first(body, "snapshot_id", snapshot.get("snapshot_id"))),
            snapshot_version=None if snapshot_version is None else int(snapshot_version),
            matched_policy_ids=tuple(str(p) for p in body.get("matched_policy_ids") or ()),
            winning_policy_id=_first(body, "winning_policy_id", explanation.get("winning_policy_id")),
            pause_requires=tuple(str(r) for r in requires or ()),
            pause_expires_at=None if expires is None else datetime.fromisoformat(str(expires)),
            idempotent_replay=bool(body.get("idempotent_replay", False)),
            approval_id=None if approval_id is None else UUID(str(approval_id)),
            explanation=explanation,
        )


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _first(body: Mapping[str, Any], key: str, fallback: Any) -> Any:
    value = body.get(key)
    return fallback if value is None else value


def _str(value: Any) -> str | None:
    return None if value is None else str(value)
