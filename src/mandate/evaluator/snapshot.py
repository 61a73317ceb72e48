"""Loading a policy snapshot: every policy checked against its spec and scope, then compiled and indexed.

A snapshot that breaks any rule is refused as a whole (`SnapshotError`, listing every problem). A loaded snapshot
indexes its policies by spec and scope, so evaluating a decision touches only the policies that can apply to it.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from itertools import chain
from operator import attrgetter

from mandate.evaluator.errors import LoadProblem, SnapshotError
from mandate.evaluator.model import Policy, Scope, Spec
from mandate.evaluator.operators import Operator, Test, compile_test, condition_problems
from mandate.evaluator.result import ConditionResult, PolicyResult
from mandate.evaluator.verdicts import Verdict


@dataclass(frozen=True, slots=True)
class CompiledCondition:
    """A checked condition with its test, compiled once at load."""

    signal: str
    operator: Operator
    expected: object  # as written; lists become tuples
    test: Test

    def check(self, values: Mapping[str, object], invalid: frozenset[str]) -> ConditionResult:
        """Evaluate against the decision's acceptable signal `values`; `invalid` names present but unacceptable ones."""
        signal = self.signal
        if signal in values:
            actual = values[signal]
            try:
                return ConditionResult(signal, self.operator, self.expected, actual, False, self.test(actual))
            except (TypeError, ValueError, ArithmeticError) as exc:
                error = f"cannot evaluate {signal} {self.operator} on {actual!r}: {exc}"
                return ConditionResult(signal, self.operator, self.expected, actual, False, False, error)
        if signal in invalid:
            error = f"signal {signal} has an unacceptable value"
            return ConditionResult(signal, self.operator, self.expected, None, False, False, error)
        absent_holds = self.operator is Operator.EXISTS and self.expected is False
        return ConditionResult(signal, self.operator, self.expected, None, True, absent_holds)


@dataclass(frozen=True, slots=True)
class CompiledPolicy:
    """A checked policy, ready to evaluate."""

    policy_id: str
    spec_id: str
    scope_id: str
    verdict: Verdict
    conditions: tuple[CompiledCondition, ...]
    tests: tuple[tuple[str, Test, bool], ...] = field(init=False, repr=False, compare=False)
    """(signal, test, result when absent) per condition: the hot path's view of `conditions`."""

    def __post_init__(self) -> None:
        tests = tuple(
            (c.signal, c.test, c.operator is Operator.EXISTS and c.expected is False) for c in self.conditions
        )
        object.__setattr__(self, "tests", tests)  # derived once, at load; the dataclass is frozen

    def holds(self, values: Mapping[str, object]) -> bool:
        """Whether every condition holds for these acceptable signal values (every condition is evaluated)."""
        held = True
        for signal, test, when_absent in self.tests:
            if signal in values:
                if not test(values[signal]):
                    held = False
            elif not when_absent:
                held = False
        return held

    def explain(self, values: Mapping[str, object], invalid: frozenset[str]) -> PolicyResult:
        """Each condition's expected and actual value and result; matched only when all hold and none failed."""
        checks = tuple(condition.check(values, invalid) for condition in self.conditions)
        error = next((check.error for check in checks if check.error is not None), None)
        matched = error is None and all(check.result for check in checks)
        return PolicyResult(self.policy_id, self.scope_id, self.verdict, matched, checks, error)


@dataclass(frozen=True, slots=True)
class CompiledSnapshot:
    """A loaded, immutable snapshot: its identity, its policies, and their index by spec and scope."""

    snapshot_id: str
    version: int
    organization_id: str
    domain: str
    policies: tuple[Policy, ...]
    index: Mapping[str, tuple[str, Mapping[str, tuple[CompiledPolicy, ...]]]] = field(repr=False)
    """spec_id -> (the spec version the policies were checked against, scope_id -> policies by policy_id)"""

    def checked_against(self, spec_id: str) -> str | None:
        """The version of `spec_id` its policies were checked against; None when no policy is bound to it."""
        entry = self.index.get(spec_id)
        return None if entry is None else entry[0]

    def candidates(self, spec_id: str, scope_ids: Iterable[str]) -> tuple[CompiledPolicy, ...]:
        """The policies bound to `spec_id` and to one of `scope_ids`, sorted by policy_id."""
        entry = self.index.get(spec_id)
        if entry is None:
            return ()
        by_scope = entry[1]
        groups = [group for scope_id in scope_ids if (group := by_scope.get(scope_id))]
        if len(groups) == 1:
            return groups[0]
        return tuple(sorted(chain.from_iterable(groups), key=_POLICY_ID))


_POLICY_ID = attrgetter("policy_id")


