"""What an approval is bound to: the action (who acts, on what, with which signal values, attributed where), as
canonical JSON, and its SHA-256. Two actions with equal digests are the same action; `differences` names what
changed between two bindings. Pure."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import orjson

BINDING_FIELDS = ("organization_id", "domain", "intent", "actor", "target", "signals", "attribution")


def binding(
    *,
    organization_id: str,
    domain: str,
    intent: str,
    actor: str,
    target: str,
    signals: Mapping[str, Any],
    attribution: Mapping[str, str | None],
) -> dict[str, Any]:
    """The action as a plain dict: the signal values the evaluator saw (sent and filled by the Observe phase) and the
    scope attribution's non-null selectors."""
    return {
        "organization_id": str(organization_id).lower(),
        "domain": domain,
        "intent": intent,
        "actor": actor,
        "target": target,
        "signals": dict(signals),
        "attribution": {k: v for k, v in attribution.items() if v is not None},
    }


def digest(bound: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the binding's canonical JSON: keys sorted, no spaces, UTF-8."""
    return hashlib.sha256(orjson.dumps(bound, option=orjson.OPT_SORT_KEYS)).hexdigest()


def differences(approved: Mapping[str, Any], now: Mapping[str, Any]) -> list[str]:
    """What differs between the approved action and this one, one sentence each: `signals.amount: 82000 → 820000`."""
    found: list[str] = []
    for name in BINDING_FIELDS:
        a, b = approved.get(name), now.get(name)
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            for key in sorted(set(a) | set(b)):
                if key not in b:
                    found.append(f"{name}.{key}: {_show(a[key])} → (absent)")
                elif key not in a:
                    found.append(f"{name}.{key}: (absent) → {_show(b[key])}")
                elif _canonical(a[key]) != _canonical(b[key]):
                    found.append(f"{name}.{key}: {_show(a[key])} → {_show(b[key])}")
        elif _canonical(a) != _canonical(b):
            found.append(f"{name}: {_show(a)} → {_show(b)}")
    return found


def _canonical(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def _show(value: Any) -> str:
    text = _canonical(value).decode()
    return text if len(text) <= 80 else text[:77] + "…"
