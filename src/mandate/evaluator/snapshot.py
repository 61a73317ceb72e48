"""Loading a policy snapshot: every policy checked against its spec and scope, then compiled and indexed.

Two ways to load, one set of rules:

- `compile_snapshot` is for governance being published (`mandate apply`): a snapshot that breaks any rule is refused
  as a whole (`SnapshotError`, listing every problem).
- `load_snapshot` is for governance already stored, which the server must serve whatever it holds (MANDATE.md §3a):
  problems are contained to the narrowest unit. A policy bound to no spec of the domain can never apply and is
  reported; a policy bound to a spec but not compilable marks *that spec* broken in the snapshot, so that every
  evaluation of it is an evaluation error and the spec's failure mode decides, while other specs are unaffected.

A loaded snapshot indexes its policies by spec and scope, so evaluating a decision touches only the policies that
can apply to it.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from itertools import chain
from operator import attrgetter

from mandate.evaluator.errors import LoadProblem, SnapshotError
from mandate.evaluator.model import Policy, Scope, SignalType, Spec
from mandate.evaluator.operators import Operator, Reader, compile_condition, condition_problems
from mandate.evaluator.result import ConditionResult, PolicyResult, jsonable
from mandate.evaluator.signals import as_number
from mandate.evaluator.verdicts import Verdict


@dataclass(frozen=True, slots=True)
class CompiledCondition:
    """A checked condition and the function that evaluates it, compiled once at load."""

    signal: str
    operator: Operator
    expected: object  # as written, with lists as tuples and Decimals as floats
    holds: Reader
    expected_json: object = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "expected_json", jsonable(self.expected))  # frozen: set once

    def check(self, values: Mapping[str, object], invalid: frozenset[str]) -> ConditionResult:
        """Explain the condition against the acceptable signal `values`; `invalid` names unacceptable ones."""
        signal = self.signal
        if signal in invalid:
            error = f"signal {signal} has an unacceptable value"
            return ConditionResult(signal, self.operator, self.expected, None, False, False, error)
        actual = values.get(signal)  # acceptable values are never None
        return ConditionResult(signal, self.operator, self.expected, actual, actual is None, self.holds(values))


_PLAIN = frozenset({str, int, float, bool})
"""Signal values that are JSON data as they are."""


@dataclass(frozen=True, slots=True)
class CompiledPolicy:
    """A checked policy, ready to evaluate: `holds(values)` is the whole of its conditions, ANDed."""

    policy_id: str
    spec_id: str
    scope_id: str
    verdict: Verdict
    conditions: tuple[CompiledCondition, ...]
    holds: Reader = field(init=False, repr=False, compare=False)
    verdict_value: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "holds", _all_hold([c.holds for c in self.conditions]))  # frozen: set once
        object.__setattr__(self, "verdict_value", self.verdict.value)

    def explain(self, values: Mapping[str, object], invalid: frozenset[str]) -> PolicyResult:
        """Every condition's expected and actual value and result; matched when all hold and none failed."""
        checks = tuple(condition.check(values, invalid) for condition in self.conditions)
        error = next((check.error for check in checks if check.error is not None), None)
        matched = error is None and all(check.result for check in checks)
        return PolicyResult(self.policy_id, self.scope_id, self.verdict, matched, checks, error)

    def explain_json(self, values: Mapping[str, object], invalid: frozenset[str]) -> dict[str, object]:
        """`explain` as the stored explanation holds it (JSON data), built directly: the same values, no records."""
        checks: list[dict[str, object]] = []
        error: str | None = None
        matched = True
        for condition in self.conditions:
            signal, expected = condition.signal, condition.expected_json
            if type(expected) is list:  # each explanation its own list
                expected = expected.copy()
            if signal in invalid:
                failed = f"signal {signal} has an unacceptable value"
                error = error or failed
                checks.append(
                    {"signal": signal, "operator": condition.operator, "expected": expected, "actual": None,
                     "absent": False, "result": False, "error": failed}
                )  # fmt: skip
                continue
            actual = values.get(signal)  # acceptable values are never None
            result = condition.holds(values)
            matched = matched and bool(result)
            checks.append(
                {"signal": signal, "operator": condition.operator, "expected": expected,
                 "actual": actual if actual is None or type(actual) in _PLAIN else jsonable(actual),
                 "absent": actual is None, "result": result, "error": None}
            )  # fmt: skip
        return {
            "policy_id": self.policy_id,
            "scope_id": self.scope_id,
            "verdict": self.verdict_value,
            "matched": error is None and matched,
            "error": error,
            "conditions": checks,
        }


