"""Evaluation edge cases that YAML cannot express: broken inputs, stale caches, Python-only values."""

import json
from dataclasses import replace
from datetime import datetime
from decimal import Decimal, FloatOperation, localcontext

from mandate.evaluator import (
    CompiledSnapshot,
    Decision,
    Evaluation,
    GapCode,
    Policy,
    Reason,
    ScopeResolution,
    Spec,
    Verdict,
    compile_snapshot,
    evaluate,
    governance_gap,
)

from .builders import DOMAIN, ORG, PAYER, payment_decision, payment_policy, payment_spec

HR_PAYER = replace(PAYER, domain="hr", scope_id="hr.prod.billing.payer")


def snapshot_of(*policies: Policy, spec: Spec | None = None, domain: str = DOMAIN) -> CompiledSnapshot:
    specs = [spec or payment_spec(domain=domain)]
    return compile_snapshot("snap", 1, ORG, domain, policies, specs, [PAYER, HR_PAYER])


def run(
    decision: Decision, spec: Spec, snapshot: CompiledSnapshot, resolution: ScopeResolution | None = None
) -> Evaluation:
    return evaluate(decision, spec, resolution or ScopeResolution(PAYER), snapshot)


class Touchy(int):
    """An int that refuses to be compared: it looks like a number but could break evaluation."""

    def __gt__(self, other: object) -> bool:
        raise TypeError("cannot compare")


def test_value_that_only_resembles_a_number_is_unacceptable_and_the_failure_mode_decides() -> None:
    spec = payment_spec(failure_mode="PAUSE")
    snapshot = snapshot_of(payment_policy("p-big", "ALLOW", ("amount", ">", 10)))

    evaluation = run(payment_decision({"amount": Touchy(50)}), spec, snapshot)

    assert evaluation.verdict is Verdict.PAUSE
    assert evaluation.reason is Reason.ERROR
    [error] = evaluation.errors
    assert (error.code, error.signal, error.message) == (
        "invalid_signal",
        "amount",
        "amount must be a number, got a Touchy",
    )
    [policy] = evaluation.policies
    assert not policy.matched and policy.error == "signal amount has an unacceptable value"
    assert (
        evaluation.summary == "PAUSE by failure mode of spec spec-payment-v1@1: amount must be a number, got a Touchy"
    )


def test_decimal_context_of_the_caller_cannot_change_a_verdict() -> None:
    snapshot = snapshot_of(payment_policy("p-big", "PAUSE", ("amount", ">", Decimal("100.25"))))

    with localcontext() as context:  # a caller's strict context: mixing floats and Decimals would raise
        context.traps[FloatOperation] = True
        context.prec = 2
        evaluation = run(payment_decision({"amount": Decimal("100.26"), "risk": "low"}), payment_spec(), snapshot)
        also = run(payment_decision({"amount": 100.26}), payment_spec(), snapshot)

    assert evaluation.verdict is also.verdict is Verdict.PAUSE
    assert evaluation.errors == ()


def test_internal_failure_is_recorded_and_the_failure_mode_decides() -> None:
    spec = payment_spec(failure_mode="BLOCK")
    broken = payment_decision(None)  # type: ignore[arg-type]  # a caller bug: context must be a mapping

    evaluation = run(broken, spec, snapshot_of(payment_policy("p-any", "ALLOW")))

    assert evaluation.verdict is Verdict.BLOCK
    assert [e.code for e in evaluation.errors] == ["internal_error"]
    assert evaluation.policies == ()
    assert evaluation.summary.startswith("BLOCK by failure mode of spec spec-payment-v1@1: evaluation failed: ")


def test_unchecked_allow_failure_mode_still_never_grants() -> None:
    spec = payment_spec(failure_mode="ALLOW")

    evaluation = run(payment_decision({"amount": "12"}), spec, snapshot_of(payment_policy("p-any", "ALLOW")))

    assert evaluation.verdict is Verdict.OBSERVE
    assert evaluation.failure_mode is Verdict.OBSERVE


def test_spec_of_another_domain_is_never_evaluated() -> None:
    hr_spec = payment_spec(domain="hr")
    snapshot = snapshot_of(payment_policy("p-block", "BLOCK"))

    evaluation = run(payment_decision({}), hr_spec, snapshot)

    assert evaluation.verdict is Verdict.OBSERVE
    assert [e.code for e in evaluation.errors] == ["spec_mismatch"]
    assert evaluation.policies == () and evaluation.matched_policy_ids == ()


def test_spec_of_another_intent_is_never_evaluated() -> None:
    evaluation = run(
        payment_decision({}, intent="payment.cancel"), payment_spec(), snapshot_of(payment_policy("p-block", "BLOCK"))
    )

    assert [e.code for e in evaluation.errors] == ["spec_mismatch"]
    assert "governs" in evaluation.errors[0].message


