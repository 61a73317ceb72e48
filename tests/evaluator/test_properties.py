"""Properties of evaluation over generated governance and decisions (hypothesis)."""

import json
import random
from dataclasses import replace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from mandate.evaluator import (
    SEVERITY,
    CompiledSnapshot,
    Condition,
    Decision,
    Evaluation,
    Policy,
    Reason,
    ScopeIndex,
    Spec,
    Verdict,
    compile_snapshot,
    evaluate,
)
from mandate.evaluator.result import PolicyResult, jsonable

from .builders import ORG, PAYER, payment_decision, payment_spec

DOMAIN_WIDE = replace(PAYER, scope_id="finance", owning_team="governance", environment=None, service=None, agent=None)
SERVICE = replace(PAYER, scope_id="finance.prod.billing", owning_team="billing-team", agent=None)
SIBLING = replace(PAYER, scope_id="finance.prod.billing.refunder", owning_team="refunds-team", agent="refunder")
SCOPES = [DOMAIN_WIDE, SERVICE, PAYER, SIBLING]
RESOLUTION = ScopeIndex(SCOPES).resolve(payment_decision({}))

numbers = st.one_of(
    st.integers(-1000, 1000),
    st.floats(-1000, 1000, allow_nan=False),
    st.decimals(-1000, 1000, allow_nan=False, allow_infinity=False, places=2),
)
VALUES: dict[str, st.SearchStrategy[Any]] = {
    "amount": numbers,
    "currency": st.sampled_from(["EUR", "USD", "GBP", ""]),
    "risk": st.sampled_from(["low", "medium", "high", "critical"]),
    "approved": st.booleans(),
}
ORDERING = ["<", "<=", ">", ">="]
EQUALITY = ["==", "!=", "in", "not_in", "exists"]


@st.composite
def conditions(draw: st.DrawFn) -> Condition:
    signal = draw(st.sampled_from(sorted(VALUES)))
    operator = draw(st.sampled_from(EQUALITY + (ORDERING if signal == "amount" else [])))
    if operator == "exists":
        return Condition(signal, operator, draw(st.booleans()))
    if operator in ("in", "not_in"):
        return Condition(signal, operator, draw(st.lists(VALUES[signal], max_size=4)))
    return Condition(signal, operator, draw(VALUES[signal]))


@st.composite
def specs(draw: st.DrawFn) -> Spec:
    allowed = draw(st.frozensets(st.sampled_from(list(Verdict)), min_size=1))
    default = draw(st.sampled_from(sorted(allowed)))
    failure_mode = draw(st.sampled_from([Verdict.OBSERVE, Verdict.PAUSE, Verdict.BLOCK]))
    return payment_spec(allowed=tuple(allowed), default_verdict=default, failure_mode=failure_mode)


@st.composite
def policies(draw: st.DrawFn, spec: Spec, prefix: str = "p") -> list[Policy]:
    count = draw(st.integers(0, 8))
    return [
        Policy(
            f"{prefix}-{i:02d}",
            spec.spec_id,
            draw(st.sampled_from(SCOPES)).scope_id,
            draw(st.sampled_from(sorted(spec.allowed_verdicts))),
            tuple(draw(st.lists(conditions(), max_size=3))),
        )
        for i in range(count)
    ]


contexts = st.fixed_dictionaries({}, optional=VALUES)
junk = st.one_of(st.none(), st.text(max_size=3), st.booleans(), st.lists(st.integers(), max_size=2), numbers)
junk_contexts = st.dictionaries(st.sampled_from([*sorted(VALUES), "extra"]), junk, max_size=5)


def load(spec: Spec, rules: list[Policy]) -> CompiledSnapshot:
    return compile_snapshot("snap", 1, ORG, "finance", rules, [spec], SCOPES)


def judge(decision: Decision, spec: Spec, snapshot: CompiledSnapshot) -> Evaluation:
    assert RESOLUTION is not None
    return evaluate(decision, spec, RESOLUTION, snapshot)


def dump(evaluation: Evaluation) -> str:
    return json.dumps(evaluation.to_dict(), sort_keys=True)


@settings(max_examples=150, deadline=None, database=None)
@given(data=st.data(), spec=specs(), context=contexts, seed=st.randoms(use_true_random=False))
def test_same_inputs_give_identical_explanations_whatever_the_policy_order(
    data: st.DataObject, spec: Spec, context: dict[str, Any], seed: random.Random
) -> None:
    rules = data.draw(policies(spec))
    decision = payment_decision(context)
    shuffled = list(rules)
    seed.shuffle(shuffled)

    first = judge(decision, spec, load(spec, rules))
    again = judge(decision, spec, load(spec, rules))
    reordered = judge(decision, spec, load(spec, shuffled))

    assert dump(first) == dump(again) == dump(reordered)
    assert list(first.matched_policy_ids) == sorted(first.matched_policy_ids)
    assert set(first.matched_policy_ids) <= {policy.policy_id for policy in first.policies}


