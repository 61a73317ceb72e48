"""Use cases: ingest a decision (resolve → validate → evaluate → append, in one statement), record an outcome,
replay a stored decision.

The ingestion path reads governance from the in-memory cache and writes the decision, its verdict and its two
timeline entries with ONE SQL statement (data-modifying CTEs), which PostgreSQL runs atomically: one database
round trip per decision, and never a decision without its verdict.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson
import psycopg
from psycopg import AsyncConnection
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from mandate.approvals import binding as bindings
from mandate.approvals import resume
from mandate.approvals.state import IMPLICIT_REQUIREMENT, Approval
from mandate.db import approvals as approval_queries
from mandate.db import decisions, writes
from mandate.db import governance as governance_queries
from mandate.errors import MandateError
from mandate.evaluator import (
    SELECTORS,
    Decision,
    Evaluation,
    GapCode,
    ScopeIndex,
    Spec,
    evaluate,
    flips,
    governance_gap,
    validate_signals,
)
from mandate.governance.cache import DomainGovernance, Governance, load_row
from mandate.governance.records import signal_to_record
from mandate.observe import ObserveResult, extract
from mandate.vocabulary import STAGES, Row

_SEVERITY = {"ALLOW": "info", "OBSERVE": "info", "PAUSE": "warning", "BLOCK": "critical"}
_UUID_CHARS = frozenset("0123456789abcdefABCDEF-")
_SLUG_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_-")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a request: the field (dotted path), a code and a sentence."""

    field: str
    code: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"field": self.field, "code": self.code, "message": self.message}


class IngestError(MandateError):
    """A request that is not stored as a decision. `kind` tells the web layer how to answer."""

    def __init__(self, kind: str, message: str, problems: list[Problem] | None = None, body: Row | None = None):
        super().__init__(message)
        self.kind = kind  # attribution | invalid_signals | conflict | not_found
        self.message = message
        self.problems = problems or []
        self.body = body or {}


ATTRIBUTION_FIELDS = ("decision_id", "organization_id", "domain", "intent", "stage")


async def record_rejection(conn: AsyncConnection[Row], exc: IngestError, fields: Mapping[str, str | None]) -> None:
    """Append an attribution rejection (§3.1) to `mandate.decision_rejections`. `fields` (ATTRIBUTION_FIELDS) are
    what the client sent, rendered safe to store: no NUL, no lone surrogate."""
    problems = [p.to_dict() for p in exc.problems]
    await writes.insert_rejection(conn, exc.message, problems, [fields.get(name) for name in ATTRIBUTION_FIELDS])


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
        return {name: _str_or_none(self.scope.get(name)) for name in SELECTORS}


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


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


def check_attribution(req: DecisionRequest, governance: Governance) -> DomainGovernance:
    """§3 step 1: organization, domain, intent and stage present, well-formed and known — or IngestError."""
    problems: list[Problem] = []
    org, domain = req.organization_id, req.domain
    if not org:
        problems.append(Problem("organization_id", "missing", "organization_id is required"))
    elif len(org) != 36 or not _UUID_CHARS.issuperset(org) or not _is_uuid(org):
        problems.append(Problem("organization_id", "malformed", "organization_id must be a UUID"))
    if not domain:
        problems.append(Problem("domain", "missing", "domain (or domain_name) is required"))
    elif not _SLUG_CHARS.issuperset(domain):
        problems.append(Problem("domain", "malformed", "domain must be a slug: lower-case letters, digits, _ and -"))
    if not req.intent:
        problems.append(Problem("intent", "missing", "intent is required"))
    if not req.stage:
        problems.append(Problem("stage", "missing", "stage is required"))
    elif req.stage not in STAGES:
        problems.append(Problem("stage", "unknown", f"stage must be one of {', '.join(STAGES)}"))
    if not problems:
        assert org is not None and domain is not None
        org = org.lower()
        if org not in governance.organizations:
            problems.append(Problem("organization_id", "unknown", f"organization {org} does not exist"))
        else:
            d = governance.domain(org, domain)
            if d is not None:
                return d
            problems.append(Problem("domain", "unknown", f"domain {domain} does not exist in organization {org}"))
    raise IngestError("attribution", "decision attribution is missing, malformed or unknown", problems)


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


