"""The OpenID AuthZEN Authorization API 1.0: `POST /access/v1/evaluation` and `POST /access/v1/evaluations`.

A policy enforcement point that speaks AuthZEN asks Mandate as it would ask any policy decision point. Each
evaluation is a Mandate decision — mapped here, then resolved, evaluated and stored by the same path as
`POST /api/decisions` (`service.prepare`, then the group-commit writer), with the same idempotency on
(`decision_id`, `stage`), the same rejection log and the same access rules (docs/integrations.md#authzen has the
mapping table):

    subject.id                  → actor; subject.type "agent" (or subject.properties.agent) → scope.agent
    action.name                 → intent;  action.properties.stage → stage (default pre_commit)
    resource.id                 → target  (resource.type is required by AuthZEN; Mandate has no field for it)
    context.signals             → the decision's context (the spec's signals)
    context.scope               → scope attribution (service, agent, environment, system, tenant)
    context.organization_id, context.domain → attribution (organization default: the token's, else the only one)
    context.decision_id, context.time, context.unstructured_context → decision_id, timestamp, free text

The answer's `decision` is true only for ALLOW; its `context` carries the verdict, the explanation sentence, the
decision id and the verdict id (a PAUSE is resolved later under that decision id: Mandate has no approval ids yet).

Statuses follow AuthZEN: a decision — allowed or not — is 200; a request that cannot be evaluated is 400 (with
Mandate's error body, and `"verdict": "OBSERVE"` plus a rejection-log row when its attribution is missing, malformed
or unknown); 401/403 for authentication and access; 409 when the same (`decision_id`, `stage`) was sent with
another body; 503 when the database does not answer. An `X-Request-ID` header is echoed in the response.
In a batch, an evaluation that cannot be evaluated answers `{"decision": false, "context": {"error": {...}}}` in
its place, and the others are still evaluated.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mandate import service
from mandate.service import DecisionRequest, IngestError, IngestResult, Problem
from mandate.tokens import Permission, Principal
from mandate.web.access import RULES, principal
from mandate.web.errors import ApiError, JSONResponse, error_body, printable
from mandate.web.inputs import Timestamp, bounded, check_parameters, require_json, storable, text_problem
from mandate.web.state import ServerState

EVALUATION_PATH = "/access/v1/evaluation"
EVALUATIONS_PATH = "/access/v1/evaluations"
DEFAULT_STAGE = "pre_commit"  # an enforcement point asks before it acts
REQUEST_ID = "x-request-id"
MAX_EVALUATIONS = 100
MAX_UNSTRUCTURED = 32_768

# The access rules of these routes: the same permission as POST /api/decisions (web/access.py holds the rules).
RULES.update({("POST", EVALUATION_PATH): Permission.DECIDE, ("POST", EVALUATIONS_PATH): Permission.DECIDE})

router = APIRouter(dependencies=[Depends(check_parameters), Depends(require_json)])


# -- the AuthZEN request (strings bounded like POST /api/decisions' fields) --------------------------------------


class Subject(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Annotated[str, Field(min_length=1), bounded(200)]
    id: Annotated[str, Field(min_length=1), bounded(512)]
    properties: Annotated[dict[str, Any], storable("subject.properties")] = Field(default_factory=dict)


class Resource(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Annotated[str, Field(min_length=1), bounded(200)]
    id: Annotated[str, Field(min_length=1), bounded(2048)]
    properties: Annotated[dict[str, Any], storable("resource.properties")] = Field(default_factory=dict)


class Action(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, Field(min_length=1), bounded(200)]
    properties: Annotated[dict[str, Any], storable("action.properties")] = Field(default_factory=dict)


class ScopeContext(BaseModel):
    model_config = ConfigDict(extra="forbid")
    environment: Annotated[str | None, bounded(200)] = None
    service: Annotated[str | None, bounded(200)] = None
    agent: Annotated[str | None, bounded(200)] = None
    system: Annotated[str | None, bounded(200)] = None
    tenant: Annotated[str | None, bounded(200)] = None


class Context(BaseModel):
    """What Mandate reads from an AuthZEN context; other keys are refused so that nothing is silently ignored."""

    model_config = ConfigDict(extra="forbid")
    organization_id: Annotated[str | None, bounded(64)] = None
    domain: Annotated[str | None, bounded(200)] = None
    scope: ScopeContext = Field(default_factory=lambda: ScopeContext())
    signals: Annotated[dict[str, Any], storable("context.signals")] = Field(default_factory=dict)
    decision_id: uuid.UUID | None = None
    time: Timestamp | None = None
    unstructured_context: Annotated[str | None, bounded(MAX_UNSTRUCTURED)] = None


class Evaluation(BaseModel):
    """One access evaluation request (AuthZEN §6.1): subject, action and resource required, context optional."""

    model_config = ConfigDict(extra="forbid")
    subject: Subject
    action: Action
    resource: Resource
    context: Context = Field(default_factory=lambda: Context())


class Options(BaseModel):
    model_config = ConfigDict(extra="forbid")
    evaluations_semantic: Literal["execute_all", "deny_on_first_deny", "permit_on_first_permit"] = "execute_all"


class Evaluations(BaseModel):
    """A batch (AuthZEN §7.1): top-level subject/action/resource/context are defaults that an item replaces."""

    model_config = ConfigDict(extra="forbid")
    subject: dict[str, Any] | None = None
    action: dict[str, Any] | None = None
    resource: dict[str, Any] | None = None
    context: dict[str, Any] | None = None
    evaluations: Annotated[list[dict[str, Any]], Field(max_length=MAX_EVALUATIONS)] = Field(default_factory=list)
    options: Options = Field(default_factory=lambda: Options())


# -- mapping ----------------------------------------------------------------------------------------------------


class Refused(Exception):
    """An evaluation that cannot be answered with a decision: the HTTP status and Mandate's error body."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(body["error"]["message"])
        self.status = status
        self.body = body


