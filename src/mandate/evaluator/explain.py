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

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property

from mandate.evaluator.model import Decision, Scope, Spec
from mandate.evaluator.operators import Operator
from mandate.evaluator.result import (
    EvaluationError,
    Explainable,
    Gap,
    PolicyResult,
    Reason,
    Trace,
    jsonable,
)
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

    def _winner(self) -> Explainable:
        """The winning candidate (the summary renders its conditions)."""
        assert self.trace is not None  # a winning policy was evaluated
        return next(c for c in self.trace.candidates if c.policy_id == self.winning_policy_id)

    def _policies_json(self) -> list[dict[str, object]]:
        """`policies` as JSON data, built straight from the trace (what the stored explanation holds)."""
        if self.trace is None:
            return []
        values, invalid = self.trace.values, self.trace.invalid
        return [candidate.explain_json(values, invalid) for candidate in self.trace.candidates]

    @property
    def summary(self) -> str:
        """The one-line human sentence: the verdict, what decided it, under whose authority, and why."""
        # Kept in the instance's __dict__ rather than by functools.cached_property, whose lock (Python 3.11) costs as
        # much as building a short sentence; an evaluation is built and read by one task.
        found = self.__dict__.get("_summary")
        if found is None:
            found = self.__dict__["_summary"] = self._summarize()
        return found

    def _summarize(self) -> str:
        if self.gap is not None:
            return f"{self.verdict} by governance gap: {self.gap.message}"
        spec = f"{self.spec_id}@{self.spec_version}"
        if self.winning_policy_id is not None:
            assert self.trace is not None  # a winning policy was evaluated
            winner = self._winner()
            ties = f", tied with {', '.join(self.tied_policy_ids)}" if self.tied_policy_ids else ""
            owner = self.authority or self.scope
            authority = f"scope {winner.scope_id}, owner {(owner and owner.owning_team) or 'unassigned'}"
            if winner.scope_id != self.scope_id:
                authority += f"; resolved scope {self.scope_id}"
            sentence = f"{self.verdict} by {winner.policy_id}{ties} ({authority}): {_held(winner, self.trace.values)}"
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
        # Each property read once (this runs for every decision stored).
        spec_id, snapshot_id, scope_id, authority, verdict = (
            self.spec_id, self.snapshot_id, self.scope_id, self.authority, self.verdict
        )  # fmt: skip
        return {
            "format": EXPLANATION_FORMAT,
            "verdict": verdict.value,
            "reason": self.reason.value,
            "summary": self.summary,
            "organization_id": self.organization_id,
            "domain": self.domain,
            "spec": None if spec_id is None else {"spec_id": spec_id, "version": self.spec_version},
            "snapshot": None if snapshot_id is None else {"snapshot_id": snapshot_id, "version": self.snapshot_version},
            "scope": (
                None
                if scope_id is None
                else {
                    "scope_id": scope_id,
                    "owning_team": self.owning_team,
                    "ancestors": list(self.ancestor_scope_ids),
                    "tied_with": list(self.tied_scope_ids),
                }
            ),
            "authority": (
                None if authority is None else {"scope_id": authority.scope_id, "owning_team": authority.owning_team}
            ),
            "winning_policy_id": self.winning_policy_id,
            "tied_policy_ids": list(self.tied_policy_ids),
            "matched_policy_ids": list(self.matched_policy_ids),
            "policies": self._policies_json(),
            "pause": (
                None
                if verdict is not Verdict.PAUSE
                else {"requires": list(self.pause_requires), "expires_at": jsonable(self.expires_at)}
            ),
            "failure_mode": None if self.failure_mode is None else self.failure_mode.value,
            "errors": [error._asdict() for error in self.errors],
            "gap": None if self.gap is None else self.gap._asdict(),
        }


def _s(count: int) -> str:
    return "" if count == 1 else "s"


def _held(policy: Explainable, values: Mapping[str, object]) -> str:
    """The conditions of a matched policy, as they held for these signal values (every one did: a policy with an
    unacceptable signal in a condition never matches)."""
    if not policy.conditions:
        return "no conditions (always matches)"
    return " and ".join(
        render_condition(c.signal, c.operator, c.expected, values.get(c.signal)) for c in policy.conditions
    )


def render_condition(name: str, operator: str, expected: object, actual: object) -> str:
    """A satisfied condition: `content_length >= 1048576 (actual 2500000)`; `==` and `exists` say it all."""
    if operator == Operator.EXISTS:
        return f"{name} exists" if expected else f"{name} is absent"
    text = f"{name} {operator} {render(expected)}"
    if operator == Operator.EQ:
        return text
    return f"{text} (actual {render(actual)})"


def render(value: object) -> str:
    """A value as policies are written: strings bare, booleans in JSON spelling, lists in brackets."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(render(item) for item in value) + "]"
    return str(value)
