"""The evaluation and its explanation: the structured record stored with a verdict, and its one-line summary.

The summary has one form per reason:

- policy:  `BLOCK by policy-block-unbackedup-drops-v1 (scope config-management.production.db-admin-tool,
  owner dba-team): backup_first == false`
- tie:     `BLOCK by pol-a, tied with pol-b (scope …, owner …): amount > 100 (actual 250)`
- default: `OBSERVE by default of spec spec-x@1: no policy matched (2 candidates)`
- error:   `PAUSE by failure mode of spec spec-x@1: amount must be a number, got string '12'`
- gap:     `OBSERVE by governance gap: no scope holds authority here (service=chat-api)`

`Evaluation.to_dict()` is JSON-ready and identical for identical inputs, byte for byte under
`json.dumps(..., sort_keys=True)`.
"""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import cached_property

from mandate.evaluator.operators import Operator
from mandate.evaluator.result import ConditionResult, EvaluationError, Gap, PolicyResult, Reason, Trace
from mandate.evaluator.verdicts import Verdict

EXPLANATION_FORMAT = 1
"""Version of the shape of `Evaluation.to_dict()`; bumped when the shape changes."""


@dataclass(frozen=True)
class Evaluation:
    """The verdict and everything that explains it. Built by `evaluate` and `governance_gap`.

    Everything that decides the verdict is computed by `evaluate`. The per-candidate detail (`policies`) and the
    `summary` are derived on first access, from the same pure tests: the hot path builds no per-condition objects.
    """

    verdict: Verdict
    reason: Reason
    organization_id: str
    domain: str
    spec_id: str | None = None
    spec_version: str | None = None
    snapshot_id: str | None = None
    snapshot_version: int | None = None
    scope_id: str | None = None
    owning_team: str | None = None
    ancestor_scope_ids: tuple[str, ...] = ()
    tied_scope_ids: tuple[str, ...] = ()
    winning_policy_id: str | None = None
    tied_policy_ids: tuple[str, ...] = ()  # the other matching policies with the winning verdict
    matched_policy_ids: tuple[str, ...] = ()  # sorted by policy_id
    pause_requires: tuple[str, ...] = ()
    expires_at: datetime | None = None
    failure_mode: Verdict | None = None  # the spec's, which decides when `errors` is not empty
    errors: tuple[EvaluationError, ...] = ()
    gap: Gap | None = None
    trace: Trace | None = None

    @cached_property
    def policies(self) -> tuple[PolicyResult, ...]:
        """Every candidate policy, by policy_id, with each condition's expected and actual value and result."""
        if self.trace is None:
            return ()
        values, invalid = self.trace.values, self.trace.invalid
        return tuple(candidate.explain(values, invalid) for candidate in self.trace.candidates)

    @cached_property
    def summary(self) -> str:
        """The one-line human sentence: the verdict, what decided it, under whose authority, and why."""
        if self.gap is not None:
            return f"{self.verdict} by governance gap: {self.gap.message}"
        spec = f"{self.spec_id}@{self.spec_version}"
        if self.winning_policy_id is not None:
            winner = next(policy for policy in self.policies if policy.policy_id == self.winning_policy_id)
            ties = f", tied with {', '.join(self.tied_policy_ids)}" if self.tied_policy_ids else ""
            authority = f"scope {self.scope_id}, owner {self.owning_team or 'unassigned'}"
            sentence = f"{self.verdict} by {winner.policy_id}{ties} ({authority}): {_conditions(winner)}"
            if self.errors:
                plural = "" if len(self.errors) == 1 else "s"
                sentence += f"; {len(self.errors)} evaluation error{plural}, failure mode {self.failure_mode}"
            return sentence
        if self.reason is Reason.DEFAULT:
            count = len(self.policies)
            return f"{self.verdict} by default of spec {spec}: no policy matched ({count} candidate{_s(count)})"
        more = f" (+{len(self.errors) - 1} more)" if len(self.errors) > 1 else ""
        return f"{self.verdict} by failure mode of spec {spec}: {self.errors[0].message}{more}"

    def to_dict(self) -> dict[str, object]:
        """The structured explanation as JSON-ready data (datetimes as ISO 8601, numbers as JSON numbers)."""
        return {
            "format": EXPLANATION_FORMAT,
            "verdict": self.verdict.value,
            "reason": self.reason.value,
            "summary": self.summary,
            "organization_id": self.organization_id,
            "domain": self.domain,
            "spec": None if self.spec_id is None else {"spec_id": self.spec_id, "version": self.spec_version},
            "snapshot": (
                None
                if self.snapshot_id is None
                else {"snapshot_id": self.snapshot_id, "version": self.snapshot_version}
            ),
            "scope": (
                None
                if self.scope_id is None
                else {
                    "scope_id": self.scope_id,
                    "owning_team": self.owning_team,
                    "ancestors": list(self.ancestor_scope_ids),
                    "tied_with": list(self.tied_scope_ids),
                }
            ),
            "winning_policy_id": self.winning_policy_id,
            "tied_policy_ids": list(self.tied_policy_ids),
            "matched_policy_ids": list(self.matched_policy_ids),
            "policies": [_policy_dict(policy) for policy in self.policies],
            "pause": (
                None
                if self.verdict is not Verdict.PAUSE
                else {"requires": list(self.pause_requires), "expires_at": jsonable(self.expires_at)}
            ),
            "failure_mode": None if self.failure_mode is None else self.failure_mode.value,
            "errors": [error._asdict() for error in self.errors],
            "gap": None if self.gap is None else self.gap._asdict(),
        }


def _s(count: int) -> str:
    return "" if count == 1 else "s"


def _conditions(policy: PolicyResult) -> str:
    if not policy.conditions:
        return "no conditions (always matches)"
    return " and ".join(render_condition(condition) for condition in policy.conditions)


def render_condition(condition: ConditionResult) -> str:
    """A satisfied condition: `content_length >= 1048576 (actual 2500000)`; `==` and `exists` say it all."""
    name = condition.signal
    operator = condition.operator
    if operator == Operator.EXISTS:
        return f"{name} exists" if condition.expected else f"{name} is absent"
    text = f"{name} {operator} {render(condition.expected)}"
    if operator == Operator.EQ:
        return text
    return f"{text} (actual {render(condition.actual)})"


def render(value: object) -> str:
    """A value as policies are written: strings bare, booleans in JSON spelling, lists in brackets."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(render(item) for item in value) + "]"
    return str(value)


def _policy_dict(policy: PolicyResult) -> dict[str, object]:
    return {
        "policy_id": policy.policy_id,
        "scope_id": policy.scope_id,
        "verdict": policy.verdict.value,
        "matched": policy.matched,
        "error": policy.error,
        "conditions": [
            {
                "signal": c.signal,
                "operator": c.operator,
                "expected": jsonable(c.expected),
                "actual": jsonable(c.actual),
                "absent": c.absent,
                "result": c.result,
                "error": c.error,
            }
            for c in policy.conditions
        ],
    }


def jsonable(value: object) -> object:
    """`value` as plain JSON data: Decimals become numbers, datetimes ISO 8601 strings, tuples lists.

    Explanations only hold acceptable signal values (finite numbers, strings, booleans), expected values checked at
    load, and datetimes.
    """
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [jsonable(item) for item in value]
    return value  # None, bool, int, float and str are JSON already
