"""Reading a decision's signal values as its spec declares them, and checking them.

Values come from the decision's `context`, its scope `attribution` or its `timestamp`, as each signal's `source`
says. Types are exact: a boolean is not a number, "5" is not 5, an enum value must be one the spec lists. Context
keys the spec does not declare are ignored. A null value counts as absent.
"""

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from mandate.evaluator.model import Decision, SignalDef, SignalSource, SignalType, Spec

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SECOND = timedelta(seconds=1)
_NUMBER_TYPES = (int, float, Decimal)
_PLAIN: dict[SignalType, type] = {
    SignalType.NUMBER: int,
    SignalType.STRING: str,
    SignalType.ENUM: str,
    SignalType.BOOLEAN: bool,
}  # the exact type of a value that is certainly acceptable (enums must also be among the values)


@dataclass(frozen=True, slots=True)
class SignalProblem:
    """Why one signal value of a decision is unacceptable (`code`: missing, wrong_type, not_finite, not_in_enum)."""

    signal: str
    code: str
    message: str


def as_number(value: object) -> int | float | None:
    """`value` as a plain int or float when it is a finite number (Decimals become floats); else None.

    Only the exact built-in types count: a boolean is not a number, and neither is a subclass that could redefine
    comparison. Numbers are compared as Python compares ints and floats, never under a decimal context.
    """
    if type(value) not in _NUMBER_TYPES:
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, Decimal):
        value = float(value) if value.is_finite() else math.nan
    return value if isinstance(value, float) and math.isfinite(value) else None


def describe(value: object) -> str:
    """`value` with its JSON type, for messages: `string 'yes'`, `boolean true`."""
    kind = type(value)
    if kind is bool:
        return f"boolean {str(value).lower()}"
    if kind in _NUMBER_TYPES:
        return f"number {value}"
    if kind is str:
        return f"string {value!r}"
    if value is None:
        return "null"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return f"a {kind.__name__}"


def type_problem(signal: SignalDef, value: object) -> tuple[str, str] | None:
    """(code, message) when `value` is not a legal value of `signal`, else None. Types are exact, never coerced."""
    kind = signal.type
    if kind is SignalType.NUMBER:
        if as_number(value) is not None:
            return None
        if type(value) in _NUMBER_TYPES:
            return "not_finite", f"{signal.name} must be a finite number, got {describe(value)}"
        return "wrong_type", f"{signal.name} must be a number, got {describe(value)}"
    if kind is SignalType.ENUM:
        if type(value) is not str:
            return "wrong_type", f"{signal.name} must be one of {', '.join(signal.values)}, got {describe(value)}"
        if value not in signal.values:
            return "not_in_enum", f"{signal.name} must be one of {', '.join(signal.values)}, got {value!r}"
        return None
    if type(value) is (str if kind is SignalType.STRING else bool):
        return None
    return "wrong_type", f"{signal.name} must be a {kind}, got {describe(value)}"


def read_signals(spec: Spec, decision: Decision) -> tuple[dict[str, object], list[SignalProblem]]:
    """The decision's acceptable signal values by name (absent ones left out), and every problem found."""
    values: dict[str, object] = {}
    problems: list[SignalProblem] = []
    context = decision.context
    attribution = decision.attribution
    for signal in spec.signals:
        source = signal.source
        value: object
        if source is SignalSource.CONTEXT:
            value = context.get(signal.name)
        elif source is SignalSource.SCOPE:
            value = attribution.get(signal.name)
        else:
            value = timestamp_value(signal.type, decision.timestamp)
        if value is None:
            if signal.required:
                where = "context" if source is SignalSource.CONTEXT else "scope attribution"
                problems.append(
                    SignalProblem(signal.name, "missing", f"required signal {signal.name} is missing from the {where}")
                )
            continue
        if type(value) is _PLAIN[signal.type] and (not signal.values or value in signal.values):
            values[signal.name] = value  # the common case, decided without a call
            continue
        problem = type_problem(signal, value)
        if problem is None:
            values[signal.name] = as_number(value) if signal.type is SignalType.NUMBER else value
        else:
            problems.append(SignalProblem(signal.name, *problem))
    return values, problems


def validate_signals(spec: Spec, decision: Decision) -> list[SignalProblem]:
    """Every problem with the decision's signals (§3 step 4); empty when they are all acceptable."""
    return read_signals(spec, decision)[1]


def resolve_signals(spec: Spec, decision: Decision) -> dict[str, object]:
    """The decision's effective, acceptable signal values by name; absent and unacceptable ones are left out."""
    return read_signals(spec, decision)[0]


def timestamp_value(kind: SignalType, timestamp: datetime) -> object:
    """A timestamp as a signal of type `kind`: epoch seconds for numbers, ISO 8601 in UTC for strings."""
    moment = timestamp.replace(tzinfo=UTC) if timestamp.tzinfo is None else timestamp.astimezone(UTC)
    if kind is SignalType.NUMBER:
        elapsed = moment - _EPOCH
        return elapsed / _SECOND if elapsed.microseconds else elapsed // _SECOND
    if kind is SignalType.STRING:
        return moment.isoformat()
    return moment  # no other type can carry a timestamp; type_problem reports it
