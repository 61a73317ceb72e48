"""Governance data for evaluator tests, built from plain dicts (the shape of the YAML case files)."""

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from mandate.evaluator import (
    Condition,
    Decision,
    Enforcement,
    Policy,
    Scope,
    SignalDef,
    SignalSource,
    SignalType,
    Spec,
    Verdict,
)

ORG = "550e8400-e29b-41d4-a716-446655440000"
DOMAIN = "finance"
TIMESTAMP = "2025-06-01T12:00:00+00:00"
ALL_VERDICTS = ("ALLOW", "PAUSE", "BLOCK", "OBSERVE")


def spec(data: Mapping[str, Any], org: str = ORG, domain: str = DOMAIN) -> Spec:
    enforcement = data.get("enforcement") or {}
    return Spec(
        spec_id=data["spec_id"],
        version=str(data.get("version", "1")),
        organization_id=data.get("organization_id", org),
        domain=data.get("domain", domain),
        intent=data["intent"],
        stage=data.get("stage", "pre_commit"),
        signals=tuple(signal(s) for s in data.get("signals", ())),
        allowed_verdicts=frozenset(Verdict(v) for v in data.get("allowed_verdicts", ALL_VERDICTS)),
        enforcement=Enforcement(
            pause_requires=tuple(enforcement.get("pause_requires", ())),
            resolution_timeout_minutes=enforcement.get("resolution_timeout_minutes"),
            default_verdict=Verdict(enforcement.get("default_verdict", "OBSERVE")),
            failure_mode=Verdict(enforcement.get("failure_mode", "OBSERVE")),
        ),
    )


def signal(data: Mapping[str, Any]) -> SignalDef:
    return SignalDef(
        name=data["name"],
        type=SignalType(data["type"]),
        required=data.get("required", False),
        source=SignalSource(data.get("source", "context")),
        values=tuple(data.get("values", ())),
    )


def scope(data: Mapping[str, Any], org: str = ORG, domain: str = DOMAIN) -> Scope:
    fields = {k: v for k, v in data.items() if k not in {"organization_id", "domain"}}
    return Scope(organization_id=data.get("organization_id", org), domain=data.get("domain", domain), **fields)


def policy(data: Mapping[str, Any]) -> Policy:
    return Policy(
        policy_id=data["policy_id"],
        spec_id=data["spec_id"],
        scope_id=data["scope_id"],
        verdict=data["verdict"],
        conditions=tuple(Condition(c["signal"], c["operator"], c.get("value")) for c in data.get("conditions") or ()),
        name=data.get("name"),
        description=data.get("description"),
    )


def decision(data: Mapping[str, Any], org: str = ORG, domain: str = DOMAIN) -> Decision:
    return Decision(
        organization_id=data.get("organization_id", org),
        domain=data.get("domain", domain),
        intent=data["intent"],
        stage=data.get("stage", "pre_commit"),
        context=dict(data.get("context") or {}),
        attribution=dict(data.get("scope") or {}),
        timestamp=datetime.fromisoformat(data.get("timestamp", TIMESTAMP)),
    )


# A small world for the Python-level tests: one payment spec, one agent scope, policies on demand.

PAYER = Scope(
    scope_id="finance.prod.billing.payer",
    organization_id=ORG,
    domain=DOMAIN,
    owning_team="payments-team",
    environment="prod",
    service="billing",
    agent="payer",
)
ATTRIBUTION = {"environment": "prod", "service": "billing", "agent": "payer"}


def payment_spec(
    *, version: str = "1", domain: str = DOMAIN, allowed: tuple[str, ...] = ALL_VERDICTS, **enforcement: Any
) -> Spec:
    return spec(
        {
            "spec_id": "spec-payment-v1",
            "version": version,
            "domain": domain,
            "intent": "payment.create",
            "signals": [
                {"name": "amount", "type": "number"},
                {"name": "currency", "type": "string"},
                {"name": "risk", "type": "enum", "values": ["low", "medium", "high", "critical"]},
                {"name": "approved", "type": "boolean"},
            ],
            "allowed_verdicts": allowed,
            "enforcement": {"pause_requires": ["finance-approval"], "resolution_timeout_minutes": 30, **enforcement},
        }
    )


def payment_policy(policy_id: str, verdict: str, *conditions: tuple[str, str, object]) -> Policy:
    return Policy(policy_id, "spec-payment-v1", PAYER.scope_id, verdict, tuple(Condition(*c) for c in conditions))


def payment_decision(context: Mapping[str, object], **changes: Any) -> Decision:
    fields: dict[str, Any] = {
        "organization_id": ORG,
        "domain": DOMAIN,
        "intent": "payment.create",
        "stage": "pre_commit",
        "context": context,
        "attribution": ATTRIBUTION,
        "timestamp": datetime.fromisoformat(TIMESTAMP),
        **changes,
    }
    return Decision(**fields)
