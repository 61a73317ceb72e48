"""§3 of MANDATE.md on cached governance: who the decision is attributed to, then what is decided and why."""

from __future__ import annotations

import uuid
from typing import Any

from mandate.errors import IngestError, Problem
from mandate.evaluator import Decision, Evaluation, GapCode, Spec, evaluate, flips, governance_gap, validate_signals
from mandate.governance.cache import DomainGovernance, Governance
from mandate.governance.records import signal_to_record
from mandate.observe import ObserveResult, extract
from mandate.service.request import DecisionRequest, in_utc
from mandate.vocabulary import STAGES, Row, is_slug

_UUID_CHARS = frozenset("0123456789abcdefABCDEF-")


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
    elif not is_slug(domain):
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
