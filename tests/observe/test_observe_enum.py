"""enum signals: declared values as whole words, with plural, verb and separator variants."""

from typing import Any

import pytest

from mandate.observe import Provenance, extract


def enum_signal(*values: Any, name: str = "keyword") -> dict[str, Any]:
    return {"name": name, "type": "enum", "values": list(values), "required": True, "source": "context"}


def found(text: str, *values: Any) -> Provenance | None:
    result = extract(text, [enum_signal(*values)], {})
    assert len(result.provenance) <= 1
    return result.provenance[0] if result.provenance else None


@pytest.mark.parametrize(
    ("text", "value", "pattern"),
    [
        ("We will refund you.", "refund", "whole_word"),
        ("REFUND issued", "refund", "whole_word"),
        ("Refunds are possible.", "refund", "plural"),
        ("Two fees apply.", "fee", "plural"),
        ("Three boxes", "box", "plural"),
        ("Lots of echoes", "echo", "plural"),
        ("All policies apply", "policy", "plural"),
        ("We refunded you.", "refund", "verb_form"),
        ("We are refunding you.", "refund", "verb_form"),
        ("You were charged twice.", "charge", "verb_form"),
        ("We are charging you.", "charge", "verb_form"),
        ("The case was escalated.", "escalate", "verb_form"),
        ("Escalating now.", "escalate", "verb_form"),
        ("The booking was cancelled.", "cancel", "verb_form"),
        ("The booking was canceled.", "cancel", "verb_form"),
        ("We are cancelling it.", "cancel", "verb_form"),
        ("We copied the file.", "copy", "verb_form"),
        ("We are copying the file.", "copy", "verb_form"),
        ("Your flight was canceled.", "cancelled", "spelling_variant"),
        ("Your flight was cancelled.", "canceled", "spelling_variant"),
        ("Your flight departed.", "departed", "whole_word"),
        ("The trip completed.", "completed", "whole_word"),
    ],
)
def test_value_matches_its_word_forms(text: str, value: str, pattern: str) -> None:
    record = found(text, value)

    assert record is not None
    assert (record.value, record.method, record.pattern, record.token) == (value, "enum_word", pattern, value)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("This is a prefund.", "refund"),
        ("The ticket is refundable.", "refund"),
        ("Thanks for the feedback.", "fee"),
        ("We feed the cats.", "fee"),
        ("A surcharge applies.", "charge"),
        ("A chargeback was filed.", "charge"),
        ("A de-escalation plan.", "escalate"),  # a noun form of an enum value is not the value
        ("Your flight departs at nine.", "departed"),  # a past-tense value is matched literally, not lemmatised
        ("The flight will complete soon.", "completed"),
        ("", "refund"),
    ],
)
def test_value_does_not_match_inside_other_words(text: str, value: str) -> None:
    assert found(text, value) is None


@pytest.mark.parametrize("text", ["pre-commit", "pre_commit", "pre commit", "precommit", "PRE-COMMIT hook"])
def test_hyphen_underscore_and_space_variants_match(text: str) -> None:
    record = found(text, "pre_commit")

    assert record is not None
    assert (record.value, record.pattern) == ("pre_commit", "whole_word")


def test_plural_applies_to_the_last_word_of_a_multi_word_value() -> None:
    record = found("Two refund requests arrived.", "refund-request")

    assert record is not None
    assert (record.value, record.pattern) == ("refund-request", "plural")


def test_the_declared_spelling_is_returned_not_the_text_spelling() -> None:
    record = found("a REFUND", "Refund")

    assert record is not None
    assert (record.value, record.token) == ("Refund", "refund")


def test_the_value_declared_last_wins_and_the_others_are_alternatives_in_text_order() -> None:
    record = found("A charge, then a refund, then a fee.", "refund", "fee", "charge", "escalate")

    assert record is not None
    assert record.value == "charge"
    assert record.alternatives == ("refund", "fee")


def test_a_mentioned_riskier_value_is_never_lowered_by_an_earlier_milder_one() -> None:
    text = "Dropping the table: low impact on reads, but critical for billing."
    record = found(text, "low", "medium", "high", "critical")

    assert record is not None
    assert (record.value, record.alternatives) == ("critical", ("low",))


def test_each_alternative_is_listed_once_even_when_repeated_in_the_text() -> None:
    record = found("refund refund fee refund fee", "refund", "fee")

    assert record is not None
    assert (record.value, record.alternatives) == ("fee", ("refund",))


def test_the_longest_value_wins_at_the_same_position() -> None:
    record = found("Your refund request is open.", "refund", "refund_request")

    assert record is not None
    assert (record.value, record.alternatives) == ("refund_request", ("refund",))


def test_mention_is_taken_even_when_negated() -> None:
    record = found("There is no refund for this fare.", "refund")

    assert record is not None
    assert record.value == "refund"


def test_duplicate_and_case_duplicate_values_are_considered_once() -> None:
    record = found("a refund", "refund", "Refund", "refund")

    assert record is not None
    assert (record.value, record.alternatives) == ("refund", ())


@pytest.mark.parametrize("values", [[1, None, True], ["", "  ", "-", "_"]])
def test_non_string_and_wordless_values_are_ignored(values: list[Any]) -> None:
    assert found("1 true - _ anything", *values) is None


def test_a_value_ending_in_a_digit_matches_only_literally() -> None:
    assert found("v2 rollout", "v2") is not None
    assert found("v2s rollout", "v2") is None


@pytest.mark.parametrize("declared", [None, "refund", {"refund": 1}])
def test_values_that_are_not_a_list_fill_nothing(declared: Any) -> None:
    signal = {"name": "keyword", "type": "enum", "values": declared, "source": "context"}

    assert extract("refund", [signal], {}).values == {}


def test_no_value_in_the_text_leaves_the_signal_absent() -> None:
    assert found("Your seat is 14C.", "refund", "charge") is None