def _invalid(problems: list[Problem]) -> Refused:
    return Refused(400, error_body("invalid_request", "the AuthZEN request is invalid; nothing was stored", problems))


def _problems(exc: ValidationError, prefix: str = "") -> list[Problem]:
    found = []
    for e in exc.errors():
        field = ".".join(str(part) for part in e.get("loc", ())) or "body"
        kind = str(e.get("type", "invalid"))
        message = "unknown field" if kind == "extra_forbidden" else str(e.get("msg", "invalid value"))
        where = printable(prefix + field, 120) or "body"
        found.append(Problem(where, kind, printable(f"{where}: {message}", 400) or ""))
    return found


def parse_evaluation(data: Any, prefix: str = "") -> Evaluation:
    try:
        return Evaluation.model_validate(data)
    except ValidationError as exc:
        raise _invalid(_problems(exc, prefix)) from None


def to_request(e: Evaluation, received_at: datetime, who: Principal, sole_organization: str | None) -> DecisionRequest:
    """The Mandate decision an AuthZEN evaluation asks for (see the module's mapping)."""
    ctx = e.context
    stage = e.action.properties.get("stage", DEFAULT_STAGE)
    if not isinstance(stage, str):
        raise _invalid([Problem("action.properties.stage", "wrong_type", "action.properties.stage must be a string")])
    scope = ctx.scope.model_dump(exclude_none=True)
    agent = e.subject.properties.get("agent")
    if agent is not None and not isinstance(agent, str):
        raise _invalid([Problem("subject.properties.agent", "wrong_type", "subject.properties.agent must be a string")])
    if "agent" not in scope and (agent is not None or e.subject.type == "agent"):
        scope["agent"] = agent if agent is not None else e.subject.id
    organization = ctx.organization_id
    if organization is None:
        organization = str(who.organization_id) if who.organization_id is not None else sole_organization
    raw = e.model_dump(mode="json")
    return DecisionRequest(
        decision_id=ctx.decision_id or uuid.uuid4(),
        organization_id=organization,
        domain=ctx.domain,
        intent=e.action.name,
        stage=stage,
        actor=e.subject.id,
        target=e.resource.id,
        context=ctx.signals,
        scope=scope,
        timestamp=ctx.time or received_at,
        unstructured_context=ctx.unstructured_context,
        raw=raw,
        token_id=who.token_id,
    )


def answer(result: IngestResult) -> dict[str, Any]:
    """The AuthZEN response: `decision` is true only for ALLOW; the context says what Mandate decided and why."""
    body = result.body()
    return {
        "decision": body["verdict"] == "ALLOW",
        "context": {
            "verdict": body["verdict"],
            "summary": body["summary"],
            "reason": body["reason"],
            "decision_id": body["decision_id"],
            "stage": body["stage"],
            "verdict_id": body["verdict_id"],
            "pause": body["pause"],
            "idempotent_replay": body["idempotent_replay"],
        },
    }


