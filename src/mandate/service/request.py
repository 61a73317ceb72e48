"""A decision as an agent sends it (`DecisionRequest`), and the answer once it is stored (`IngestResult`)."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from mandate.evaluator import SELECTORS
from mandate.vocabulary import Row

ATTRIBUTION_FIELDS = ("decision_id", "organization_id", "domain", "intent", "stage")


@dataclass(frozen=True)
class DecisionRequest:
    """A decision event as sent by an agent (upstream-compatible flat body), already shape-checked."""

    decision_id: uuid.UUID
    organization_id: str | None
    domain: str | None
    intent: str | None
    stage: str | None
    actor: str
    target: str
    context: Mapping[str, Any]
    scope: Mapping[str, Any]
    timestamp: datetime
    unstructured_context: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)  # the body as received, for the idempotency hash
    token_id: uuid.UUID | None = None  # the API token that sent it (never its secret); None without authentication
    approval_id: uuid.UUID | None = None  # a resume: the approval this stage proceeds with (docs/approvals.md)

    def request_hash(self) -> str:
        return hashlib.sha256(orjson.dumps(self.raw, option=orjson.OPT_SORT_KEYS)).hexdigest()

    def attribution(self) -> dict[str, str | None]:
        return attribution_of(self.scope)


def attribution_of(scope: Mapping[str, Any]) -> dict[str, str | None]:
    """A decision's scope attribution as the evaluator reads it: every selector, as text or None."""
    return {name: None if scope.get(name) is None else str(scope.get(name)) for name in SELECTORS}


def in_utc(timestamp: datetime) -> datetime:
    """A decision's time as the evaluator sees it: in UTC (§3a), so that anything derived from it (PAUSE expiry) is
    the same whatever offset the agent sent, the session time zone the row is read back in, or the server's zone."""
    return timestamp.replace(tzinfo=UTC) if timestamp.tzinfo is None else timestamp.astimezone(UTC)


@dataclass
class IngestResult:
    decision_id: uuid.UUID
    stage: str
    verdict_id: uuid.UUID
    evaluation_dict: dict[str, Any]
    created: bool  # False: an identical re-send, answered with the stored verdict

    def body(self) -> Row:
        e = self.evaluation_dict
        pause = e.get("pause")
        return {
            "decision_id": str(self.decision_id),
            "stage": self.stage,
            "verdict_id": str(self.verdict_id),
            "verdict": e["verdict"],
            "summary": e["summary"],
            "reason": e["reason"],
            "organization_id": e["organization_id"],
            "domain": e["domain"],
            "spec": e["spec"],
            "snapshot": e["snapshot"],
            "scope": e["scope"],
            "matched_policy_ids": e["matched_policy_ids"],
            "winning_policy_id": e["winning_policy_id"],
            "pause": pause,
            "approval": e.get("approval"),  # a resume: whether its approval held (docs/approvals.md)
            "approval_request": None
            if e["verdict"] != "PAUSE"
            else {"approval_id": str(self.verdict_id), "url": f"/api/approvals/{self.verdict_id}"},
            "explanation": e,
            "idempotent_replay": not self.created,
        }
