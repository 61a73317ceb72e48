"""The phase's rules: which signals may be filled, the result's shape, and the module's purity."""

import ast
import json
from pathlib import Path
from typing import Any

import pytest

import mandate.observe
from mandate.observe import ObserveResult, Provenance, extract, fillable_signals

TEXT = "A refund of $250 was escalated; 5000 records, flight departed."


def signal(name: str, kind: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": kind, "required": False, "source": "context", **extra}


KEYWORD = signal("policy_keyword", "enum", values=["refund", "fee"])
AMOUNT = signal("monetary_amount", "number")
ESCALATION = signal("requires_escalation", "boolean")


@pytest.mark.parametrize("sent", [False, None, "fee", 0])
def test_an_agent_sent_value_is_never_overridden_even_null(sent: Any) -> None:
    result = extract(TEXT, [KEYWORD, AMOUNT, ESCALATION], {"policy_keyword": sent, "requires_escalation": sent})

    assert result.values == {"monetary_amount": 250}
    assert [p.signal for p in result.provenance] == ["monetary_amount"]


def test_undeclared_signals_are_never_invented() -> None:
    result = extract(TEXT, [AMOUNT], {})

    assert result.values == {"monetary_amount": 250}


@pytest.mark.parametrize("source", ["scope", "timestamp", "agent", None])
def test_only_context_signals_are_filled(source: Any) -> None:
    declared = [{**KEYWORD, "source": source}, {**AMOUNT, "source": source}]

    assert extract(TEXT, declared, {}).values == {}


def test_a_declaration_without_source_is_a_context_signal() -> None:
    declared = [{k: v for k, v in KEYWORD.items() if k != "source"}]

    assert extract(TEXT, declared, {}).values == {"policy_keyword": "refund"}


@pytest.mark.parametrize("kind", ["string", "integer", None, "ENUM"])
def test_string_and_unknown_types_are_not_extracted(kind: Any) -> None:
    declared = [signal("refund", kind, values=["refund"]), signal("target", kind)]

    assert extract(TEXT, declared, {}).values == {}


def test_malformed_and_duplicate_declarations_are_skipped() -> None:
    declared: list[dict[str, Any]] = [
        {"type": "enum", "values": ["refund"], "source": "context"},
        {"name": 7, "type": "enum", "values": ["refund"], "source": "context"},
        signal("__", "boolean"),  # no word in the name
        KEYWORD,
        signal("policy_keyword", "enum", values=["fee"]),  # the first declaration of a name wins
    ]

    assert extract(TEXT, declared, {}).values == {"policy_keyword": "refund"}


def test_fillable_signals_keeps_declaration_order_and_drops_provided_and_non_context() -> None:
    declared = [ESCALATION, {**AMOUNT, "source": "scope"}, KEYWORD, signal("x", "string")]

    names = [d["name"] for d in fillable_signals(declared, {"x": "sent"})]

    assert names == ["requires_escalation", "policy_keyword"]


def test_values_and_provenance_follow_declaration_order() -> None:
    result = extract(TEXT, [ESCALATION, AMOUNT, KEYWORD], {})

    assert list(result.values) == ["requires_escalation", "monetary_amount", "policy_keyword"]
    assert [p.signal for p in result.provenance] == list(result.values)


def test_returned_values_have_the_declared_types() -> None:
    result = extract(TEXT, [KEYWORD, AMOUNT, ESCALATION, signal("has_amount", "boolean")], {})

    assert result.values == {
        "policy_keyword": "refund",
        "monetary_amount": 250,
        "requires_escalation": True,
        "has_amount": True,
    }
    assert [type(v) for v in result.values.values()] == [str, int, bool, bool]


def test_to_dict_holds_values_provenance_and_notes_only() -> None:
    result = extract(TEXT, [KEYWORD, AMOUNT], {})

    assert result.to_dict() == {
        "values": {"policy_keyword": "refund", "monetary_amount": 250},
        "provenance": [
            {
                "signal": "policy_keyword",
                "value": "refund",
                "method": "enum_word",
                "pattern": "whole_word",
                "token": "refund",
            },
            {
                "signal": "monetary_amount",
                "value": 250,
                "method": "currency_amount",
                "pattern": "symbol_prefix",
                "currency": "USD",
            },
        ],
        "notes": [],
    }
    assert json.loads(json.dumps(result.to_dict())) == result.to_dict()


def test_provenance_to_dict_includes_optional_fields_only_when_set() -> None:
    full = Provenance("s", "a", "assisted", "p", token="t", currency="EUR", alternatives=("b",), confidence=0.9)

    assert full.to_dict() == {
        "signal": "s",
        "value": "a",
        "method": "assisted",
        "pattern": "p",
        "token": "t",
        "currency": "EUR",
        "alternatives": ["b"],
        "confidence": 0.9,
    }
    assert set(Provenance("s", True, "boolean_phrase", "p").to_dict()) == {"signal", "value", "method", "pattern"}


def test_an_empty_result_is_empty() -> None:
    assert ObserveResult().to_dict() == {"values": {}, "provenance": [], "notes": []}
    assert extract("", [KEYWORD, AMOUNT, ESCALATION], {}) == ObserveResult()


def test_observe_imports_only_the_standard_library_it_needs() -> None:
    tree = ast.parse(Path(mandate.observe.__file__).read_text(encoding="utf-8"))
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.module is not None
            imported.add(node.module.split(".")[0])

    # functools: only lru_cache, memoising the regexes built from declarations (no I/O, no clock, no randomness).
    assert imported <= {"__future__", "re", "collections", "dataclasses", "decimal", "functools", "typing"}


def test_public_surface_is_deliberate() -> None:
    assert sorted(mandate.observe.__all__) == [
        "Method",
        "ObserveResult",
        "Provenance",
        "SignalValue",
        "extract",
        "fillable_signals",
    ]