def test_snapshot_of_another_domain_is_never_evaluated() -> None:
    hr_snapshot = snapshot_of(replace(payment_policy("p-block", "BLOCK"), scope_id=HR_PAYER.scope_id), domain="hr")

    evaluation = run(payment_decision({}), payment_spec(), hr_snapshot)

    assert [e.code for e in evaluation.errors] == ["snapshot_mismatch"]
    assert evaluation.verdict is Verdict.OBSERVE


def test_scope_of_another_domain_is_never_evaluated() -> None:
    evaluation = run(
        payment_decision({}), payment_spec(), snapshot_of(payment_policy("p-block", "BLOCK")), ScopeResolution(HR_PAYER)
    )

    assert [e.code for e in evaluation.errors] == ["scope_mismatch"]
    assert evaluation.scope_id == "hr.prod.billing.payer"


def test_snapshot_checked_against_another_spec_version_is_never_evaluated() -> None:
    snapshot = snapshot_of(payment_policy("p-block", "BLOCK"), spec=payment_spec(version="1"))

    evaluation = run(payment_decision({}), payment_spec(version="2", failure_mode="PAUSE"), snapshot)

    assert evaluation.verdict is Verdict.PAUSE
    assert [e.code for e in evaluation.errors] == ["spec_version_mismatch"]
    assert "load the snapshot against the spec version in force" in evaluation.errors[0].message


def test_only_a_pause_carries_requirements_and_expiry() -> None:
    evaluation = run(payment_decision({}), payment_spec(), snapshot_of(payment_policy("p-block", "BLOCK")))

    assert evaluation.verdict is Verdict.BLOCK
    assert (evaluation.pause_requires, evaluation.expires_at) == ((), None)


def test_pause_expiry_beyond_the_calendar_is_none() -> None:
    decision = payment_decision({}, timestamp=datetime(9999, 12, 31, 23, 59))

    evaluation = run(decision, payment_spec(), snapshot_of(payment_policy("p-pause", "PAUSE")))

    assert evaluation.verdict is Verdict.PAUSE
    assert evaluation.expires_at is None
    assert evaluation.pause_requires == ("finance-approval",)


def test_decimal_values_compare_as_numbers_and_are_stored_as_json_numbers() -> None:
    snapshot = snapshot_of(
        payment_policy("p-big", "PAUSE", ("amount", ">", Decimal("100.25")), ("amount", "in", [Decimal("250.5"), 7]))
    )

    evaluation = run(payment_decision({"amount": Decimal("250.50")}), payment_spec(), snapshot)

    assert evaluation.verdict is Verdict.PAUSE
    [condition, membership] = evaluation.to_dict()["policies"][0]["conditions"]  # type: ignore[index]
    assert (condition["expected"], condition["actual"]) == (100.25, 250.5)
    assert membership["expected"] == [250.5, 7]
    whole = run(payment_decision({"amount": Decimal("300")}), payment_spec(), snapshot).to_dict()
    assert whole["policies"][0]["conditions"][0]["actual"] == 300  # type: ignore[index]
    assert json.dumps(whole, sort_keys=True)


def test_no_active_spec_gap_names_what_was_asked() -> None:
    evaluation = governance_gap(payment_decision({}), GapCode.NO_ACTIVE_SPEC)

    assert evaluation.verdict is Verdict.OBSERVE and evaluation.reason is Reason.GAP
    assert evaluation.summary == (
        f"OBSERVE by governance gap: no active spec for {ORG}/{DOMAIN}/payment.create/pre_commit"
    )
    assert evaluation.to_dict()["gap"] == {"code": "no_active_spec", "message": evaluation.gap.message}  # type: ignore[union-attr]


def test_gap_with_the_callers_own_code_and_message() -> None:
    custom = governance_gap(payment_decision({}), "spec_deprecated", "spec-payment-v1 is deprecated")
    bare = governance_gap(payment_decision({}), "unknown_domain")

    assert custom.summary == "OBSERVE by governance gap: spec-payment-v1 is deprecated"
    assert bare.gap is not None and bare.gap.message == "unknown_domain"
    assert custom.to_dict()["spec"] is None and custom.policies == ()


def test_a_gap_holds_no_scope_at_all() -> None:
    gap = governance_gap(payment_decision({}), GapCode.NO_SCOPE)

    assert (gap.scope_id, gap.owning_team, gap.ancestor_scope_ids, gap.tied_scope_ids) == (None, None, (), ())
    assert gap.to_dict()["authority"] is None


def test_explanation_is_built_once() -> None:
    evaluation = run(payment_decision({"amount": 5}), payment_spec(), snapshot_of(payment_policy("p", "ALLOW")))

    assert evaluation.policies is evaluation.policies
    assert evaluation.summary is evaluation.summary
