"""The assisted extractor: non-authoritative, gated by confidence and type, bounded in time, merged last.

The extractors here are fakes at the process edge (where a real one would call a model over HTTP).
"""

import ast
import json
import math
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

import mandate.assisted
from mandate.assisted import Suggestion, merge, run_assisted
from mandate.observe import ObserveResult, Provenance, extract

SIGNALS: list[dict[str, Any]] = [
    {"name": "has_monetary_value", "type": "boolean", "required": True, "source": "context"},
    {"name": "policy_keyword", "type": "enum", "values": ["refund", "charge", "fee", "escalate"], "source": "context"},
    {"name": "monetary_amount", "type": "number", "source": "context"},
    {"name": "requires_escalation", "type": "boolean", "source": "context"},
    {"name": "customer_mood", "type": "string", "source": "context"},
    {"name": "service", "type": "string", "source": "scope"},
    {"name": "flight_status", "type": "enum", "values": "departed", "source": "context"},  # broken values
    {"type": "boolean", "source": "context"},  # no name: ignored
]
TEXT = "The customer Zorblatt wants money back for flight XY123."


class Scripted:
    """Answers with a fixed list and records what it was shown."""

    def __init__(self, *suggestions: Any) -> None:
        self.suggestions = list(suggestions)
        self.calls: list[tuple[str, list[str]]] = []

    def suggest(self, text: str, signals: Sequence[Mapping[str, Any]]) -> Sequence[Suggestion]:
        self.calls.append((text, [s["name"] for s in signals]))
        return self.suggestions


