"""boolean signals: phrases built from the signal's own name, with negation; money flags from amounts."""

from typing import Any

import pytest

from mandate.observe import Provenance, extract


def boolean_signal(name: str) -> dict[str, Any]:
    return {"name": name, "type": "boolean", "required": False, "source": "context"}


def found(text: str, name: str = "requires_escalation") -> Provenance | None:
    result = extract(text, [boolean_signal(name)], {})
    return result.provenance[0] if result.provenance else None


@pytest.mark.parametrize(
    "text",
    [
        "I will escalate this to a supervisor.",
        "This requires escalation.",
        "Escalation requested.",
        "The case was escalated.",
        "Escalating now.",
        "Two escalations are open.",
        "There is no doubt we must escalate.",  # the negator is outside the three-word window
        "No, we will escalate this.",  # a clause break ends the negation's scope
        "Not a problem — we will escalate.",
        "I can't promise much, but escalation is on its way.",
        "The escalation team is not available today.",  # "not" does not negate "needed" here
    ],
)
def test_phrases_from_the_name_set_the_boolean_true(text: str) -> None:
    record = found(text)

    assert record is not None
    assert (record.value, record.method, record.pattern, record.token) == (
        True,
        "boolean_phrase",
        "affirmative",
        "escalation",
    )


@pytest.mark.parametrize(
    "text",
    [
        "No escalation needed.",
        "This does not require escalation.",
        "We won't escalate this.",
        "We will never escalate this.",
        "There is nothing to escalate.",
        "Resolved without escalation.",
        "Escalation isn't needed.",
        "Escalation is not required.",
        "Escalation not necessary.",
        "Escalation is unnecessary.",
        "Escalation won't be necessary.",
        "Escalation would be unneeded.",
        "A non-escalation path.",
    ],
)
def test_negated_phrases_set_the_boolean_false(text: str) -> None:
    record = found(text)

    assert record is not None
    assert (record.value, record.pattern) == (False, "negated")


def test_one_affirmative_mention_outweighs_negated_ones() -> None:
    record = found("No escalation needed for the seat, but we will escalate the refund.")

    assert record is not None
    assert (record.value, record.pattern) == (True, "affirmative")


@pytest.mark.parametrize(
    "text",
    [
        "Yes.",
        "Yes, true, confirmed, required: yes.",
        "Take the escalator to gate 5.",  # not an inflection of the name's word
        "",
    ],
)
def test_bare_yes_true_and_unrelated_words_set_nothing(text: str) -> None:
    assert found(text) is None


def test_bare_yes_elsewhere_never_sets_any_boolean() -> None:
    signals = [boolean_signal(n) for n in ("requires_escalation", "includes_pii", "reversible", "approved")]

    assert extract("Yes! True. Yes, yes — TRUE.", signals, {}).values == {}


@pytest.mark.parametrize(
    ("name", "text", "value", "token"),
    [
        ("includes_pii", "The export contains PII.", True, "pii"),
        ("includes_pii", "No PII in this file.", False, "pii"),
        ("reversible", "This change is reversible.", True, "reversible"),
        ("reversible", "This change is not reversible.", False, "reversible"),
        ("requiresEscalation", "please escalate", True, "escalation"),
        ("needs_process", "It was processed.", True, "process"),
        ("backup_first", "Take a backup first.", True, "backup first"),
        ("backup_first", "Take a backup-first approach.", True, "backup first"),
        ("is_required", "A signature is required.", True, "required"),
        ("has", "it has it", True, "has"),  # a name of only a head word keeps that word
    ],
)
def test_the_phrase_is_built_from_the_signals_own_name(name: str, text: str, value: bool, token: str) -> None:
    record = found(text, name)

    assert record is not None
    assert (record.signal, record.value, record.token) == (name, value, token)


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("includes_pii", "It contains personal data."),  # no synonyms
        ("reversible", "This change is irreversible."),  # no antonyms: absent, not false
        ("has_status", "A statue in the lobby."),  # "status" is not stripped to "statu"
        ("backup_first", "Take a backup."),  # every word of the name must appear, in order
    ],
)
def test_words_not_built_from_the_name_set_nothing(name: str, text: str) -> None:
    assert found(text, name) is None


@pytest.mark.parametrize(
    ("name", "text", "currency"),
    [
        ("has_monetary_value", "a refund of $250", "USD"),
        ("has_amount", "40 EUR back", "EUR"),
        ("contains_money", "£5 voucher", "GBP"),
        ("includes_value", "USD 1", "USD"),
        ("hasMonetaryValue", "$0", "USD"),
    ],
)
def test_a_money_flag_is_true_when_a_currency_amount_is_present(name: str, text: str, currency: str) -> None:
    record = found(text, name)

    assert record is not None
    assert (record.value, record.method, record.currency) == (True, "derived_from_amount", currency)


@pytest.mark.parametrize(
    "text",
    [
        "a full refund for you",
        "This reply has no monetary value.",  # never false: the phrase rule does not apply to money flags
        "It has monetary value.",  # nor true without an amount
        "a refund of 250",
    ],
)
def test_a_money_flag_is_left_absent_without_a_currency_amount(text: str) -> None:
    assert found(text, "has_monetary_value") is None


def test_a_money_word_without_a_has_head_is_an_ordinary_phrase() -> None:
    record = found("The transfer is monetary.", "is_monetary")

    assert record is not None
    assert (record.method, record.value) == ("boolean_phrase", True)
    assert found("$250", "is_monetary") is None


def test_negation_looks_back_at_most_200_characters() -> None:
    far = found("no " + "x" * 300 + " escalation")
    near = found("no " + "x" * 150 + " escalation")
    cut = found("a " * 150 + "no escalation")  # the look-back window starts mid-text

    assert far is not None and near is not None and cut is not None
    assert (far.value, near.value, cut.value) == (True, False, False)


def test_a_long_text_with_many_negated_mentions_keeps_its_affirmative_ones() -> None:
    text = "No escalation needed, we will escalate. " * 5000

    record = found(text)

    assert record is not None and record.value is True
