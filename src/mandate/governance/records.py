"""Stored records ↔ evaluator models.

The database keeps governance in the original project's JSON shapes (so legacy rows need no conversion):

- spec `signals`: `[{"name", "type", "required", "source", "values"?}]`
- spec `enforcement`: `{"pause_requires": [...], "resolution_timeout_minutes": n, "default_verdict": V,
  "failure_mode": V}` (every key optional)
- snapshot `policies`: `[{"id", "name", "description", "spec_id", "scope_id", "scope"?, "conditions":
  [{"field", "operator", "value"}], "verdict"}]`
- scopes: columns `environment, scope_system, service, agent, tenant` (`scope_system` is the evaluator's `system`)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from mandate.evaluator import (
    Condition,
    Enforcement,
    Policy,
    Scope,
    SignalDef,
    SignalSource,
    SignalType,
    Spec,
    Verdict,
)

Record = Mapping[str, Any]


def signal_from_record(r: Record) -> SignalDef:
    return SignalDef(
        name=str(r["name"]),
        type=SignalType(r["type"]),
        required=bool(r.get("required", False)),
        source=SignalSource(r.get("source") or "context"),
        values=tuple(str(v) for v in r.get("values") or ()),
    )


def signal_to_record(s: SignalDef) -> dict[str, Any]:
    record: dict[str, Any] = {"name": s.name, "type": s.type.value, "required": s.required, "source": s.source.value}
    if s.values:
        record["values"] = list(s.values)
    return record


def enforcement_from_record(r: Record) -> Enforcement:
    timeout = r.get("resolution_timeout_minutes")
    return Enforcement(
        pause_requires=tuple(str(x) for x in r.get("pause_requires") or ()),
        resolution_timeout_minutes=None if timeout is None else int(timeout),
        default_verdict=Verdict(r.get("default_verdict") or "OBSERVE"),
        failure_mode=Verdict(r.get("failure_mode") or "OBSERVE"),
    )


def enforcement_to_record(e: Enforcement) -> dict[str, Any]:
    record: dict[str, Any] = {
        "pause_requires": list(e.pause_requires),
        "default_verdict": e.default_verdict.value,
        "failure_mode": e.failure_mode.value,
    }
    if e.resolution_timeout_minutes is not None:
        record["resolution_timeout_minutes"] = e.resolution_timeout_minutes
    return record


def spec_from_record(r: Record) -> Spec:
    """A spec from a `mandate_specs` row (or the same keys from a bundle)."""
    return Spec(
        spec_id=str(r["spec_id"]),
        version=str(r["version"]),
        organization_id=str(r["organization_id"]),
        domain=str(r["domain"]),
        intent=str(r["intent"]),
        stage=str(r["stage"]),
        signals=tuple(signal_from_record(s) for s in r["signals"]),
        allowed_verdicts=frozenset(Verdict(v) for v in r["allowed_verdicts"]),
        enforcement=enforcement_from_record(r.get("enforcement") or {}),
    )


def scope_from_record(r: Record) -> Scope:
    """A scope from a `scopes` row (`scope_system`) or a bundle/API record (`system`)."""
    return Scope(
        scope_id=str(r["scope_id"]),
        organization_id=str(r["organization_id"]),
        domain=str(r["domain"]),
        owning_team=r.get("owning_team"),
        environment=r.get("environment"),
        service=r.get("service"),
        agent=r.get("agent"),
        system=r.get("scope_system", r.get("system")),
        tenant=r.get("tenant"),
    )


def policy_from_record(r: Record) -> Policy:
    """A policy from a snapshot's JSON; conditions name their signal as `field` (legacy) or `signal`."""
    return Policy(
        policy_id=str(r["id"]),
        spec_id=str(r["spec_id"]),
        scope_id=str(r["scope_id"]),
        verdict=str(r["verdict"]),
        conditions=tuple(
            Condition(str(c.get("field", c.get("signal"))), str(c["operator"]), c.get("value"))
            for c in r.get("conditions") or ()
        ),
        name=r.get("name"),
        description=r.get("description"),
    )


def policy_to_record(p: Policy, scope: Scope | None = None) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": p.policy_id,
        "name": p.name,
        "description": p.description,
        "spec_id": p.spec_id,
        "scope_id": p.scope_id,
        "conditions": [{"field": c.signal, "operator": c.operator, "value": c.value} for c in p.conditions],
        "verdict": p.verdict,
    }
    if scope is not None:
        record["scope"] = {"domain": scope.domain, **scope.selectors}
    return record


def policies_from_records(records: Iterable[Record]) -> tuple[Policy, ...]:
    return tuple(policy_from_record(r) for r in records)
