"""What would flip a verdict: the smallest sets of signal changes that give another verdict ("would be PAUSE
instead of BLOCK if backup_first were true").

`flips` reads a stored explanation (`Evaluation.to_dict()`: every candidate policy with each condition's operator,
expected and actual value), so it needs no governance lookup and works for any decision ever stored — at read
time, adding nothing to ingestion. It is pure and deterministic, and bounded: at most `budget` hypothetical
evaluations, each a few condition tests.

The changes tried for a signal are the values its conditions name and the values just beside them (for numbers
`expected - 1`, `expected`, `expected + 1`; for booleans the opposite), and, when the spec's declarations are given,
every declared enum value. Single
changes come first; pairs of signals are tried only when no single change flips the verdict. A verdict decided by
an evaluation error or a governance gap has no flips: no signal value decides it.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations, product
from typing import Any

from mandate.evaluator.explain import render
from mandate.evaluator.model import SignalDef, SignalType
from mandate.evaluator.operators import Operator, Reader, compile_condition
from mandate.evaluator.verdicts import Verdict, resolve_verdict

_ABSENT = object()


@dataclass(frozen=True, slots=True)
class Flip:
    """Signal changes (name, new value) after which the verdict would be `verdict`."""

    changes: tuple[tuple[str, object], ...]
    verdict: Verdict

    def sentence(self, current: str) -> str:
        changes = " and ".join(f"{name} were {render(value)}" for name, value in self.changes)
        return f"would be {self.verdict} instead of {current} if {changes}"

    def to_dict(self, current: str) -> dict[str, object]:
        return {
            "changes": [{"signal": name, "value": value} for name, value in self.changes],
            "verdict": self.verdict.value,
            "sentence": self.sentence(current),
        }


@dataclass(frozen=True, slots=True)
class _Candidate:
    verdict: Verdict
    readers: tuple[Reader, ...]

    def holds(self, values: Mapping[str, object]) -> bool:
        return all(reader(values) for reader in self.readers)


def flips(
    explanation: Mapping[str, Any],
    default: Verdict,
    signals: Sequence[SignalDef] = (),
    *,
    limit: int = 5,
    budget: int = 256,
) -> tuple[Flip, ...]:
    """The minimal flips of a stored explanation's verdict; `default` is its spec's default verdict, `signals` its
    spec's declarations (optional: they add every declared enum value and both booleans to the values tried)."""
    if explanation.get("reason") not in ("policy", "tie", "default"):
        return ()
    current = Verdict(explanation["verdict"])
    candidates: list[_Candidate] = []
    values: dict[str, object] = {}
    options: dict[str, list[object]] = {}
    for policy in explanation.get("policies") or ():
        readers = []
        for c in policy["conditions"]:
            expected = _frozen(c["expected"])
            readers.append(compile_condition(c["signal"], Operator(c["operator"]), expected))
            if not c["absent"]:
                values[c["signal"]] = _frozen(c["actual"])
            options.setdefault(c["signal"], []).extend(_near(Operator(c["operator"]), expected))
        candidates.append(_Candidate(Verdict(policy["verdict"]), tuple(readers)))

    def verdict_with(changes: Iterable[tuple[str, object]]) -> Verdict:
        trial = {**values, **dict(changes)}
        return resolve_verdict((c.verdict for c in candidates if c.holds(trial)), default)

    if verdict_with(()) is not current:
        return ()  # the explanation does not reproduce its own verdict: nothing sound to say
    for signal in signals:
        if signal.name in options:
            options[signal.name].extend(signal.values or ((True, False) if signal.type is SignalType.BOOLEAN else ()))
    choices = {name: _choices(values.get(name, _ABSENT), tried) for name, tried in sorted(options.items())}
    found: dict[tuple[tuple[str, ...], Verdict], Flip] = {}
    spent = 0
    for size in (1, 2):
        for names in combinations(sorted(choices), size):
            for picked in product(*(choices[name] for name in names)):
                if spent >= budget:
                    break
                spent += 1
                changes = tuple(zip(names, picked, strict=True))
                verdict = verdict_with(changes)
                if verdict is not current:
                    found.setdefault((names, verdict), Flip(changes, verdict))  # the nearest value comes first
        if found:
            break
    return tuple(sorted(found.values(), key=lambda f: ([n for n, _ in f.changes], f.verdict.value)))[:limit]


def _frozen(value: object) -> object:
    return tuple(value) if isinstance(value, list) else value


def _near(operator: Operator, expected: object) -> list[object]:
    """The values a condition names, and those just beside them."""
    if operator is Operator.EXISTS:
        return []  # presence alone cannot be given a value; other conditions on the signal name some
    if isinstance(expected, tuple):
        return list(expected)
    if isinstance(expected, bool):
        return [expected, not expected]
    if isinstance(expected, int | float):
        return [expected - 1, expected, expected + 1]
    return [expected]


def _choices(actual: object, tried: Sequence[object]) -> list[object]:
    """Distinct values other than `actual`, nearest to it first (numbers), else in the order conditions name them."""
    distinct: list[object] = []
    for value in tried:
        if value != actual and not any(value == seen and type(value) is type(seen) for seen in distinct):
            distinct.append(value)
    if isinstance(actual, int | float) and not isinstance(actual, bool):
        numbers = [v for v in distinct if isinstance(v, int | float) and not isinstance(v, bool)]
        return sorted(numbers, key=lambda v: (abs(v - actual), v)) + [v for v in distinct if v not in numbers]
    return distinct
