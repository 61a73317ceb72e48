"""Condition operators: which signal types each applies to, and how a condition becomes a test.

    ==  !=            every type; the value has the signal's type
    <  <=  >  >=      numbers only
    in  not_in        every type; the value is a list of values of the signal's type
    exists            every type; the value is true (present) or false (absent)

Values are compared with their declared types only: numbers with numbers (a boolean is never a number), strings
with strings, enum values with the spec's values. Conditions are checked and compiled once, when a snapshot is
loaded; at request time a condition is one call of a small function.
"""

from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import Any

from mandate.evaluator.model import Condition, SignalDef, SignalType
from mandate.evaluator.signals import describe, type_problem


class Operator(StrEnum):
    """The nine condition operators, spelled as policies write them."""

    EQ = "=="
    NE = "!="
    LT = "<"
    LE = "<="
    GT = ">"
    GE = ">="
    IN = "in"
    NOT_IN = "not_in"
    EXISTS = "exists"


ORDERING: frozenset[Operator] = frozenset({Operator.LT, Operator.LE, Operator.GT, Operator.GE})
MEMBERSHIP: frozenset[Operator] = frozenset({Operator.IN, Operator.NOT_IN})

Reader = Callable[[Mapping[str, Any]], bool]
"""A compiled condition or policy: does it hold for these signal values (acceptable ones, by name)?"""

_ABSENT = object()  # no signal value is this object; never equal to, nor a member of, anything a policy holds


def condition_problems(condition: Condition, signal: SignalDef) -> list[tuple[str, str, str]]:
    """(field, code, message) for every way `condition` breaks the type rules of `signal`.

    `field` is relative to the condition: `operator`, `value` or `value[1]`.
    """
    try:
        operator = Operator(condition.operator)
    except ValueError:
        known = ", ".join(Operator)
        return [("operator", "unknown_operator", f"unknown operator {condition.operator!r}; use one of {known}")]
    value = condition.value
    name = signal.name
    if operator is Operator.EXISTS:
        if isinstance(value, bool):
            return []
        return [("value", "type_mismatch", f"exists takes true or false, got {describe(value)}")]
    if operator in ORDERING and signal.type is not SignalType.NUMBER:
        return [
            (
                "operator",
                "operator_not_applicable",
                f"{operator} compares numbers only and {name} is {signal.type}; use ==, !=, in or not_in",
            )
        ]
    if operator in MEMBERSHIP:
        if not isinstance(value, list | tuple):
            return [("value", "not_a_list", f"{operator} takes a list of values, got {describe(value)}")]
        return [
            (f"value[{i}]", *_value_problem(signal, item, operator))
            for i, item in enumerate(value)
            if type_problem(signal, item) is not None
        ]
    if type_problem(signal, value) is None:
        return []
    return [("value", *_value_problem(signal, value, operator))]


def _value_problem(signal: SignalDef, value: object, operator: Operator) -> tuple[str, str]:
    if signal.type is SignalType.ENUM and isinstance(value, str):
        allowed = ", ".join(signal.values)
        return "value_not_in_enum", f"{value!r} is not a value of enum {signal.name} ({allowed})"
    needs = f"a list of {signal.type} values" if operator in MEMBERSHIP else f"a {signal.type} value"
    return "type_mismatch", f"{signal.name} is {signal.type}, so {operator} needs {needs}, got {describe(value)}"


def compile_condition(signal: str, operator: Operator, expected: Any) -> Reader:
    """Whether a checked condition holds for a decision's acceptable signal values, as one small function.

    An absent signal satisfies no operator but `exists: false`. Values are exact built-in types by then
    (`read_signals` and `condition_problems` see to it), so comparing them cannot fail.
    """
    if operator is Operator.EXISTS:
        if expected:
            return lambda values: signal in values
        return lambda values: signal not in values
    if operator in MEMBERSHIP:
        members = frozenset(expected)
        if operator is Operator.IN:
            return lambda values: values.get(signal, _ABSENT) in members
        return lambda values: (actual := values.get(signal, _ABSENT)) is not _ABSENT and actual not in members
    if operator is Operator.EQ:
        return lambda values: values.get(signal, _ABSENT) == expected
    if operator is Operator.NE:
        return lambda values: (actual := values.get(signal, _ABSENT)) is not _ABSENT and actual != expected
    if operator is Operator.LT:
        return lambda values: (actual := values.get(signal, _ABSENT)) is not _ABSENT and actual < expected
    if operator is Operator.LE:
        return lambda values: (actual := values.get(signal, _ABSENT)) is not _ABSENT and actual <= expected
    if operator is Operator.GT:
        return lambda values: (actual := values.get(signal, _ABSENT)) is not _ABSENT and actual > expected
    return lambda values: (actual := values.get(signal, _ABSENT)) is not _ABSENT and actual >= expected
