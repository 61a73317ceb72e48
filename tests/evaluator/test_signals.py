"""Reading and checking signal values, beyond what the YAML cases show."""

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from mandate.evaluator import SignalDef, SignalSource, SignalType, resolve_signals, validate_signals

from .builders import payment_decision, payment_spec


def test_validation_lists_problems_and_resolution_keeps_only_acceptable_values() -> None:
    decision = payment_decision({"amount": 12, "currency": 978, "risk": "high", "unknown": object()})

    problems = validate_signals(payment_spec(), decision)

    assert [(p.signal, p.code) for p in problems] == [("currency", "wrong_type")]
    assert problems[0].message == "currency must be a string, got number 978"
    assert resolve_signals(payment_spec(), decision) == {"amount": 12, "risk": "high"}


@pytest.mark.parametrize(
    ("value", "code"),
    [
        (Decimal("12.50"), None),
        (12.5, None),
        (-0, None),
        (float("inf"), "not_finite"),
        (Decimal("NaN"), "not_finite"),
        (True, "wrong_type"),
        ({"value": 12}, "wrong_type"),
        (None, None),
    ],
)
def test_numbers_are_finite_ints_floats_and_decimals_only(value: object, code: str | None) -> None:
    problems = validate_signals(payment_spec(), payment_decision({"amount": value}))

    assert [p.code for p in problems] == ([code] if code else [])


def test_problem_messages_describe_the_value_sent() -> None:
    problems = validate_signals(
        payment_spec(), payment_decision({"amount": {"v": 1}, "currency": ["EUR"], "approved": "no", "risk": 2})
    )

    assert [p.message for p in problems] == [
        "amount must be a number, got an object",
        "currency must be a string, got a list",
        "risk must be one of low, medium, high, critical, got number 2",
        "approved must be a boolean, got string 'no'",
    ]


def test_a_timestamp_cannot_be_read_as_another_type() -> None:
    misdeclared = SignalDef("at", SignalType.BOOLEAN, source=SignalSource.TIMESTAMP)  # check_spec refuses this
    spec = replace(payment_spec(), signals=(misdeclared,))

    [problem] = validate_signals(spec, payment_decision({}, timestamp=datetime(2025, 6, 1, tzinfo=UTC)))

    assert (problem.signal, problem.code) == ("at", "wrong_type")
    assert problem.message == "at must be a boolean, got a datetime"