@settings(max_examples=150, deadline=None, database=None)
@given(data=st.data(), spec=specs(), context=contexts)
def test_adding_a_policy_that_does_not_match_never_changes_the_verdict(
    data: st.DataObject, spec: Spec, context: dict[str, Any]
) -> None:
    rules = data.draw(policies(spec))
    decision = payment_decision(context)
    # `exists` contrary to the facts can never hold, whatever else the policy says.
    signal = data.draw(st.sampled_from(sorted(VALUES)))
    impossible = Condition(signal, "exists", signal not in context)
    extra = Policy(
        data.draw(st.sampled_from(["a-first", "m-middle", "z-last"])),
        spec.spec_id,
        data.draw(st.sampled_from(SCOPES)).scope_id,
        data.draw(st.sampled_from(sorted(spec.allowed_verdicts))),
        (*data.draw(st.lists(conditions(), max_size=2)), impossible),
    )

    before = judge(decision, spec, load(spec, rules))
    after = judge(decision, spec, load(spec, [*rules, extra]))

    assert extra.policy_id not in after.matched_policy_ids
    assert (after.verdict, after.reason, after.winning_policy_id, after.tied_policy_ids) == (
        before.verdict,
        before.reason,
        before.winning_policy_id,
        before.tied_policy_ids,
    )
    assert after.matched_policy_ids == before.matched_policy_ids


@settings(max_examples=150, deadline=None, database=None)
@given(data=st.data(), spec=specs(), context=contexts)
def test_a_matching_policy_never_lowers_a_policy_verdict(
    data: st.DataObject, spec: Spec, context: dict[str, Any]
) -> None:
    rules = data.draw(policies(spec))
    decision = payment_decision(context)
    always = Policy("always", spec.spec_id, PAYER.scope_id, data.draw(st.sampled_from(sorted(spec.allowed_verdicts))))

    before = judge(decision, spec, load(spec, rules))
    after = judge(decision, spec, load(spec, [*rules, always]))

    assert "always" in after.matched_policy_ids
    if before.reason in (Reason.POLICY, Reason.TIE):
        assert SEVERITY[after.verdict] >= SEVERITY[before.verdict]


@settings(max_examples=120, deadline=None, database=None)
@given(data=st.data(), spec=specs(), context=junk_contexts)
def test_verdict_is_always_allowed_by_the_spec_or_its_failure_mode(
    data: st.DataObject, spec: Spec, context: dict[str, Any]
) -> None:
    rules = data.draw(policies(spec))

    evaluation = judge(payment_decision(context), spec, load(spec, rules))  # signals deliberately not validated

    assert evaluation.verdict in spec.allowed_verdicts | {spec.enforcement.failure_mode}
    assert (evaluation.reason is Reason.ERROR) == bool(evaluation.errors)
    if evaluation.errors:
        assert evaluation.verdict is not Verdict.ALLOW
    assert json.loads(dump(evaluation))["verdict"] == evaluation.verdict


def _record_json(policy: PolicyResult) -> dict[str, Any]:
    """A candidate's record (`Evaluation.policies`) as the stored explanation spells it."""
    return {
        "policy_id": policy.policy_id,
        "scope_id": policy.scope_id,
        "verdict": policy.verdict.value,
        "matched": policy.matched,
        "error": policy.error,
        "conditions": [
            {
                "signal": c.signal,
                "operator": c.operator,
                "expected": jsonable(c.expected),
                "actual": jsonable(c.actual),
                "absent": c.absent,
                "result": c.result,
                "error": c.error,
            }
            for c in policy.conditions
        ],
    }


@settings(max_examples=200, deadline=None, database=None)
@given(data=st.data(), spec=specs(), context=st.one_of(contexts, junk_contexts))
def test_the_stored_explanation_says_what_the_per_candidate_records_say(
    data: st.DataObject, spec: Spec, context: dict[str, Any]
) -> None:
    """`to_dict()` builds the candidates' JSON directly (the hot path); `policies` builds records (the summary, the
    UI): the two agree on every field, and two explanations never share a list."""
    evaluation = judge(payment_decision(context), spec, load(spec, data.draw(policies(spec))))
    stored = evaluation.to_dict()
    assert stored["policies"] == [_record_json(p) for p in evaluation.policies]
    again = evaluation.to_dict()["policies"]
    for first, second in zip(stored["policies"], again, strict=True):  # type: ignore[call-overload]
        for a, b in zip(first["conditions"], second["conditions"], strict=True):
            assert a["expected"] is not b["expected"] or not isinstance(a["expected"], list)