_signal_records: dict[tuple[str, str], tuple[dict[str, Any], ...]] = {}


def _observe(spec: Spec, req: DecisionRequest) -> ObserveResult | None:
    if not req.unstructured_context:
        return None
    key = (spec.spec_id, spec.version)
    records = _signal_records.get(key)
    if records is None:
        records = _signal_records[key] = tuple(signal_to_record(s) for s in spec.signals)
    return extract(req.unstructured_context, records, req.context)


def decide(req: DecisionRequest, d: DomainGovernance) -> tuple[Evaluation, Decision, ObserveResult | None]:
    """§3 steps 2–10 on cached governance. Raises IngestError('invalid_signals') when signals are invalid."""
    assert req.intent is not None and req.stage is not None
    decision = Decision(
        d.organization_id, d.domain, req.intent, req.stage, req.context, req.attribution(), in_utc(req.timestamp)
    )
    spec = d.active_specs.get((req.intent, req.stage))
    if spec is None:
        return governance_gap(decision, GapCode.NO_ACTIVE_SPEC), decision, None
    observed = _observe(spec, req)
    if observed is not None and observed.values:
        decision = Decision(
            decision.organization_id,
            decision.domain,
            decision.intent,
            decision.stage,
            {**req.context, **observed.values},
            decision.attribution,
            decision.timestamp,
        )
    problems = validate_signals(spec, decision)
    if problems:
        raise IngestError(
            "invalid_signals",
            f"{len(problems)} signal problem(s) against spec {spec.spec_id}@{spec.version}; nothing was stored",
            [Problem(f"context.{p.signal}", p.code, p.message) for p in problems],
        )
    resolution = d.scope_index.resolve(decision)
    if resolution is None:
        return governance_gap(decision, GapCode.NO_SCOPE, spec=spec), decision, observed
    return evaluate(decision, spec, resolution, d.snapshot), decision, observed


def explanation_dict(evaluation: Evaluation, observed: ObserveResult | None) -> dict[str, Any]:
    e = evaluation.to_dict()
    e["observe"] = None if observed is None else observed.to_dict()
    return e


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


async def approval_facts(conn: AsyncConnection[Row], req: DecisionRequest) -> ApprovalFacts:
    gate = None
    implicit: Approval | None = None
    if req.stage == "executed":
        earlier = [r for r in await approval_queries.earlier_stages(conn, req.decision_id) if r["stage"] != "executed"]
        gate = earlier[-1] if earlier else None
        if gate is not None and gate["verdict"] == "PAUSE" and req.approval_id is None:
            implicit = await approval_queries.get(conn, gate["verdict_id"])
    if req.approval_id is not None:
        found = await approval_queries.get(conn, req.approval_id)
        same_domain = found is not None and (
            str(found.request["organization_id"]) == str(req.organization_id).lower()
            and found.request["domain"] == req.domain
        )
        return ApprovalFacts(req.approval_id, found if same_domain else None, gate)
    if implicit is not None:
        return ApprovalFacts(implicit.approval_id, implicit, gate)
    return ApprovalFacts(None, None, gate)


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
        attribution={name: _str_or_none(row["scope"].get(name)) for name in SELECTORS},
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