def compile_snapshot(
    snapshot_id: str,
    version: int,
    organization_id: str,
    domain: str,
    policies: Iterable[Policy],
    specs: Iterable[Spec],
    scopes: Iterable[Scope],
) -> CompiledSnapshot:
    """Check and compile the policies of one snapshot of (`organization_id`, `domain`).

    `specs` are the spec versions the policies are checked against (one per spec_id: the active ones), `scopes` the
    registered scopes. Raises `SnapshotError` listing every problem when any policy breaks a rule.
    """
    policies = tuple(policies)
    problems: list[LoadProblem] = []
    spec_by_id: dict[str, Spec] = {}
    for spec in specs:
        first = spec_by_id.setdefault(spec.spec_id, spec)
        if first is not spec:
            problems.append(
                LoadProblem(
                    spec.ref,
                    "version",
                    "duplicate_spec",
                    f"spec {spec.spec_id} is given in versions {first.version} and {spec.version};"
                    " check a snapshot against one version of each spec",
                )
            )
    scope_by_id = {scope.scope_id: scope for scope in scopes}
    home = (organization_id, domain)

    compiled: list[CompiledPolicy] = []
    seen: set[str] = set()
    for policy in policies:
        found = _policy_problems(policy, spec_by_id, scope_by_id, home)
        if policy.policy_id in seen:
            found.insert(
                0,
                LoadProblem(
                    policy.policy_id,
                    "policy_id",
                    "duplicate_policy",
                    f"policy id {policy.policy_id} is used twice in this snapshot; policy ids must be unique",
                ),
            )
        seen.add(policy.policy_id)
        problems.extend(found)
        if not found:
            compiled.append(_compile(policy))
    if problems:
        raise SnapshotError(f"snapshot {snapshot_id} (version {version})", problems)

    grouped: dict[str, dict[str, list[CompiledPolicy]]] = {}
    for compiled_policy in sorted(compiled, key=_POLICY_ID):
        by_scope = grouped.setdefault(compiled_policy.spec_id, {})
        by_scope.setdefault(compiled_policy.scope_id, []).append(compiled_policy)
    index = {
        spec_id: (spec_by_id[spec_id].version, {scope_id: tuple(group) for scope_id, group in by_scope.items()})
        for spec_id, by_scope in grouped.items()
    }
    return CompiledSnapshot(snapshot_id, version, organization_id, domain, policies, index)


def _policy_problems(
    policy: Policy, specs: Mapping[str, Spec], scopes: Mapping[str, Scope], home: tuple[str, str]
) -> list[LoadProblem]:
    problems: list[LoadProblem] = []

    def add(field: str, code: str, message: str) -> None:
        problems.append(LoadProblem(policy.policy_id, field, code, message))

    spec = specs.get(policy.spec_id)
    if spec is None:
        add("spec_id", "unknown_spec", f"spec {policy.spec_id} is not among the specs of this domain")
    elif (spec.organization_id, spec.domain) != home:
        add(
            "spec_id",
            "cross_domain_spec",
            f"spec {spec.ref} belongs to {_where(spec.organization_id, spec.domain, home)}, not to this"
            " snapshot's domain; a policy only applies within its own domain",
        )
        spec = None
    scope = scopes.get(policy.scope_id)
    if scope is None:
        add("scope_id", "unknown_scope", f"scope {policy.scope_id} is not registered; register it first")
    elif (scope.organization_id, scope.domain) != home:
        add(
            "scope_id",
            "cross_domain_scope",
            f"scope {scope.scope_id} belongs to {_where(scope.organization_id, scope.domain, home)}, not to this"
            " snapshot's domain; a policy only applies within its own domain",
        )
    if policy.verdict not in _VERDICTS:
        add("verdict", "unknown_verdict", f"unknown verdict {policy.verdict!r}; use ALLOW, PAUSE, BLOCK or OBSERVE")
    elif spec is not None and policy.verdict not in spec.allowed_verdicts:
        allowed = ", ".join(sorted(spec.allowed_verdicts))
        add("verdict", "verdict_not_allowed", f"spec {spec.ref} does not allow {policy.verdict} (allowed: {allowed})")
    if spec is not None:
        signals = {signal.name: signal for signal in spec.signals}
        for i, condition in enumerate(policy.conditions):
            signal = signals.get(condition.signal)
            if signal is None:
                declared = ", ".join(signals) or "none"
                add(
                    f"conditions[{i}].signal",
                    "unknown_signal",
                    f"{condition.signal!r} is not a signal of spec {spec.ref} (declared: {declared})",
                )
                continue
            for field, code, message in condition_problems(condition, signal):
                add(f"conditions[{i}].{field}", code, message)
    return problems


_VERDICTS = frozenset(Verdict)


def _where(organization_id: str, domain: str, home: tuple[str, str]) -> str:
    if organization_id != home[0]:
        return f"organization {organization_id}"
    return f"domain {domain}"


def _compile(policy: Policy) -> CompiledPolicy:
    conditions = []
    for condition in policy.conditions:
        operator = Operator(condition.operator)
        value = condition.value
        expected = tuple(value) if isinstance(value, list | tuple) else value
        conditions.append(CompiledCondition(condition.signal, operator, expected, compile_test(operator, expected)))
    return CompiledPolicy(policy.policy_id, policy.spec_id, policy.scope_id, Verdict(policy.verdict), tuple(conditions))
