"""Load-time errors: what they carry and how they read."""

import pytest

from mandate.evaluator import LoadProblem, SnapshotError, SpecError, check_spec, compile_snapshot, load_snapshot
from mandate.evaluator import snapshot as snapshot_module

from .builders import ORG, PAYER, payment_policy, payment_spec


def test_snapshot_error_lists_every_problem_in_its_message() -> None:
    with pytest.raises(SnapshotError) as caught:
        compile_snapshot(
            "snap-7",
            7,
            ORG,
            "finance",
            [payment_policy("p-1", "DENY", ("amount", "~", 1)), payment_policy("p-2", "BLOCK", ("amnt", "==", 1))],
            [payment_spec()],
            [PAYER],
        )

    error = caught.value
    assert [p.code for p in error.problems] == ["unknown_verdict", "unknown_operator", "unknown_signal"]
    assert str(error).splitlines() == [
        "snapshot snap-7 (version 7) refused, 3 problem(s):",
        "  - p-1: verdict: unknown verdict 'DENY'; use ALLOW, PAUSE, BLOCK or OBSERVE",
        "  - p-1: conditions[0].operator: unknown operator '~'; use one of ==, !=, <, <=, >, >=, in, not_in, exists",
        "  - p-2: conditions[0].signal: 'amnt' is not a signal of spec spec-payment-v1@1"
        " (declared: amount, currency, risk, approved)",
    ]


def test_check_spec_returns_a_sound_spec_and_refuses_a_broken_one() -> None:
    sound = payment_spec()
    assert check_spec(sound) is sound

    with pytest.raises(SpecError) as caught:
        check_spec(payment_spec(allowed=("BLOCK",), failure_mode="BLOCK"))
    assert caught.value.problems == (
        LoadProblem(
            "spec-payment-v1@1",
            "enforcement.default_verdict",
            "default_not_allowed",
            "default verdict OBSERVE is not among the allowed verdicts (BLOCK); allow it or declare another default",
        ),
    )


def test_check_spec_refuses_a_failure_mode_the_spec_does_not_allow() -> None:
    with pytest.raises(SpecError) as caught:
        check_spec(payment_spec(allowed=("ALLOW", "OBSERVE"), failure_mode="BLOCK"))
    assert [(p.field, p.code) for p in caught.value.problems] == [
        ("enforcement.failure_mode", "failure_mode_not_among_allowed")
    ]


def test_loaded_snapshot_knows_which_spec_version_it_was_checked_against() -> None:
    snapshot = compile_snapshot("s", 1, ORG, "finance", [payment_policy("p", "ALLOW")], [payment_spec()], [PAYER])

    assert snapshot.checked_against("spec-payment-v1") == "1"
    assert snapshot.checked_against("spec-unknown") is None
    assert snapshot.candidates("spec-unknown", (PAYER.scope_id,)) == ()
    assert [p.policy_id for p in snapshot.candidates("spec-payment-v1", ("elsewhere", PAYER.scope_id))] == ["p"]


def test_remembered_candidates_are_bounded_and_stay_correct(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(snapshot_module, "_MEMO_SIZE", 1)
    snapshot = compile_snapshot("s", 1, ORG, "finance", [payment_policy("p", "ALLOW")], [payment_spec()], [PAYER])

    first = snapshot.candidates("spec-payment-v1", (PAYER.scope_id,))
    other = snapshot.candidates("spec-payment-v1", ("finance",))
    again = snapshot.candidates("spec-payment-v1", (PAYER.scope_id,))

    assert [p.policy_id for p in first] == [p.policy_id for p in again] == ["p"]
    assert other == ()


def test_stored_snapshot_contains_unreadable_policies_to_the_spec_they_name() -> None:
    unreadable = LoadProblem("p-raw", "conditions[0].operator", "unreadable", "a condition has no operator")
    orphan = LoadProblem("p-old", "spec_id", "unreadable", "the policy names no spec")
    loaded = load_snapshot(
        "snap-1",
        1,
        ORG,
        "finance",
        [payment_policy("p-fine", "ALLOW")],
        [payment_spec()],
        [PAYER],
        [("spec-payment-v1", unreadable), (None, orphan)],
    )

    assert loaded.snapshot.broken == {"spec-payment-v1": (unreadable,)}
    assert loaded.ignored == (orphan,)
    assert loaded.problems == (unreadable, orphan)
    assert [p.policy_id for p in loaded.snapshot.candidates("spec-payment-v1", (PAYER.scope_id,))] == ["p-fine"]
