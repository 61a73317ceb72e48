"""Loading stored governance is total (MANDATE.md §3a): any row is used or reported, never an exception.

The loader (`cache.build`, what `cache.load` does with the rows it read) is fed random malformed JSON where
policies, signals and enforcement live. Whatever it gets, it returns governance and a report; the evaluation of a
sound spec that no malformed row names is unchanged, byte for byte.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mandate.governance import cache
from mandate.service import DecisionRequest, decide

ORG = "7d1f3c52-4b8e-4f0a-9c61-2e5d8a9b0c13"
DOMAIN = "payments"
SOUND_SPEC = {
    "spec_id": "spec-sound",
    "version": "1",
    "organization_id": ORG,
    "domain": DOMAIN,
    "intent": "transfer.create",
    "stage": "pre_commit",
    "allowed_verdicts": ["ALLOW", "PAUSE", "BLOCK", "OBSERVE"],
    "signals": [{"name": "amount", "type": "number", "required": True}],
    "enforcement": {"default_verdict": "ALLOW", "failure_mode": "BLOCK"},
    "current_status": "active",
}
SCOPE = {
    "scope_id": "payments.prod",
    "organization_id": ORG,
    "domain": DOMAIN,
    "environment": "prod",
    "scope_system": None,
    "service": None,
    "agent": None,
    "tenant": None,
    "owning_team": "payments-ops",
}
SOUND_POLICIES = [
    {"id": "p-pause", "spec_id": "spec-sound", "scope_id": "payments.prod", "verdict": "PAUSE",
     "conditions": [{"field": "amount", "operator": ">", "value": 100}]},
    {"id": "p-block", "spec_id": "spec-sound", "scope_id": "payments.prod", "verdict": "BLOCK",
     "conditions": [{"field": "amount", "operator": ">", "value": 10000}]},
]  # fmt: skip

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=12,
)
KEYS = ["id", "spec_id", "scope_id", "verdict", "conditions", "field", "signal", "operator", "value", "name"]
policy_like = st.dictionaries(st.sampled_from(KEYS), json_values, max_size=6) | json_values
# A malformed policy may name any spec but the sound one (that one it would legitimately break).
malformed_policy = policy_like.map(
    lambda p: {**p, "spec_id": "spec-other"} if isinstance(p, dict) and p.get("spec_id") == "spec-sound" else p
)
malformed_spec = st.fixed_dictionaries(
    {
        "spec_id": st.sampled_from(["spec-x", "spec-y"]),
        "version": st.sampled_from(["1", "2"]),
        "organization_id": st.just(ORG),
        "domain": st.just(DOMAIN),
        "intent": st.sampled_from(["refund.create", "payout.create"]),
        "stage": st.just("pre_commit"),
        "allowed_verdicts": st.lists(st.sampled_from(["ALLOW", "PAUSE", "BLOCK", "OBSERVE", "DENY"]), max_size=3),
        "signals": json_values,
        "enforcement": json_values,
        "current_status": st.sampled_from(["active", "draft"]),
    }
)


def rows(specs: list[dict[str, Any]], policies: list[Any]) -> cache.Governance:
    return cache.build(
        [{"id": ORG}],
        [{"organization_id": ORG, "domain": DOMAIN}],
        [SCOPE],
        specs,
        [{"snapshot_id": "0b9e6a3c-1f2d-4e5a-8b7c-9d0e1f2a3b4c", "version": 3, "organization_id": ORG,
          "domain": DOMAIN, "policies": policies}],
    )  # fmt: skip


def verdicts(governance: cache.Governance) -> list[str]:
    """The sound spec's explanations for a few amounts, as stored (JSON)."""
    d = governance.domain(ORG, DOMAIN)
    assert d is not None
    answers = []
    for amount in (5, 500, 50000):
        request = DecisionRequest(
            decision_id=uuid.UUID(int=amount),
            organization_id=ORG,
            domain=DOMAIN,
            intent="transfer.create",
            stage="pre_commit",
            actor="agent",
            target="account",
            context={"amount": amount},
            scope={"environment": "prod"},
            timestamp=datetime(2026, 1, 1, tzinfo=UTC),
        )
        evaluation, _, _ = decide(request, d)
        answers.append(json.dumps(evaluation.to_dict(), sort_keys=True))
    return answers


