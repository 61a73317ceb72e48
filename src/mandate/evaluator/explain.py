"""The evaluation and its explanation: the structured record stored with a verdict, and its one-line summary.

The summary has one form per reason:

- policy:  `BLOCK by policy-block-unbackedup-drops-v1 (scope config-management.prod.db-admin-tool,
  owner dba-team): backup_first == false` — the scope and owner are the winning policy's own (the authority); when
  that is an ancestor of the scope the decision resolved to, `…, owner dba-team; resolved scope <id>)`
- tie:     `BLOCK by pol-a, tied with pol-b (scope …, owner …): amount > 100 (actual 250)`
- default: `OBSERVE by default of spec spec-x@1: no policy matched (2 candidates)`
- error:   `PAUSE by failure mode of spec spec-x@1: amount must be a number, got string '12'`
- gap:     `OBSERVE by governance gap: no scope holds authority here (service=chat-api)`

`Evaluation.to_dict()` is JSON-ready and identical for identical inputs, byte for byte under
`json.dumps(..., sort_keys=True)`.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property

from mandate.evaluator.model import Decision, Scope, Spec
from mandate.evaluator.operators import Operator
from mandate.evaluator.result import ConditionResult, EvaluationError, Gap, PolicyResult, Reason, Trace, jsonable
from mandate.evaluator.scopes import ScopeResolution
from mandate.evaluator.snapshot import CompiledSnapshot
from mandate.evaluator.verdicts import Verdict

EXPLANATION_FORMAT = 2
"""Version of the shape of `Evaluation.to_dict()`; bumped when the shape changes."""


@dataclass(frozen=True, eq=False)
class Evaluation:
    """The verdict and everything that explains it. Built by `evaluate` and `governance_gap`.

    Everything that decides the verdict is computed by `evaluate`. The per-candidate detail (`policies`) and the
    `summary` are derived on first access, from the same pure tests: the hot path builds no per-condition objects.
    Compare evaluations through `to_dict()`.
    """

    verdict: Verdict
    reason: Reason
    decision: Decision = field(repr=False)
    spec: Spec | None = field(default=None, repr=False)
    snapshot: CompiledSnapshot | None = field(default=None, repr=False)
    resolution: ScopeResolution | None = field(default=None, repr=False)
    scope: Scope | None = field(default=None, repr=False)  # recorded: the tied scope holding the winning policy
    authority: Scope | None = field(default=None, repr=False)  # the winning policy's own scope
    winning_policy_id: str | None = None
    tied_policy_ids: tuple[str, ...] = ()  # the other matching policies with the winning verdict
    matched_policy_ids: tuple[str, ...] = ()  # sorted by policy_id
    failure_mode: Verdict | None = None  # the spec's, which decides when `errors` is not empty
    errors: tuple[EvaluationError, ...] = ()
    gap: Gap | None = None
    trace: Trace | None = field(default=None, repr=False)

    @property
    def organization_id(self) -> str:
        return self.decision.organization_id

    @property
    def domain(self) -> str:
        return self.decision.domain

    @property
    def spec_id(self) -> str | None:
        return None if self.spec is None else self.spec.spec_id

    @property
    def spec_version(self) -> str | None:
        return None if self.spec is None else self.spec.version

    @property
    def snapshot_id(self) -> str | None:
        return None if self.snapshot is None else self.snapshot.snapshot_id

    @property
    def snapshot_version(self) -> int | None:
        return None if self.snapshot is None else self.snapshot.version

    @property
    def scope_id(self) -> str | None:
        """The scope the verdict records: the resolved scope (of a tie, the one whose chain holds the winner)."""
        return None if self.scope is None else self.scope.scope_id

    @property
    def owning_team(self) -> str | None:
        return None if self.scope is None else self.scope.owning_team

    @property
    def ancestor_scope_ids(self) -> tuple[str, ...]:
        """The ancestors of the resolved scope(s) whose policies applied too, most specific first."""
        return () if self.resolution is None else tuple(scope.scope_id for scope in self.resolution.ancestors)

    @property
    def tied_scope_ids(self) -> tuple[str, ...]:
        """The other equally specific scopes that held authority too (by scope_id)."""
        if self.resolution is None:
            return ()
        tops = (self.resolution.scope, *self.resolution.tied_with)
        return tuple(scope.scope_id for scope in tops if scope is not self.scope)

    @property
    def pause_requires(self) -> tuple[str, ...]:
        """What resolving a PAUSE requires (the spec's enforcement); empty for other verdicts."""
        if self.verdict is not Verdict.PAUSE or self.spec is None:
            return ()
        return self.spec.enforcement.pause_requires

    @property
    def expires_at(self) -> datetime | None:
        """When a PAUSE stops waiting: the decision's timestamp plus the spec's resolution timeout.

        None for other verdicts, without a timeout, or beyond the calendar. Expired is not the same as denied.
        """
        minutes = (
            None
            if self.verdict is not Verdict.PAUSE or self.spec is None
            else self.spec.enforcement.resolution_timeout_minutes
        )
        if minutes is None:
            return None
        try:
            return self.decision.timestamp + timedelta(minutes=minutes)
        except OverflowError:
            return None

    @cached_property
    def policies(self) -> tuple[PolicyResult, ...]:
        """Every candidate policy, by policy_id, with each condition's expected and actual value and result."""
        if self.trace is None:
            return ()
        values, invalid = self.trace.values, self.trace.invalid
        return tuple(candidate.explain(values, invalid) for candidate in self.trace.candidates)

    def _explained(self, policy_id: str) -> PolicyResult:
        """One candidate's explanation (the summary needs the winner's only)."""
        if "policies" in self.__dict__:  # already built
            return next(policy for policy in self.policies if policy.policy_id == policy_id)
        assert self.trace is not None  # a winning policy was evaluated
        candidate = next(c for c in self.trace.candidates if c.policy_id == policy_id)
        return candidate.explain(self.trace.values, self.trace.invalid)

    def _policies_json(self) -> list[dict[str, object]]:
        """`policies` as JSON data, built straight from the trace (what the stored explanation holds)."""
        if self.trace is None:
            return []
        values, invalid = self.trace.values, self.trace.invalid
        return [candidate.explain_json(values, invalid) for candidate in self.trace.candidates]

    @cached_property
    def summary(self) -> str:
        """The one-line human sentence: the verdict, what decided it, under whose authority, and why."""
        if self.gap is not None:
            return f"{self.verdict} by governance gap: {self.gap.message}"
        spec = f"{self.spec_id}@{self.spec_version}"
        if self.winning_policy_id is not None:
            winner = self._explained(self.winning_policy_id)
            ties = f", tied with {', '.join(self.tied_policy_ids)}" if self.tied_policy_ids else ""
            owner = self.authority or self.scope
            authority = f"scope {winner.scope_id}, owner {(owner and owner.owning_team) or 'unassigned'}"
            if winner.scope_id != self.scope_id:
                authority += f"; resolved scope {self.scope_id}"
            sentence = f"{self.verdict} by {winner.policy_id}{ties} ({authority}): {_conditions(winner)}"
            if self.errors:
                plural = "" if len(self.errors) == 1 else "s"
                sentence += f"; {len(self.errors)} evaluation error{plural}, failure mode {self.failure_mode}"
            return sentence
        if self.reason is Reason.DEFAULT:
            count = 0 if self.trace is None else len(self.trace.candidates)
            none = "" if self.snapshot is not None else "; the domain has no policy snapshot yet"
            return f"{self.verdict} by default of spec {spec}: no policy matched ({count} candidate{_s(count)}{none})"
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
            "authority": (
                None
                if self.authority is None
                else {"scope_id": self.authority.scope_id, "owning_team": self.authority.owning_team}
            ),
            "winning_policy_id": self.winning_policy_id,
            "tied_policy_ids": list(self.tied_policy_ids),
            "matched_policy_ids": list(self.matched_policy_ids),
            "policies": self._policies_json(),
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
