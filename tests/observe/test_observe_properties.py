"""Properties over generated texts: determinism, privacy of the text, and the phase's hard rules."""

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from mandate.observe import extract

SIGNALS: list[dict[str, Any]] = [
    {"name": "has_monetary_value", "type": "boolean", "required": True, "source": "context"},
    {"name": "policy_keyword", "type": "enum", "values": ["refund", "charge", "fee", "escalate"], "source": "context"},
    {"name": "monetary_amount", "type": "number", "source": "context"},
    {"name": "requires_escalation", "type": "boolean", "source": "context"},
    {"name": "flight_status", "type": "enum", "values": ["scheduled", "departed", "completed", "cancelled"]},
    {"name": "record_count", "type": "number", "source": "context"},
    {"name": "includes_pii", "type": "boolean", "source": "context"},
    {"name": "service", "type": "string", "source": "scope"},
    {"name": "note", "type": "string", "source": "context"},
]
CONTEXT_NAMES = {s["name"] for s in SIGNALS if s.get("source", "context") == "context"}

VOCABULARY = [
    "refund",
    "refunds",
    "refunded",
    "charge",
    "fees",
    "escalate",
    "escalation",
    "no",
    "not",
    "never",
    "yes",
    "true",
    "needed",
    "is",
    "the",
    "flight",
    "departed",
    "completed",
    "cancelled",
    "canceled",
    "records",
    "record",
    "count",
    "PII",
    "$250",
    "$1,250.50",
    "40 EUR",
    "USD 99",
    "€3",
    "5000",
    "9:40",
    "14C",
    ",",
    ".",
    "—",
    "don't",
]
words = st.lists(st.sampled_from(VOCABULARY) | st.text(min_size=1, max_size=8), max_size=30)
texts = words.map(" ".join)
markers = st.text(alphabet="bcdfghjklmnpqrstvwxz", min_size=6, max_size=12).map(lambda s: "zq" + s)
provided_keys = st.sets(st.sampled_from(sorted(CONTEXT_NAMES)))


@given(texts, provided_keys)
def test_same_input_gives_the_same_output(text: str, keys: set[str]) -> None:
    provided = {key: None for key in keys}

    first = extract(text, SIGNALS, provided)
    second = extract(text, SIGNALS, provided)

    assert first == second
    assert json.dumps(first.to_dict()) == json.dumps(second.to_dict())


@given(words, markers, st.integers(min_value=0, max_value=30))
def test_no_word_of_the_text_appears_in_the_result(parts: list[str], marker: str, at: int) -> None:
    parts.insert(min(at, len(parts)), marker)
    variants = [marker, marker.upper(), f"{marker}s", f"${marker}", f"{marker}-refund", f"refund_{marker}"]

    for variant in variants:
        text = " ".join(parts).replace(marker, variant)
        dumped = json.dumps(extract(text, SIGNALS, {}).to_dict(), ensure_ascii=False).lower()
        assert marker not in dumped


@given(texts, provided_keys)
def test_only_declared_context_signals_the_agent_did_not_send_are_filled(text: str, keys: set[str]) -> None:
    result = extract(text, SIGNALS, {key: "sent" for key in keys})

    assert set(result.values) <= CONTEXT_NAMES - keys - {"note"}
    assert [p.signal for p in result.provenance] == list(result.values)
    assert all(p.value == result.values[p.signal] for p in result.provenance)


@given(texts)
def test_values_conform_to_their_declarations(text: str) -> None:
    declared = {s["name"]: s for s in SIGNALS}

    for name, value in extract(text, SIGNALS, {}).values.items():
        kind = declared[name]["type"]
        if kind == "enum":
            assert value in declared[name]["values"]
        elif kind == "boolean":
            assert type(value) is bool
        else:
            assert isinstance(value, int | float) and not isinstance(value, bool) and value >= 0


@given(texts)
def test_a_money_flag_is_never_false(text: str) -> None:
    assert extract(text, SIGNALS, {}).values.get("has_monetary_value", True) is True