class Blocking:
    """Blocks until released, like a model call that hangs."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.started = threading.Event()

    def suggest(self, text: str, signals: Sequence[Mapping[str, Any]]) -> Sequence[Suggestion]:
        self.started.set()
        self.release.wait(timeout=30)
        return [Suggestion("policy_keyword", "refund", 0.99)]


class Raising:
    def suggest(self, text: str, signals: Sequence[Mapping[str, Any]]) -> Sequence[Suggestion]:
        raise RuntimeError(f"model refused: {text}")


class Returning:
    def __init__(self, answer: Any) -> None:
        self.answer = answer

    def suggest(self, text: str, signals: Sequence[Mapping[str, Any]]) -> Any:
        return self.answer


def run(extractor: Any, provided: Mapping[str, Any] | None = None, **kwargs: Any) -> ObserveResult:
    already = kwargs.pop("already_extracted", {})
    return run_assisted(extractor, TEXT, SIGNALS, provided or {}, already, **kwargs)


def test_confident_typed_suggestions_are_taken_with_assisted_provenance() -> None:
    extractor = Scripted(
        Suggestion("policy_keyword", "refund", 0.9),
        Suggestion("has_monetary_value", True, 0.8),
        Suggestion("monetary_amount", 120.5, 1.0),
    )

    result = run(extractor)

    assert result.values == {"has_monetary_value": True, "policy_keyword": "refund", "monetary_amount": 120.5}
    assert result.provenance[1] == Provenance(
        signal="policy_keyword", value="refund", method="assisted", pattern="Scripted", confidence=0.9
    )
    assert result.notes == ()


def test_the_extractor_sees_only_signals_it_may_fill() -> None:
    extractor = Scripted()

    run(extractor, provided={"policy_keyword": "fee"}, already_extracted={"monetary_amount": 5})

    assert extractor.calls == [(TEXT, ["has_monetary_value", "requires_escalation", "flight_status"])]


def test_nothing_to_fill_means_the_extractor_is_not_called() -> None:
    extractor = Scripted(Suggestion("policy_keyword", "refund", 1.0))
    provided = {"has_monetary_value": True, "policy_keyword": "fee", "monetary_amount": 1}

    result = run(extractor, provided=provided, already_extracted={"requires_escalation": True, "flight_status": 1})

    assert (result, extractor.calls) == (ObserveResult(), [])


@pytest.mark.parametrize("confidence", [0.79, 0.0, 0.5])
def test_suggestions_below_the_threshold_are_dropped(confidence: float) -> None:
    result = run(Scripted(Suggestion("policy_keyword", "refund", confidence)))

    assert result.values == {}
    assert result.notes == ("policy_keyword: suggestion ignored, confidence below 0.8",)


def test_the_threshold_is_configurable_and_inclusive() -> None:
    extractor = Scripted(Suggestion("policy_keyword", "refund", 0.5))

    assert run(extractor, min_confidence=0.5).values == {"policy_keyword": "refund"}
    assert run(extractor, min_confidence=0.51).values == {}


@pytest.mark.parametrize("confidence", [True, "0.9", None, 1.5, -0.1, math.nan, math.inf])
def test_invalid_confidences_are_dropped(confidence: Any) -> None:
    result = run(Scripted(Suggestion("policy_keyword", "refund", confidence)))

    assert result.values == {}
    assert result.notes == ("policy_keyword: suggestion ignored, confidence is not a number between 0 and 1",)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("policy_keyword", "rebate"),
        ("policy_keyword", "Refund"),  # enum values are exact: no case folding
        ("policy_keyword", 1),
        ("has_monetary_value", "true"),
        ("has_monetary_value", 1),
        ("monetary_amount", "250"),
        ("monetary_amount", True),
        ("monetary_amount", math.nan),
        ("monetary_amount", math.inf),
        ("monetary_amount", None),
        ("flight_status", "departed"),  # its declared values are not a list
    ],
)
def test_values_of_the_wrong_type_or_outside_the_enum_are_dropped_not_coerced(name: str, value: Any) -> None:
    result = run(Scripted(Suggestion(name, value, 0.95)))

    assert result.values == {}
    assert len(result.notes) == 1
    assert result.notes[0].startswith(f"{name}: suggestion ignored, value is not a valid ")


def test_an_integer_is_a_valid_number() -> None:
    assert run(Scripted(Suggestion("monetary_amount", 250, 0.9))).values == {"monetary_amount": 250}


@pytest.mark.parametrize(
    ("name", "provided", "already", "reason"),
    [
        ("policy_keyword", {"policy_keyword": "fee"}, {}, "the agent sent this signal"),
        ("policy_keyword", {"policy_keyword": None}, {}, "the agent sent this signal"),
        ("policy_keyword", {}, {"policy_keyword": "fee"}, "already extracted deterministically"),
        ("service", {}, {}, "not a context signal"),
        ("customer_mood", {}, {}, "string signals are not filled by assisted extraction"),
    ],
)
def test_suggestions_may_not_override_or_reach_beyond_their_remit(
    name: str, provided: dict[str, Any], already: dict[str, Any], reason: str
) -> None:
    result = run(Scripted(Suggestion(name, "fee", 1.0)), provided=provided, already_extracted=already)

    assert name not in result.values
    assert result.notes == (f"{name}: suggestion ignored, {reason}",)


def test_undeclared_signals_are_dropped_without_echoing_their_name() -> None:
    result = run(Scripted(Suggestion("Zorblatt wants money", True, 1.0)))

    assert result.values == {}
    assert result.notes == ("ignored a suggestion for an undeclared signal",)


NAMELESS = Suggestion(7, "refund", 1.0)  # type: ignore[arg-type]  # a malformed signal name, on purpose


@pytest.mark.parametrize("item", [("policy_keyword", "refund", 1.0), None, NAMELESS])
def test_malformed_suggestions_are_ignored(item: Any) -> None:
    result = run(Scripted(item))

    assert (result.values, result.notes) == ({}, ("ignored a malformed suggestion",))


@pytest.mark.parametrize("answer", [None, "refund", 42, iter([Suggestion("policy_keyword", "refund", 1.0)])])
def test_an_answer_that_is_not_a_sequence_gives_nothing(answer: Any) -> None:
    result = run(Returning(answer))

    assert (result.values, result.notes) == ({}, ("assisted extractor returned no sequence; no values taken",))


def test_a_timeout_gives_no_values_and_a_note_never_an_error() -> None:
    extractor = Blocking()
    try:
        result = run(extractor, timeout_s=0.05)
    finally:
        extractor.release.set()

    assert extractor.started.is_set()
    assert result == ObserveResult(notes=("assisted extractor timed out after 0.05s; no values taken",))


def test_an_exception_gives_a_note_naming_its_type_but_not_its_message() -> None:
    result = run(Raising())

    assert result == ObserveResult(notes=("assisted extractor failed (RuntimeError); no values taken",))
    assert "Zorblatt" not in json.dumps(result.to_dict())


def test_an_extractor_raising_timeout_error_itself_is_a_failure_not_a_timeout() -> None:
    class Raises:
        def suggest(self, text: str, signals: Sequence[Mapping[str, Any]]) -> Sequence[Suggestion]:
            raise TimeoutError

    assert run(Raises()).notes == ("assisted extractor failed (TimeoutError); no values taken",)


def test_the_most_confident_suggestion_per_signal_wins() -> None:
    extractor = Scripted(
        Suggestion("policy_keyword", "fee", 0.85),
        Suggestion("policy_keyword", "refund", 0.95),
        Suggestion("policy_keyword", "charge", 0.9),
    )

    result = run(extractor)

    assert result.values == {"policy_keyword": "refund"}
    assert result.provenance[0].confidence == 0.95


def test_equally_confident_conflicting_suggestions_are_all_dropped() -> None:
    result = run(Scripted(Suggestion("policy_keyword", "fee", 0.9), Suggestion("policy_keyword", "refund", 0.9)))

    assert result.values == {}
    assert result.notes == ("policy_keyword: conflicting suggestions at equal confidence; none taken",)


def test_a_conflict_is_resolved_by_a_later_more_confident_suggestion() -> None:
    extractor = Scripted(
        Suggestion("policy_keyword", "fee", 0.9),
        Suggestion("policy_keyword", "refund", 0.9),
        Suggestion("policy_keyword", "charge", 0.97),
    )

    assert run(extractor).values == {"policy_keyword": "charge"}


def test_equally_confident_agreeing_suggestions_are_taken() -> None:
    extractor = Scripted(Suggestion("monetary_amount", 250, 0.9), Suggestion("monetary_amount", 250.0, 0.9))

    assert run(extractor).values == {"monetary_amount": 250}


def test_values_follow_declaration_order_not_answer_order() -> None:
    extractor = Scripted(Suggestion("requires_escalation", False, 0.9), Suggestion("has_monetary_value", True, 0.9))

    assert list(run(extractor).values) == ["has_monetary_value", "requires_escalation"]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"min_confidence": 1.5},
        {"min_confidence": -0.1},
        {"min_confidence": math.nan},
        {"timeout_s": 0},
        {"timeout_s": -1},
        {"timeout_s": math.inf},
        {"timeout_s": math.nan},
    ],
)
def test_a_bad_configuration_is_a_value_error(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="must be"):
        run(Scripted(), **kwargs)


def test_merge_lets_deterministic_values_win_and_fills_the_rest() -> None:
    text = "A refund of $250."
    deterministic = extract(text, SIGNALS, {})
    extractor = Scripted(Suggestion("requires_escalation", True, 0.9))
    assisted = run_assisted(extractor, text, SIGNALS, {}, deterministic.values)
    forged = ObserveResult(
        values={"policy_keyword": "fee", "requires_escalation": True},
        provenance=(
            Provenance("policy_keyword", "fee", "assisted", "Forged", confidence=1.0),
            *assisted.provenance,
        ),
        notes=("a note",),
    )

    merged = merge(deterministic, forged)

    assert merged.values == {
        "has_monetary_value": True,
        "policy_keyword": "refund",
        "monetary_amount": 250,
        "requires_escalation": True,
    }
    assert [(p.signal, p.method) for p in merged.provenance] == [
        ("has_monetary_value", "derived_from_amount"),
        ("policy_keyword", "enum_word"),
        ("monetary_amount", "currency_amount"),
        ("requires_escalation", "assisted"),
    ]
    assert merged.notes == ("a note",)


def test_assisted_imports_only_the_standard_library_and_observe() -> None:
    tree = ast.parse(Path(mandate.assisted.__file__).read_text(encoding="utf-8"))
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.module is not None
            imported.add(node.module)

    assert imported <= {
        "__future__",
        "math",
        "threading",
        "collections.abc",
        "concurrent.futures",
        "dataclasses",
        "typing",
        "mandate.observe",
    }


def test_public_surface_is_deliberate() -> None:
    assert sorted(mandate.assisted.__all__) == ["AssistedExtractor", "Suggestion", "merge", "run_assisted"]
