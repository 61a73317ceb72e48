"""What the OpenAPI document says each route answers: the body of every success and every error status.

The routes build their answers as dicts (serialised by orjson, the fast path); these models only describe them,
for `/openapi.json` and the clients generated from it. `tests/web/test_contract.py` checks answers against them.
Each route takes one of the keyword sets below: `@router.get(..., **doc.page)`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from mandate.vocabulary import Row


class ProblemModel(BaseModel):
    field: str
    code: str
    message: str


class ErrorDetail(BaseModel):
    code: str
    message: str
    problems: list[ProblemModel]


class ErrorBody(BaseModel):
    """Every error answer. A decision refused for its attribution (§3.1) also carries `verdict: OBSERVE`."""

    error: ErrorDetail
    verdict: Literal["OBSERVE"] | None = None
    decision_id: str | None = None


class Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class BatchItem(Open):
    """What `POST /api/decisions` would have answered for this decision alone: its status, and its body (a
    `DecisionResult`, or an `ErrorBody`)."""

    status: int


class BatchResult(BaseModel):
    results: list[BatchItem]
    stored: int = Field(description="decisions stored by this request (status 201)")
    failed: int = Field(description="decisions refused (status 400 or more); the others were stored before (200)")


class Redirect(BaseModel):
    """A unique prefix answered with the whole id, for clients that do not follow redirects."""

    decision_id: str
    location: str


class Health(Open):
    status: Literal["ok", "unavailable", "migrating"]
    version: str
    required_schema_version: int


class DecisionResult(Open):
    decision_id: str
    stage: str
    verdict_id: str
    verdict: Literal["ALLOW", "PAUSE", "BLOCK", "OBSERVE"]
    summary: str
    reason: str
    organization_id: str
    domain: str
    matched_policy_ids: list[str]
    winning_policy_id: str | None
    pause: Row | None
    explanation: Row
    idempotent_replay: bool


class Outcome(Open):
    entry_id: Any
    decision_id: str
    stage: str
    summary: str
    details: Row


class Page(BaseModel):
    items: list[Row]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null on the last page")
    limit: int


class Items(Open):
    items: list[Row]


class DecisionDetail(Open):
    decision_id: str
    stages: list[Row]


class VerdictDetail(Open):
    verdicts: list[Row]


class Timeline(BaseModel):
    decision_id: str
    entries: list[Row]


class Replay(BaseModel):
    decision_id: str
    identical: bool
    stages: list[Row]


class SpecDetail(Open):
    versions: list[Row]
    status_history: list[Row]


_WHY = {
    400: "Malformed request: an unknown query parameter, a forged cursor, a body that is not JSON",
    404: "Not found (or not in the organization or domain named)",
    401: "No valid API token: send Authorization: Bearer mdt_… (docs/security.md)",
    403: "The token may not do this, or not in that organization or domain",
    409: "Conflict: this (decision_id, stage) was stored with a different body, or an approval cannot move so now",
    413: "The body exceeds 256 KiB (checked while reading, chunked or not)",
    415: "The body is not sent as JSON (Content-Type must be application/json)",
    422: "Invalid request: names every field. A decision with missing, malformed or unknown attribution is "
    "answered here with verdict OBSERVE and recorded in the rejection log",
    503: "The database did not answer in time or a migration is running: retry",
}
_READ = (400, 401, 403, 422, 503)


def _spec(model: type[BaseModel], status: int, *errors: int, description: str = "Success") -> dict[str, Any]:
    responses: dict[int | str, dict[str, Any]] = {status: {"model": model, "description": description}}
    responses.update({code: {"model": ErrorBody, "description": _WHY[code]} for code in sorted(errors)})
    return {"response_model": None, "responses": responses}


class ShadowReport(Open):
    """What a candidate bundle would change over the stored history (docs/shadow.md)."""

    evaluated: int
    changed: int
    unevaluable: int
    transitions: list[Row]


health = _spec(Health, 200, 503)
shadow = _spec(ShadowReport, 200, *_READ)
decision = _spec(DecisionResult, 201, *_READ, 409, 413, 415, description="Stored; the verdict with its explanation")
decision["responses"][200] = {"model": DecisionResult, "description": "An identical re-send: the stored verdict"}
batch = _spec(BatchResult, 200, *_READ, 413, 415, description="One result per decision, in order")
outcome = _spec(Outcome, 201, *_READ, 404, 413, 415, description="The outcome timeline entry")
page = _spec(Page, 200, *_READ)
items = _spec(Items, 200, *_READ)
decision_detail = _spec(DecisionDetail, 200, *_READ, 404, 409)
decision_detail["responses"][307] = {
    "model": Redirect,
    "description": "A unique prefix of a decision id (≥ 6 hex digits): redirected to the whole id",
    "headers": {"Location": {"schema": {"type": "string"}, "description": "/api/decisions/{the whole id}"}},
}
decision_detail["responses"][409] = {
    "model": ErrorBody,
    "description": "Several decisions you may see start with that prefix: `error.details` lists them; type more",
}
verdict_detail = _spec(VerdictDetail, 200, *_READ, 404)
timeline = _spec(Timeline, 200, *_READ, 404)
replay = _spec(Replay, 200, *_READ, 404)
spec_detail = _spec(SpecDetail, 200, *_READ, 404)
snapshot = _spec(Items, 200, *_READ, 404)


class Approval(Open):
    """An approval request with its state now, its requirements and its events (docs/approvals.md)."""

    approval_id: str
    state: Literal["pending", "approved", "rejected", "withdrawn", "expired", "consumed"]
    decision_id: str
    stage: str
    domain: str
    requirements: list[Row]
    binding_digest: str
    expires_at: str | None
    events: list[Row]


class ApprovalPage(BaseModel):
    items: list[Approval]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null on the last page")
    limit: int


approval = _spec(Approval, 200, *_READ, 404)
approvals = _spec(ApprovalPage, 200, *_READ)
approval_action = _spec(Approval, 201, *_READ, 404, 409, 413, 415, description="Recorded; the approval now")
findings = _spec(Page, 200, *_READ)