def _all_hold(readers: list[Reader]) -> Reader:
    """The conjunction of `readers`, stopping at the first that does not hold."""
    if not readers:
        return lambda values: True
    if len(readers) == 1:
        return readers[0]
    if len(readers) == 2:
        first, second = readers
        return lambda values: first(values) and second(values)
    if len(readers) == 3:
        first, second, third = readers
        return lambda values: first(values) and second(values) and third(values)

    def every(values: Mapping[str, object]) -> bool:
        for reader in readers:  # noqa: SIM110 - a plain loop is faster than all() over a generator
            if not reader(values):
                return False
        return True

    return every


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
    broken: Mapping[str, tuple[LoadProblem, ...]] = field(default_factory=dict, repr=False)
    """spec_id -> the problems of its policies that could not be compiled (`load_snapshot` only)"""
    _merged: dict[tuple[str, tuple[str, ...]], tuple[CompiledPolicy, ...]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    """Memo of `candidates` by spec and scope chain (a scope's ancestors depend on it alone: few entries)."""

    def checked_against(self, spec_id: str) -> str | None:
        """The version of `spec_id` its policies were checked against; None when no policy is bound to it."""
        entry = self.index.get(spec_id)
        return None if entry is None else entry[0]

    def candidates(self, spec_id: str, scope_ids: tuple[str, ...]) -> tuple[CompiledPolicy, ...]:
        """The policies bound to `spec_id` and to one of `scope_ids`, sorted by policy_id."""
        merged = self._merged.get((spec_id, scope_ids))
        if merged is not None:
            return merged
        entry = self.index.get(spec_id)
        by_scope = {} if entry is None else entry[1]
        groups = [by_scope.get(scope_id, ()) for scope_id in scope_ids]
        merged = tuple(sorted(chain.from_iterable(groups), key=_POLICY_ID))
        if len(self._merged) >= _MEMO_SIZE:
            self._merged.clear()  # bounded, whatever scope chains callers pass
        self._merged[spec_id, scope_ids] = merged  # pure: the same arguments always give the same policies
        return merged


_POLICY_ID = attrgetter("policy_id")
_MEMO_SIZE = 4096


def compile_snapshot(
    snapshot_id: str,
    version: int,
    organization_id: str,
    domain: str,
    policies: Iterable[Policy],
    specs: Iterable[Spec],
    scopes: Iterable[Scope],
) -> CompiledSnapshot:
    """Check and compile the policies of one snapshot of (`organization_id`, `domain`), all or nothing.

    `specs` are the spec versions the policies are checked against (one per spec_id: the active ones), `scopes` the
    registered scopes. Raises `SnapshotError` listing every problem when any policy breaks a rule.
    """
    loaded = _load(snapshot_id, version, organization_id, domain, tuple(policies), specs, scopes, ())
    if loaded.problems:
        raise SnapshotError(f"snapshot {snapshot_id} (version {version})", loaded.problems)
    return loaded.snapshot


@dataclass(frozen=True, slots=True)
class LoadedSnapshot:
    """A stored snapshot as `load_snapshot` read it: what can be evaluated, and every problem found.

    `snapshot.broken` names the specs whose policies are not all sound (their evaluations fail over to the spec's
    failure mode); `ignored` lists the policies that can never apply (bound to no spec of the domain).
    """

    snapshot: CompiledSnapshot
    problems: tuple[LoadProblem, ...]  # every problem, in policy order
    ignored: tuple[LoadProblem, ...]  # problems of policies bound to no spec of the domain


def load_snapshot(
    snapshot_id: str,
    version: int,
    organization_id: str,
    domain: str,
    policies: Iterable[Policy],
    specs: Iterable[Spec],
    scopes: Iterable[Scope],
    unreadable: Iterable[tuple[str | None, LoadProblem]] = (),
) -> LoadedSnapshot:
    """Load a stored snapshot, containing each problem to the narrowest unit (MANDATE.md §3a); never raises.

    Arguments as for `compile_snapshot`; `unreadable` lists the policy records the caller could not even read, each
    with the spec_id it names (None when it names none), so that they break their spec like any unsound policy.
    """
    return _load(snapshot_id, version, organization_id, domain, tuple(policies), specs, scopes, tuple(unreadable))


def _load(
    snapshot_id: str,
    version: int,
    organization_id: str,
    domain: str,
    policies: tuple[Policy, ...],
    specs: Iterable[Spec],
    scopes: Iterable[Scope],
    unreadable: tuple[tuple[str | None, LoadProblem], ...],
) -> LoadedSnapshot:
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

    broken: dict[str, list[LoadProblem]] = {}
    ignored: list[LoadProblem] = []

    def contain(spec_id: str | None, found: list[LoadProblem]) -> None:
        problems.extend(found)
        if spec_id is not None and spec_id in spec_by_id:
            broken.setdefault(spec_id, []).extend(found)
        else:
            ignored.extend(found)

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
        if found:
            contain(policy.spec_id, found)
        else:
            compiled.append(_compile(policy, spec_by_id[policy.spec_id]))
    for spec_id, problem in unreadable:
        contain(spec_id, [problem])

    grouped: dict[str, dict[str, list[CompiledPolicy]]] = {}
    for compiled_policy in sorted(compiled, key=_POLICY_ID):
        by_scope = grouped.setdefault(compiled_policy.spec_id, {})
        by_scope.setdefault(compiled_policy.scope_id, []).append(compiled_policy)
    index = {
        spec_id: (spec_by_id[spec_id].version, {scope_id: tuple(group) for scope_id, group in by_scope.items()})
        for spec_id, by_scope in grouped.items()
    }
    snapshot = CompiledSnapshot(
        snapshot_id,
        version,
        organization_id,
        domain,
        policies,
        index,
        {spec_id: tuple(found) for spec_id, found in broken.items()},
    )
    return LoadedSnapshot(snapshot, tuple(problems), tuple(ignored))


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


def _compile(policy: Policy, spec: Spec) -> CompiledPolicy:
    numbers = {signal.name for signal in spec.signals if signal.type is SignalType.NUMBER}
    conditions = []
    for condition in policy.conditions:
        operator = Operator(condition.operator)
        expected = condition.value
        if condition.signal in numbers and operator is not Operator.EXISTS:
            expected = _as_numbers(expected)  # compared as plain ints and floats, like the decision's values
        if isinstance(expected, list):
            expected = tuple(expected)
        holds = compile_condition(condition.signal, operator, expected)
        conditions.append(CompiledCondition(condition.signal, operator, expected, holds))
    return CompiledPolicy(policy.policy_id, policy.spec_id, policy.scope_id, Verdict(policy.verdict), tuple(conditions))


def _as_numbers(value: object) -> object:
    if isinstance(value, list | tuple):
        return tuple(as_number(item) for item in value)
    return as_number(value)
