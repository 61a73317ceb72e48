"""Assisted extraction: an optional, non-authoritative second opinion (for example an LLM).

Off by default. When a deployment configures an ``AssistedExtractor``, the service runs it **after** the
deterministic extractors of ``mandate.observe`` and merges the two with ``merge`` — deterministic values always
win. ``run_assisted`` treats the extractor as foreign code at a process edge:

- it only sees the declarations it may fill: ``enum``, ``boolean`` and ``number`` context signals that the agent
  did not send and the deterministic extractors did not fill;
- it runs in a daemon thread with a timeout; a timeout, an exception or a malformed answer gives no values and a
  note, never an error to the caller;
- a suggestion is kept only if its signal is one of those declarations, its confidence is a number in [0, 1] at or
  above ``min_confidence``, and its value already has the declared type (an enum value exactly as declared, a
  ``bool`` for a boolean, a finite ``int``/``float`` for a number) — nothing is coerced;
- ``string`` signals are never filled here: a free-form value could carry the text, which must not be stored;
- notes name declared signals and reasons only; they never quote the text, a suggested value, an undeclared
  signal name or an exception message.

Kept values carry provenance method ``assisted`` with their confidence and the extractor's class name as pattern.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Protocol

from mandate.observe import ObserveResult, Provenance, SignalValue, fillable_signals

__all__ = ["AssistedExtractor", "Suggestion", "merge", "run_assisted"]

_ASSISTABLE_TYPES = frozenset({"enum", "boolean", "number"})


@dataclass(frozen=True, slots=True)
class Suggestion:
    """One proposed value. ``value`` is untrusted until ``run_assisted`` has checked it against the spec."""

    signal: str
    value: object
    confidence: float


class AssistedExtractor(Protocol):
    """Anything that can propose signal values for a text, with a confidence in [0, 1] for each."""

    def suggest(self, text: str, signals: Sequence[Mapping[str, Any]]) -> Sequence[Suggestion]:
        """Propose values for some of ``signals`` (the declarations it may fill) from ``text``."""
        ...


def _valid_value(decl: Mapping[str, Any], value: object) -> SignalValue | None:
    """``value`` if it already has the declared type, else ``None``. No coercion: ``"true"`` is not a boolean."""
    kind = decl.get("type")
    if kind == "boolean":
        return value if isinstance(value, bool) else None
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        return value if math.isfinite(value) else None
    declared = decl.get("values")
    if isinstance(value, str) and isinstance(declared, list | tuple) and value in declared:
        return value
    return None  # enum: not exactly one of the declared values


def _valid_confidence(confidence: object) -> float | None:
    if isinstance(confidence, bool) or not isinstance(confidence, int | float):
        return None
    if not 0.0 <= confidence <= 1.0:  # also rejects NaN
        return None
    return float(confidence)


def _call(
    extractor: AssistedExtractor, text: str, signals: Sequence[Mapping[str, Any]], timeout_s: float
) -> tuple[Sequence[Suggestion] | None, str | None]:
    """Run the extractor in a daemon thread: (suggestions, None) or (None, a note saying what went wrong).

    A daemon thread rather than an executor: a hung extractor must not hold up interpreter exit. It does keep its
    thread until it returns, so an extractor should enforce its own deadline (its HTTP client's timeout).
    """
    future: Future[Sequence[Suggestion]] = Future()

    def work() -> None:
        try:
            future.set_result(extractor.suggest(text, signals))
        except Exception as exc:  # foreign code: its failure is reported through the future, not raised here
            future.set_exception(exc)

    threading.Thread(target=work, name="mandate-assisted-extractor", daemon=True).start()
    try:
        error = future.exception(timeout=timeout_s)
    except TimeoutError:
        return None, f"assisted extractor timed out after {timeout_s:g}s; no values taken"
    if error is not None:
        return None, f"assisted extractor failed ({type(error).__name__}); no values taken"
    return future.result(), None


def run_assisted(
    extractor: AssistedExtractor,
    text: str,
    signals: Sequence[Mapping[str, Any]],
    provided: Mapping[str, Any],
    already_extracted: Mapping[str, Any],
    *,
    min_confidence: float = 0.8,
    timeout_s: float = 2.0,
) -> ObserveResult:
    """Ask ``extractor`` for the signals nobody has filled yet, and keep only what passes every check.

    ``already_extracted`` is the deterministic result's ``values``. Raises ``ValueError`` only for a bad
    configuration (``min_confidence`` outside [0, 1], ``timeout_s`` not positive and finite); never for the extractor's
    behaviour.
    """
    if not 0.0 <= min_confidence <= 1.0:
        raise ValueError(f"min_confidence must be between 0 and 1, got {min_confidence!r}")
    if not (timeout_s > 0 and math.isfinite(timeout_s)):
        raise ValueError(f"timeout_s must be a positive, finite number of seconds, got {timeout_s!r}")

    declared: dict[str, Mapping[str, Any]] = {}
    for decl in signals:
        name = decl.get("name")
        if isinstance(name, str):
            declared.setdefault(name, decl)
    eligible = {
        decl["name"]: decl
        for decl in fillable_signals(signals, provided)
        if decl["name"] not in already_extracted and decl.get("type") in _ASSISTABLE_TYPES
    }
    if not eligible:
        return ObserveResult()

    suggestions, failure = _call(extractor, text, tuple(eligible.values()), timeout_s)
    if suggestions is None or isinstance(suggestions, str) or not isinstance(suggestions, Sequence):
        return ObserveResult(notes=(failure or "assisted extractor returned no sequence; no values taken",))

    notes: list[str] = []
    best, conflicted = _best_suggestions(
        suggestions, _Checks(declared, eligible, provided, already_extracted, min_confidence), notes
    )
    values: dict[str, SignalValue] = {}
    provenance: list[Provenance] = []
    for name in eligible:  # declaration order, whatever order the extractor answered in
        if name not in best:
            continue
        if name in conflicted:
            notes.append(f"{name}: conflicting suggestions at equal confidence; none taken")
            continue
        confidence, value = best[name]
        values[name] = value
        provenance.append(
            Provenance(
                signal=name,
                value=value,
                method="assisted",
                pattern=type(extractor).__name__,
                confidence=confidence,
            )
        )
    return ObserveResult(values=values, provenance=tuple(provenance), notes=tuple(notes))


@dataclass(frozen=True)
class _Checks:
    """What a suggestion is checked against: the declared signals, those it may fill, and the confidence floor."""

    declared: Mapping[str, Mapping[str, Any]]
    eligible: Mapping[str, Mapping[str, Any]]
    provided: Mapping[str, Any]
    already_extracted: Mapping[str, Any]
    min_confidence: float


def _best_suggestions(
    suggestions: Sequence[object], checks: _Checks, notes: list[str]
) -> tuple[dict[str, tuple[float, SignalValue]], set[str]]:
    """Per signal, the most confident acceptable suggestion, and the signals with two different values at that
    confidence; why each other suggestion was ignored goes to `notes`."""
    best: dict[str, tuple[float, SignalValue]] = {}
    conflicted: set[str] = set()
    for suggestion in suggestions:
        accepted = _accepted(suggestion, checks, notes)
        if accepted is None:
            continue
        name, confidence, value = accepted
        held = best.get(name)
        if held is None or confidence > held[0]:
            best[name] = (confidence, value)
            conflicted.discard(name)
        elif confidence == held[0] and value != held[1]:
            conflicted.add(name)
    return best, conflicted


def _accepted(suggestion: object, checks: _Checks, notes: list[str]) -> tuple[str, float, SignalValue] | None:
    """(signal, confidence, value) of a suggestion that passes every check; else None, with the reason in `notes`."""
    if not isinstance(suggestion, Suggestion) or not isinstance(suggestion.signal, str):
        notes.append("ignored a malformed suggestion")
        return None
    name = suggestion.signal
    if name not in checks.declared:
        notes.append("ignored a suggestion for an undeclared signal")
        return None
    target = checks.eligible.get(name)
    if target is None:
        why = _why_not_eligible(checks.declared[name], checks.provided, checks.already_extracted)
        notes.append(f"{name}: {why}")
        return None
    confidence = _valid_confidence(suggestion.confidence)
    if confidence is None:
        notes.append(f"{name}: suggestion ignored, confidence is not a number between 0 and 1")
        return None
    if confidence < checks.min_confidence:
        notes.append(f"{name}: suggestion ignored, confidence below {checks.min_confidence:g}")
        return None
    value = _valid_value(target, suggestion.value)
    if value is None:
        notes.append(f"{name}: suggestion ignored, value is not a valid {target.get('type')}")
        return None
    return name, confidence, value


def _why_not_eligible(
    decl: Mapping[str, Any], provided: Mapping[str, Any], already_extracted: Mapping[str, Any]
) -> str:
    name = decl["name"]
    if decl.get("source", "context") != "context":
        return "suggestion ignored, not a context signal"
    if name in provided:
        return "suggestion ignored, the agent sent this signal"
    if name in already_extracted:
        return "suggestion ignored, already extracted deterministically"
    return f"suggestion ignored, {decl.get('type')} signals are not filled by assisted extraction"


def merge(deterministic: ObserveResult, assisted: ObserveResult) -> ObserveResult:
    """Deterministic values first and always winning; assisted values only for signals still empty."""
    values = dict(deterministic.values)
    for name, value in assisted.values.items():
        values.setdefault(name, value)
    provenance = deterministic.provenance + tuple(
        record for record in assisted.provenance if record.signal not in deterministic.values
    )
    return ObserveResult(values=values, provenance=provenance, notes=deterministic.notes + assisted.notes)
