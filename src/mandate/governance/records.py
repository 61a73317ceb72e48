"""Stored records ↔ evaluator models.

The database keeps governance in the original project's JSON shapes (so legacy rows need no conversion):

- spec `signals`: `[{"name", "type", "required", "source", "values"?}]`
- spec `enforcement`: `{"pause_requires": [...], "resolution_timeout_minutes": n, "default_verdict": V,
  "failure_mode": V}` (every key optional)
- snapshot `policies`: `[{"id", "name", "description", "spec_id", "scope_id", "scope"?, "conditions":
  [{"field", "operator", "value"}], "verdict"}]`
- scopes: columns `environment, scope_system, service, agent, tenant` (`scope_system` is the evaluator's `system`)

Rows the server did not write (legacy data, psql) may have any shape: every reader raises `RecordError` (a
`ValueError`) with a sentence saying what is wrong, never a `KeyError` or `AttributeError`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from functools import wraps
from typing import Any, ParamSpec, TypeVar

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
_P = ParamSpec("_P")
_T = TypeVar("_T")


class RecordError(ValueError):
    """A stored governance record that cannot be read; the message says what is wrong with it."""


def _reader(what: str) -> Callable[[Callable[_P, _T]], Callable[_P, _T]]:
    """Turn any failure of a record reader into a `RecordError` naming `what` could not be read."""

    def decorate(read: Callable[_P, _T]) -> Callable[_P, _T]:
        @wraps(read)
        def checked(*args: _P.args, **kwargs: _P.kwargs) -> _T:
            try:
                return read(*args, **kwargs)
            except RecordError:
                raise
            except KeyError as exc:
                raise RecordError(f"{what} has no {exc.args[0]!r}") from None
            except (TypeError, ValueError, AttributeError) as exc:
                raise RecordError(f"{what} cannot be read: {exc}") from None

        return checked

    return decorate


def _text(r: Record, key: str) -> str:
    value = r[key]
    if not isinstance(value, str | int) or isinstance(value, bool) or value == "":
        raise RecordError(f"{key} must be a non-empty string, not {value!r}")
    return str(value)


@_reader("a signal declaration")
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


@_reader("the enforcement")
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


@_reader("the spec")
def spec_from_record(r: Record) -> Spec:
    """A spec from a `mandate_specs` row (or the same keys from a bundle)."""
    if not isinstance(r["signals"], list):
        raise RecordError(f"signals must be a list, not {type(r['signals']).__name__}")
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


@_reader("the scope")
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


@_reader("the policy")
def policy_from_record(r: Record) -> Policy:
    """A policy from a snapshot's JSON; conditions name their signal as `field` (legacy) or `signal`."""
    if not isinstance(r, Mapping):
        raise RecordError(f"a policy must be an object, not {type(r).__name__}")
    conditions = r.get("conditions") or ()
    if not isinstance(conditions, list | tuple):
        raise RecordError(f"conditions must be a list, not {type(conditions).__name__}")
    return Policy(
        policy_id=_text(r, "id"),
        spec_id=_text(r, "spec_id"),
        scope_id=_text(r, "scope_id"),
        verdict=_text(r, "verdict"),
        conditions=tuple(_condition(c, i) for i, c in enumerate(conditions)),
        name=r.get("name"),
        description=r.get("description"),
    )


def _condition(c: Any, i: int) -> Condition:
    if not isinstance(c, Mapping):
        raise RecordError(f"conditions[{i}] must be an object, not {type(c).__name__}")
    signal = c.get("field", c.get("signal"))
    if not isinstance(signal, str) or not signal:
        raise RecordError(f"conditions[{i}] names no signal (field)")
    if not isinstance(c.get("operator"), str):
        raise RecordError(f"conditions[{i}] has no operator")
    return Condition(signal, c["operator"], c.get("value"))


def policy_spec_id(r: Any) -> str | None:
    """The spec a policy record names, if it names one as text (even when the rest cannot be read)."""
    spec_id = r.get("spec_id") if isinstance(r, Mapping) else None
    return spec_id if isinstance(spec_id, str) and spec_id else None


def policy_label(r: Any, i: int) -> str:
    """How to name a policy record in a report: its id, else its position."""
    policy_id = r.get("id") if isinstance(r, Mapping) else None
    return str(policy_id) if isinstance(policy_id, str | int) and policy_id != "" else f"policies[{i}]"


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
    """Every policy of a snapshot, or `RecordError` at the first that cannot be read."""
    if not isinstance(records, list | tuple):
        raise RecordError(f"policies must be a list, not {type(records).__name__}")
    return tuple(policy_from_record(r) for r in records)
