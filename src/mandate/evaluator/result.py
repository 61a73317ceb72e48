"""The records an evaluation is made of: why (Reason), per-condition and per-policy results, errors, gaps."""

from collections.abc import Mapping, Sequence
from datetime import datetime
from enum import StrEnum
from typing import NamedTuple, Protocol

from mandate.evaluator.verdicts import Verdict


class Reason(StrEnum):
    """Why the verdict is what it is."""

    POLICY = "policy"  # one policy had the most severe matching verdict
    TIE = "tie"  # several matching policies shared the most severe verdict; the first by policy_id is reported
    DEFAULT = "default"  # no policy matched: the spec's default verdict
    ERROR = "error"  # evaluation failed somewhere: the spec's failure mode decided
    GAP = "gap"  # no active spec, or no scope holds authority: OBSERVE, nothing evaluated


class GapCode(StrEnum):
    """The governance gaps the ingestion path records (§3 steps 2 and 5)."""

    NO_ACTIVE_SPEC = "no_active_spec"
    NO_SCOPE = "no_scope"


class ConditionResult(NamedTuple):
    """One condition of a candidate policy, as evaluated. `actual` is None when the signal was absent."""

    signal: str
    operator: str
    expected: object
    actual: object
    absent: bool
    result: bool
    error: str | None = None


class PolicyResult(NamedTuple):
    """One candidate policy: bound to the resolved spec and to the resolved scope or one of its ancestors."""

    policy_id: str
    scope_id: str
    verdict: Verdict
    matched: bool  # every condition held and none failed
    conditions: tuple[ConditionResult, ...]
    error: str | None = None  # the first condition error, when any


class EvaluationError(NamedTuple):
    """Something that went wrong during evaluation; the spec's failure mode then decides (§3 step 9)."""

    code: str
    message: str
    policy_id: str | None = None
    signal: str | None = None


class Gap(NamedTuple):
    """Why nothing governs a decision: a `GapCode` and the sentence that says it."""

    code: str
    message: str


def jsonable(value: object) -> object:
    """`value` as plain JSON data: datetimes as ISO 8601 strings, tuples as lists.

    Explanations only hold acceptable signal values and checked expected values (ints, finite floats, strings,
    booleans; Decimals were read as floats), tuples of them, and datetimes.
    """
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [jsonable(item) for item in value]
    return value  # None, bool, int, float and str are JSON already


class Checked(Protocol):
    """A candidate's condition, as the summary renders it."""

    @property
    def signal(self) -> str: ...

    @property
    def operator(self) -> str: ...

    @property
    def expected(self) -> object: ...


class Explainable(Protocol):
    """A candidate policy that can explain itself against a decision's signal values."""

    @property
    def policy_id(self) -> str: ...

    @property
    def scope_id(self) -> str: ...

    @property
    def conditions(self) -> Sequence[Checked]: ...

    def explain(self, values: Mapping[str, object], invalid: frozenset[str]) -> PolicyResult: ...

    def explain_json(self, values: Mapping[str, object], invalid: frozenset[str]) -> dict[str, object]: ...


class Trace(NamedTuple):
    """What the per-candidate explanation is rebuilt from: the candidates and the decision's signal values."""

    candidates: tuple[Explainable, ...]
    values: Mapping[str, object]  # acceptable values, by signal name
    invalid: frozenset[str]  # signals present with an unacceptable value