# -- evaluating ---------------------------------------------------------------------------------------------------


def _state(request: Request) -> ServerState:
    s: ServerState = request.app.state.mandate
    return s


async def _reject(request: Request, req: DecisionRequest, exc: IngestError) -> Refused:
    """§3.1 as on POST /api/decisions: record the attribution rejection, answer with verdict OBSERVE."""
    fields = {
        "decision_id": str(req.decision_id),
        "organization_id": req.organization_id,
        "domain": req.domain,
        "intent": req.intent,
        "stage": req.stage,
    }
    async with _state(request).pool.connection() as conn:
        await service.record_rejection(conn, exc, {k: printable(v) for k, v in fields.items()})
    body = error_body(exc.kind, exc.message, exc.problems)
    body.update(verdict="OBSERVE", decision_id=fields["decision_id"])
    return Refused(400, body)


def _check_access(who: Principal, req: DecisionRequest) -> None:
    """The rule POST /api/decisions applies: the decision's organization and domain must be the token's."""
    if (req.organization_id is not None and not who.sees_organization(req.organization_id)) or (
        req.domain is not None and who.domains is not None and req.domain not in who.domains
    ):
        raise Refused(
            403,
            error_body("forbidden", "this token may not use that organization or domain (or it does not exist)"),
        )


async def _prepare(request: Request, e: Evaluation, received_at: datetime) -> service.Prepared:
    s = _state(request)
    who = principal(request)
    req = to_request(e, received_at, who, s.governance.sole_organization())
    _check_access(who, req)
    try:
        return service.prepare(s.governance, req, received_at=received_at)
    except IngestError as exc:
        if exc.kind == "attribution":
            raise await _reject(request, req, exc) from None
        raise _refused(exc) from None


def _refused(exc: IngestError) -> Refused:
    status = {"invalid_signals": 400, "conflict": 409, "not_found": 404}.get(exc.kind, 400)
    body = error_body(exc.kind, exc.message, exc.problems)
    body.update(exc.body)
    return Refused(status, body)


async def _store(request: Request, prepared: service.Prepared) -> IngestResult:
    try:
        return await _state(request).writer.ingest(prepared)
    except IngestError as exc:
        raise _refused(exc) from None


def _not_migrating(request: Request) -> None:
    holder = _state(request).migration_holder
    if holder is not None:
        pid, app = holder
        raise ApiError(503, "migrating", f"a schema migration is running (pid {pid}, {app}); retry when it is done")


async def _body(request: Request) -> Any:
    raw = await request.body()
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise Refused(
            400,
            error_body(
                "malformed_body",
                "the body is not valid JSON (or is empty); nothing was stored",
                [Problem("body", "malformed_json", "the body is not valid JSON")],
            ),
        ) from None


def _headers(request: Request) -> dict[str, str]:
    """AuthZEN: a request identifier the PEP sent comes back in the same header (when it is printable text)."""
    sent = request.headers.get(REQUEST_ID)
    if sent is None or len(sent) > 256 or text_problem(sent) is not None or not sent.isprintable():
        return {}
    return {REQUEST_ID: sent}


def _as_item(exc: Refused) -> dict[str, Any]:
    error = exc.body["error"]
    extra = {k: v for k, v in exc.body.items() if k != "error"}
    return {"decision": False, "context": {"error": {"status": exc.status, **error, **extra}}}


class Answer(BaseModel):
    """An AuthZEN answer (or, for a status other than 200, the refusal): `decision` and Mandate's `context`."""

    model_config = ConfigDict(extra="allow")


DOC = {
    "response_model": None,
    "responses": {
        200: {
            "model": Answer,
            "description": "the decision (true only for ALLOW), with Mandate's verdict in `context`",
        },
        400: {"model": Answer, "description": "the request cannot be evaluated (attribution rejections: OBSERVE)"},
        403: {"model": Answer, "description": "the token may not use that organization or domain"},
        409: {"model": Answer, "description": "this (decision_id, stage) was already received with a different body"},
        503: {"model": Answer, "description": "the database did not answer; send it again (stored at most once)"},
    },
}