def _approval_work(
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
        approvals = _approval_work(req, d, evaluation, decision, explanation, facts)
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
        "received_details": Jsonb(
            {
                "request_hash": request_hash,
                "observe_phase": observed is not None,
                **({} if req.token_id is None else {"token_id": str(req.token_id)}),
                **({} if req.approval_id is None else {"approval_id": str(req.approval_id)}),
            }
        ),
        "evaluated_summary": explanation["summary"],
        "evaluated_details": Jsonb(
            {
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
        ),
        "severity": _SEVERITY[verdict],
        **extra,
    }
    return Prepared(req, params, verdict_id, explanation, request_hash, statement)


class Writer(Protocol):
    """What stores a prepared decision (the group-commit writer)."""

    async def ingest(self, prepared: Prepared) -> IngestResult: ...


async def submit(
    governance: Governance,
    req: DecisionRequest,
    pool: AsyncConnectionPool[AsyncConnection[Row]],
    writer: Writer,
    *,
    received_at: datetime,
) -> IngestResult:
    """Prepare and store `req`. A stage approvals concern reads their facts first; when a concurrent resume consumed
    the same approval between that read and the write (the consumption's primary key refused this one, and nothing
    of it was stored), it is decided again on the facts as they are now — once."""
    for attempt in (1, 2):
        facts = None
        if concerns_approvals(req):
            async with pool.connection() as conn:
                facts = await approval_facts(conn, req)
        prepared = prepare(governance, req, received_at=received_at, facts=facts)
        try:
            return await writer.ingest(prepared)
        except psycopg.errors.UniqueViolation as exc:
            if attempt == 2 or exc.diag.constraint_name != "approval_consumptions_pkey":
                raise
    raise AssertionError("unreachable")


async def existing(conn: AsyncConnection[Row], prepared: Prepared) -> IngestResult:
    """The answer when the decision stage was already stored: the stored verdict for an identical re-send,
    IngestError "conflict" for a different body."""
    req = prepared.req
    assert req.stage is not None
    stored = await decisions.stored_answer(conn, req.decision_id, req.stage)
    if stored is None or stored["request_hash"] != prepared.request_hash:
        raise IngestError(
            "conflict",
            f"decision {req.decision_id} at stage {req.stage} was already received with a different body; "
            "a decision stage is immutable — use a new decision_id or another stage",
        )
    return IngestResult(req.decision_id, req.stage, stored["verdict_id"], stored["explanation"], created=False)


async def record_outcome(
    conn: AsyncConnection[Row], decision_id: uuid.UUID, stage: str | None, outcome: str, details: Mapping[str, Any]
) -> Row:
    """Append an `outcome reported` timeline entry to a decision's stage (the latest stage when not given)."""
    row = await writes.insert_outcome(conn, decision_id, stage, outcome, details)
    if row is None:
        where = f" at stage {stage}" if stage else ""
        raise IngestError("not_found", f"decision {decision_id}{where} does not exist")
    return row


@dataclass
class Replay:
    """One stage of a stored decision, evaluated again from what was stored (MANDATE.md §3a).

    `replayable` is False for history that no evaluator of ours decided (legacy rows without a stored explanation,
    or whose spec version no longer exists): `reason` says why, and nothing is compared.
    """

    decision_id: str
    stage: str
    replayable: bool
    identical: bool
    verdict_identical: bool
    stored_verdict: str
    replayed_verdict: str | None
    stored_summary: str | None
    replayed_summary: str | None
    differences: list[str]
    reason: str | None = None

    def to_dict(self) -> Row:
        return self.__dict__.copy()


async def replay(conn: AsyncConnection[Row], governance: Governance, decision_id: uuid.UUID) -> list[Replay]:
    """Re-evaluate every stage of a stored decision with its stored spec version, signals, snapshot and scopes."""
    rows = await decisions.stages_to_replay(conn, decision_id)
    if not rows:
        raise IngestError("not_found", f"decision {decision_id} does not exist")
    snapshots: dict[str, Row | None] = {}
    results = []
    for r in rows:
        snapshot_id = r["snapshot_id"]
        if snapshot_id is not None and snapshot_id not in snapshots:
            snapshots[snapshot_id] = await governance_queries.get_snapshot(conn, snapshot_id)
        results.append(replay_stage(governance, r, snapshots.get(snapshot_id) if snapshot_id else None))
    return results


def replay_stage(governance: Governance, r: Row, snapshot_row: Row | None) -> Replay:
    """Replay one stored stage `r` (a `stages_to_replay` row) against `snapshot_row`, its stored snapshot.

    Everything comes from what was stored: the spec version, the signal values (with what the Observe phase
    filled), the snapshot compiled for this spec only, and the scopes the stored explanation names as holding
    authority (scopes are immutable and never deleted, so their ids identify them exactly; a scope that matched
    the decision is always among them). Nothing is reconstructed from wall-clock times.
    """
    stored = r["explanation"]

    def not_replayable(reason: str) -> Replay:
        return Replay(str(r["decision_id"]), r["stage"], False, False, False, r["verdict"], None,
                      (stored or {}).get("summary"), None, [], reason)  # fmt: skip

    if not isinstance(stored, dict):
        return not_replayable("decided before verdicts stored their explanation (no evaluator of ours decided it)")
    d = governance.domain(r["organization_id"], r["domain"])
    spec = governance.specs.get((r["spec_id"], r["spec_version"])) if r["spec_id"] else None
    if r["spec_id"] and spec is None:
        return not_replayable(f"spec {r['spec_id']}@{r['spec_version']} cannot be found or read")
    if d is None:
        return not_replayable(f"domain {r['organization_id']}/{r['domain']} cannot be found")
    observed = stored.get("observe") or {}
    context = {**r["context"], **observed.get("values", {})}
    attribution = {name: _str_or_none(r["scope"].get(name)) for name in SELECTORS}
    decision = Decision(
        r["organization_id"], r["domain"], r["intent"], r["stage"], context, attribution, in_utc(r["timestamp"])
    )
    evaluation: Evaluation
    if spec is None:
        evaluation = governance_gap(decision, GapCode.NO_ACTIVE_SPEC)
    else:
        held = _scopes_held(stored)
        resolution = ScopeIndex(s for s in d.scopes if s.scope_id in held).resolve(decision)
        if resolution is None:
            evaluation = governance_gap(decision, GapCode.NO_SCOPE, spec=spec)
        else:
            snapshot = None if snapshot_row is None else load_row(snapshot_row, [spec], d.scopes).snapshot
            evaluation = evaluate(decision, spec, resolution, snapshot)
    replayed = explanation_dict(evaluation, None)
    replayed["observe"] = stored.get("observe")
    replayed = resume.reapply(replayed, stored)  # a resume: the approval's recorded outcome, applied the same way
    differences = sorted(k for k in set(replayed) | set(stored) if stored.get(k) != replayed.get(k))
    return Replay(
        decision_id=str(r["decision_id"]),
        stage=r["stage"],
        replayable=True,
        identical=not differences,
        verdict_identical=r["verdict"] == evaluation.verdict.value,
        stored_verdict=r["verdict"],
        replayed_verdict=evaluation.verdict.value,
        stored_summary=stored.get("summary"),
        replayed_summary=replayed["summary"],
        differences=differences,
    )


def stored_flips(governance: Governance, verdict: Row) -> list[dict[str, object]]:
    """What would flip a stored verdict (a `verdict_events` row with its explanation): the smallest signal changes
    that give another verdict, from the stored explanation and the spec version it was decided under. Empty for
    legacy verdicts (no explanation), gaps, errors, or a spec version that can no longer be read."""
    explanation = verdict.get("explanation")
    spec = governance.specs.get((str(verdict.get("spec_id")), str(verdict.get("spec_version"))))
    if not isinstance(explanation, dict) or spec is None or explanation.get("approval") is not None:
        return []  # a resume's verdict is the approval's outcome: signal changes alone do not flip it
    found = flips(explanation, spec.enforcement.default_verdict, spec.signals)
    return [flip.to_dict(explanation["verdict"]) for flip in found]


def _scopes_held(explanation: Mapping[str, Any]) -> set[str]:
    """The scopes a stored explanation names as holding authority: the recorded one, the tied ones, the ancestors."""
    scope = explanation.get("scope") or {}
    if not scope.get("scope_id"):
        return set()
    return {scope["scope_id"], *(scope.get("tied_with") or ()), *(scope.get("ancestors") or ())}
