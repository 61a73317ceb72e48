"""number signals: currency amounts for money-named signals, numbers next to the signal's words otherwise."""

from typing import Any

import pytest

from mandate.observe import Provenance, extract


def number_signal(name: str) -> dict[str, Any]:
    return {"name": name, "type": "number", "required": False, "source": "context"}


def found(text: str, name: str = "monetary_amount") -> Provenance | None:
    result = extract(text, [number_signal(name)], {})
    return result.provenance[0] if result.provenance else None


@pytest.mark.parametrize(
    ("text", "value", "currency", "pattern"),
    [
        ("a refund of $250", 250, "USD", "symbol_prefix"),
        ("a refund of $ 250", 250, "USD", "symbol_prefix"),
        ("a refund of $1,250.50 today", 1250.5, "USD", "symbol_prefix"),
        ("a refund of $1250.5.", 1250.5, "USD", "symbol_prefix"),
        ("a refund of $250.00", 250, "USD", "symbol_prefix"),
        ("a refund of $1,000,000", 1000000, "USD", "symbol_prefix"),
        ("a refund of 250 USD", 250, "USD", "code_suffix"),
        ("a refund of 250usd", 250, "USD", "code_suffix"),
        ("a refund of USD 250", 250, "USD", "code_prefix"),
        ("a refund of USD250", 250, "USD", "code_prefix"),
        ("a voucher of €40", 40, "EUR", "symbol_prefix"),
        ("a voucher of 40 EUR", 40, "EUR", "code_suffix"),
        ("a voucher of 40€", 40, "EUR", "symbol_suffix"),
        ("a voucher of 40 $", 40, "USD", "symbol_suffix"),
        ("a fee of £12.99", 12.99, "GBP", "symbol_prefix"),
        ("a fee of ¥500", 500, "JPY", "symbol_prefix"),
        ("a fee of US$20", 20, "USD", "symbol_prefix"),
        ("a fee of C$30", 30, "CAD", "symbol_prefix"),
        ("a fee of AU$30", 30, "AUD", "symbol_prefix"),
        ("a fee of CHF 30", 30, "CHF", "code_prefix"),
        ("a fee of 20 dollars", 20, "USD", "currency_word"),
        ("a fee of 1 euro", 1, "EUR", "currency_word"),
    ],
)
def test_currency_amounts_are_read_with_their_currency(
    text: str, value: int | float, currency: str, pattern: str
) -> None:
    record = found(text)

    assert record is not None
    assert (record.value, record.method, record.currency, record.pattern) == (
        value,
        "currency_amount",
        currency,
        pattern,
    )
    assert type(record.value) is type(value)


def test_integral_amounts_are_int_and_fractional_amounts_are_float() -> None:
    integral = extract("$250.00", [number_signal("amount")], {}).values["amount"]
    fractional = extract("$250.10", [number_signal("amount")], {}).values["amount"]

    assert type(integral) is int
    assert type(fractional) is float


def test_the_largest_amount_wins_and_keeps_its_currency() -> None:
    record = found("We refunded $25 and a further €300, plus a $120 voucher.")

    assert record is not None
    assert (record.value, record.currency) == (300, "EUR")


def test_equal_largest_amounts_report_the_first_one() -> None:
    record = found("We refunded 300 EUR and $300.")

    assert record is not None
    assert (record.value, record.currency, record.pattern) == (300, "EUR", "code_suffix")


@pytest.mark.parametrize(
    "text",
    [
        "a refund of 250",  # a money signal needs a currency
        "boarding starts at 9:40",
        "a refund of $1,25",  # neither 125 nor 1.25: ambiguous, not guessed
        "version 1.2.3 USD",
        "a refund of $12345678901234567890",  # more than 18 integer digits
        "a refund of $1.1234567",  # more than 6 decimals
        "250 USDC to your wallet",  # not a currency code on its own
        "USDC 250 to your wallet",
        "XUSD 250",
        "40,50 €",  # European decimal comma is not supported
    ],
)
def test_text_without_a_clear_currency_amount_gives_nothing(text: str) -> None:
    assert found(text) is None


def test_letters_glued_to_a_dollar_sign_do_not_make_a_currency_prefix() -> None:
    record = found("ABC$5")

    assert record is not None
    assert (record.value, record.currency) == (5, "USD")


@pytest.mark.parametrize(
    "name", ["amount", "refund_value", "ticket_price", "totalCost", "fee", "payment", "fare", "compensation"]
)
def test_money_words_anywhere_in_the_name_make_a_money_signal(name: str) -> None:
    assert extract("$99 back", [number_signal(name)], {}).values == {name: 99}


@pytest.mark.parametrize(
    ("text", "value", "pattern"),
    [
        ("We exported 5000 records.", 5000, "number_before_unit"),
        ("We exported 5,000 customer records.", 5000, "number_before_unit"),
        ("We exported 1 record.", 1, "number_before_unit"),
        ("record count: 12", 12, "name_before_number"),
        ("Record count is 12", 12, "name_before_number"),
        ("record_count=12", 12, "name_before_number"),
        ("500 records, then 7000 records, then 20 records", 7000, "number_before_unit"),
        ("record count: 9000 (of 5000 records)", 9000, "name_before_number"),
        ("2.5 records", 2.5, "number_before_unit"),
    ],
)
def test_plain_numbers_next_to_the_signals_own_words(text: str, value: int | float, pattern: str) -> None:
    record = found(text, "record_count")

    assert record is not None
    assert (record.value, record.method, record.pattern) == (value, "number_with_unit", pattern)
    assert type(record.value) is type(value)


def test_unit_and_name_tokens_come_from_the_signal_name() -> None:
    unit = found("5000 records", "record_count")
    phrase = found("record count 5000", "record_count")

    assert unit is not None and phrase is not None
    assert (unit.token, phrase.token) == ("record", "record count")


@pytest.mark.parametrize(
    "text",
    [
        "We exported 5000 users.",
        "We exported records.",
        "5000 of the records",
        "$5000",  # a currency amount is not a record count
    ],
)
def test_numbers_not_next_to_the_signals_words_give_nothing(text: str) -> None:
    assert found(text, "record_count") is None


def test_equal_numbers_report_the_first_pattern() -> None:
    record = found("5000 records; record count 5000", "record_count")

    assert record is not None
    assert record.pattern == "number_before_unit"


def test_a_name_of_only_generic_words_uses_the_name_phrase_alone() -> None:
    assert found("count: 12", "count") is not None
    assert found("12 counts", "count") is None


def test_a_name_word_with_digits_is_matched_literally() -> None:
    record = found("retries v2: 4", "retries_v2")

    assert record is not None
    assert (record.value, record.pattern) == (4, "name_before_number")
    assert found("4 retries", "retries_v2") is not None