BASELINE = verdicts(rows([SOUND_SPEC], SOUND_POLICIES))


def test_the_baseline_is_what_the_sound_policies_decide() -> None:
    assert [json.loads(v)["verdict"] for v in BASELINE] == ["ALLOW", "PAUSE", "BLOCK"]
    assert rows([SOUND_SPEC], SOUND_POLICIES).warnings == []


@settings(max_examples=300, deadline=None, database=None, derandomize=True)
@given(policies=st.lists(policy_like, max_size=6))
def test_any_policy_json_is_loaded_or_reported_never_raised(policies: list[Any]) -> None:
    governance = rows([SOUND_SPEC], policies)

    d = governance.domain(ORG, DOMAIN)
    assert d is not None and d.snapshot is not None
    readable = {p.policy_id for p in d.snapshot.policies}
    # Every record either became a policy or is reported, by id or position.
    for i, record in enumerate(policies):
        named = record.get("id") if isinstance(record, dict) else None
        label = str(named) if isinstance(named, str | int) and named != "" else f"policies[{i}]"
        assert label in readable or any(label in w.subject for w in governance.warnings), (record, governance.warnings)
    for warning in governance.warnings:
        assert warning.message and warning.code and str(warning)


@settings(
    max_examples=200, deadline=None, database=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
@given(junk=st.lists(malformed_policy, max_size=5), specs=st.lists(malformed_spec, max_size=3))
def test_malformed_rows_never_change_the_verdicts_of_a_spec_they_do_not_name(
    junk: list[Any], specs: list[dict[str, Any]]
) -> None:
    governance = rows([SOUND_SPEC, *specs], [*SOUND_POLICIES, *junk])

    assert verdicts(governance) == BASELINE


def test_a_broken_policy_of_the_spec_sends_it_to_its_failure_mode_and_is_reported() -> None:
    broken = {"id": "p-broken", "spec_id": "spec-sound", "scope_id": "payments.prod", "verdict": "ALLOW"}
    governance = rows([SOUND_SPEC], [*SOUND_POLICIES, {**broken, "conditions": [{"field": "amount"}]}])

    assert [json.loads(v)["verdict"] for v in verdicts(governance)] == ["BLOCK", "BLOCK", "BLOCK"]
    assert [(w.code, w.subject.split(" ")[1]) for w in governance.warnings] == [("unreadable_policy", "p-broken")]
    assert "failure mode" in governance.warnings[0].message


def test_an_unreadable_spec_is_reported_and_its_intent_has_no_active_spec() -> None:
    unreadable = {**SOUND_SPEC, "signals": [{"name": "amount", "type": "integer"}]}
    governance = rows([unreadable], [])

    d = governance.domain(ORG, DOMAIN)
    assert d is not None and d.active_specs == {}
    assert [w.code for w in governance.warnings] == ["unreadable_spec"]
    assert "no active spec" in governance.warnings[0].message


def test_a_domains_fingerprint_changes_with_what_decides_its_evaluations() -> None:
    same = rows([SOUND_SPEC], SOUND_POLICIES).domain(ORG, DOMAIN)
    again = rows([SOUND_SPEC], SOUND_POLICIES).domain(ORG, DOMAIN)
    newer = cache.build(
        [{"id": ORG}],
        [{"organization_id": ORG, "domain": DOMAIN}],
        [SCOPE],
        [SOUND_SPEC],
        [{"snapshot_id": "1c0e7b4d-2e3f-4a5b-9c8d-0e1f2a3b4c5d", "version": 4, "organization_id": ORG,
          "domain": DOMAIN, "policies": SOUND_POLICIES}],
    ).domain(ORG, DOMAIN)  # fmt: skip

    assert same is not None and again is not None and newer is not None
    assert same.fingerprint() == again.fingerprint()
    assert same.fingerprint() != newer.fingerprint()