@router.post(EVALUATION_PATH, tags=["authzen"], **DOC)  # type: ignore[arg-type]  # FastAPI's responses mapping
async def evaluation(request: Request) -> JSONResponse:
    """AuthZEN Access Evaluation: one Mandate decision, stored exactly as `POST /api/decisions` stores it.

    Body: `{"subject": {"type", "id", "properties"}, "action": {"name", "properties": {"stage"}}, "resource":
    {"type", "id", "properties"}, "context": {"organization_id", "domain", "scope", "signals", "decision_id",
    "time", "unstructured_context"}}`. Answer: `{"decision": bool, "context": {"verdict", "summary", "decision_id",
    …}}` — `decision` is true only for ALLOW."""
    headers = _headers(request)
    received_at = datetime.now(UTC)
    try:
        _not_migrating(request)
        e = parse_evaluation(await _body(request))
        result = await _store(request, await _prepare(request, e, received_at))
    except Refused as exc:
        return JSONResponse(exc.body, status_code=exc.status, headers=headers)
    return JSONResponse(answer(result), headers=headers)


@router.post(EVALUATIONS_PATH, tags=["authzen"], **DOC)  # type: ignore[arg-type]  # FastAPI's responses mapping
async def evaluations(request: Request) -> JSONResponse:
    """AuthZEN Access Evaluations: several decisions in one request; each item replaces the top-level defaults.

    `options.evaluations_semantic`: `execute_all` (default; the decisions are stored together, in one group
    commit when they can be), `deny_on_first_deny` or `permit_on_first_permit` (evaluated in order, stopping after
    the first decision that is false, or true). Without `evaluations` (or with an empty list) the request is one
    Access Evaluation and is answered as one."""
    headers = _headers(request)
    received_at = datetime.now(UTC)
    try:
        _not_migrating(request)
        data = await _body(request)
        try:
            batch = Evaluations.model_validate(data)
        except ValidationError as exc:
            raise _invalid(_problems(exc)) from None
        defaults = {k: v for k, v in (("subject", batch.subject), ("action", batch.action),
                                      ("resource", batch.resource), ("context", batch.context)) if v is not None}  # fmt: skip
        if not batch.evaluations:
            e = parse_evaluation(defaults)
            result = await _store(request, await _prepare(request, e, received_at))
            return JSONResponse(answer(result), headers=headers)
        items = [{**defaults, **item} for item in batch.evaluations]
    except Refused as exc:
        return JSONResponse(exc.body, status_code=exc.status, headers=headers)
    semantic = batch.options.evaluations_semantic
    if semantic == "execute_all":
        answers = await _all(request, items, received_at)
    else:
        answers = await _until(request, items, received_at, stop_on=semantic == "permit_on_first_permit")
    return JSONResponse({"evaluations": answers}, headers=headers)


async def _one(request: Request, item: Mapping[str, Any], i: int, received_at: datetime) -> service.Prepared:
    return await _prepare(request, parse_evaluation(item, f"evaluations[{i}]."), received_at)


async def _all(request: Request, items: list[dict[str, Any]], received_at: datetime) -> list[dict[str, Any]]:
    """Evaluate every item, then store those that could be evaluated together (the writer batches them)."""
    answers: list[dict[str, Any] | None] = [None] * len(items)
    pending: list[tuple[int, service.Prepared]] = []
    for i, item in enumerate(items):
        try:
            pending.append((i, await _one(request, item, i, received_at)))
        except Refused as exc:
            answers[i] = _as_item(exc)
    stored = await asyncio.gather(*(_store(request, p) for _, p in pending), return_exceptions=True)
    for (i, _), outcome in zip(pending, stored, strict=True):
        if isinstance(outcome, Refused):
            answers[i] = _as_item(outcome)
        elif isinstance(outcome, BaseException):
            raise outcome
        else:
            answers[i] = answer(outcome)
    return [a for a in answers if a is not None]


async def _until(
    request: Request, items: list[dict[str, Any]], received_at: datetime, *, stop_on: bool
) -> list[dict[str, Any]]:
    """Evaluate in order and stop after the first decision equal to `stop_on` (its answer is the last one)."""
    answers = []
    for i, item in enumerate(items):
        try:
            one = answer(await _store(request, await _one(request, item, i, received_at)))
        except Refused as exc:
            one = _as_item(exc)
        answers.append(one)
        if one["decision"] is stop_on:
            break
    return answers
