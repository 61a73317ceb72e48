"""The customer-support demo: an airline chatbot's draft replies checked against spec-refund-v1."""

from typing import Any

import pytest

from mandate.observe import extract

SPEC_REFUND_1_0_0: list[dict[str, Any]] = [
    {"name": "has_monetary_value", "type": "boolean", "required": True, "source": "context"},
    {
        "name": "policy_keyword",
        "type": "enum",
        "values": ["refund", "charge", "fee", "escalate"],
        "required": True,
        "source": "context",
    },
    {"name": "monetary_amount", "type": "number", "required": False, "source": "context"},
    {"name": "requires_escalation", "type": "boolean", "required": False, "source": "context"},
]
SPEC_REFUND_1_1_0: list[dict[str, Any]] = [
    *SPEC_REFUND_1_0_0,
    {
        "name": "flight_status",
        "type": "enum",
        "values": ["scheduled", "departed", "completed", "cancelled"],
        "required": False,
        "source": "context",
    },
]


@pytest.mark.parametrize(
    ("draft", "expected"),
    [
        (
            "I've issued a refund of $250 for your flight, which departed this morning.",
            {
                "has_monetary_value": True,
                "policy_keyword": "refund",
                "monetary_amount": 250,
                "flight_status": "departed",
            },
        ),
        (
            "Your flight has completed, and I'm processing a full refund for you.",
            {"policy_keyword": "refund", "flight_status": "completed"},
        ),
        (
            "We offer refunds for cancelled flights under our policy.",
            {"policy_keyword": "refund", "flight_status": "cancelled"},
        ),
        ("Your seat is 14C and boarding starts at 9:40.", {}),
    ],
    ids=["refund-250-departed", "refund-completed", "plural-refunds-cancelled", "harmless"],
)
def test_demo_drafts_populate_the_expected_signals(draft: str, expected: dict[str, Any]) -> None:
    result = extract(draft, SPEC_REFUND_1_1_0, {})

    assert result.values == expected
    assert [p.signal for p in result.provenance] == list(expected)


def test_demo_amount_is_an_int_in_dollars() -> None:
    result = extract(
        "I've issued a refund of $250 for your flight, which departed this morning.", SPEC_REFUND_1_1_0, {}
    )

    amount = next(p for p in result.provenance if p.signal == "monetary_amount")
    assert type(result.values["monetary_amount"]) is int
    assert (amount.method, amount.pattern, amount.currency) == ("currency_amount", "symbol_prefix", "USD")
    flag = next(p for p in result.provenance if p.signal == "has_monetary_value")
    assert (flag.method, flag.currency) == ("derived_from_amount", "USD")


def test_demo_plural_refunds_is_recorded_as_a_plural_match() -> None:
    result = extract("We offer refunds for cancelled flights under our policy.", SPEC_REFUND_1_1_0, {})

    keyword = next(p for p in result.provenance if p.signal == "policy_keyword")
    assert (keyword.method, keyword.pattern, keyword.token) == ("enum_word", "plural", "refund")


def test_spec_1_0_0_has_no_flight_status_to_fill() -> None:
    result = extract("Your flight has completed, and I'm processing a full refund for you.", SPEC_REFUND_1_0_0, {})

    assert result.values == {"policy_keyword": "refund"}


def test_demo_agent_sent_values_are_kept_and_only_the_rest_is_filled() -> None:
    provided = {"has_monetary_value": False, "policy_keyword": "charge"}

    result = extract(
        "I've issued a refund of $250 for your flight, which departed this morning.", SPEC_REFUND_1_1_0, provided
    )

    assert result.values == {"monetary_amount": 250, "flight_status": "departed"}
