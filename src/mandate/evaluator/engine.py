"""Evaluation (§3 steps 6–10): one decision, its resolved spec and scope, the active snapshot → a verdict.

`evaluate` never raises and never looks anything up: everything it needs is in its arguments, so the caller can
serve it from in-memory caches. Anything that goes wrong is an evaluation error, recorded in the explanation, and
the spec's failure mode decides — except that an error never grants (no ALLOW) and never hides a PAUSE or BLOCK
that a sound policy produced.
"""

from operator import attrgetter

from mandate.evaluator.explain import Evaluation
from mandate.evaluator.model import SELECTORS, Decision, Spec
from mandate.evaluator.result import EvaluationError, Gap, GapCode, Reason, Trace
from mandate.evaluator.scopes import ScopeResolution
from mandate.evaluator.signals import read_signals
from mandate.evaluator.snapshot import CompiledPolicy, CompiledSnapshot
from mandate.evaluator.verdicts import FAILURE_MODES, Verdict, resolve_verdict

_NOTHING_INVALID: frozenset[str] = frozenset()
_NO_TRACE = Trace((), {}, _NOTHING_INVALID)
_HOLDS_THROUGH_ERRORS = frozenset({Verdict.PAUSE, Verdict.BLOCK})
_VERDICT = attrgetter("verdict")
_POLICY_ID = attrgetter("policy_id")


def evaluate(
    decision: Decision, spec: Spec, resolution: ScopeResolution, snapshot: CompiledSnapshot | None
) -> Evaluation:
    """Judge `decision` under `spec`, in the scope it resolved to, with the policies of `snapshot`.

    `snapshot` None means the domain has no snapshot yet: an empty one, so the spec's default verdict applies
    (MANDATE.md §3a) — not a governance gap.
    """
    mode = spec.enforcement.failure_mode
    failure_mode = mode if mode in FAILURE_MODES else Verdict.OBSERVE  # an unchecked spec still never grants
    try:
        return _evaluate(decision, spec, resolution, snapshot, failure_mode)
    except Exception as exc:  # §3.9: an evaluation error must never crash ingestion; the failure mode decides
        error = EvaluationError("internal_error", f"evaluation failed: {type(exc).__name__}: {exc}")
        return _conclude(decision, spec, resolution, snapshot, failure_mode, _NO_TRACE, [], [error])


def _evaluate(
    decision: Decision,
    spec: Spec,
    resolution: ScopeResolution,
    snapshot: CompiledSnapshot | None,
    failure_mode: Verdict,
) -> Evaluation:
    errors = _binding_errors(decision, spec, resolution, snapshot)
    if errors:  # nothing is evaluated across domains, specs or stale snapshots
        return _conclude(decision, spec, resolution, snapshot, failure_mode, _NO_TRACE, [], errors)

    values, problems = read_signals(spec, decision)
    candidates = () if snapshot is None else snapshot.candidates(spec.spec_id, resolution.scope_ids)
    if not problems:
        invalid = _NOTHING_INVALID
        matched = [policy for policy in candidates if policy.holds(values)]
    else:  # unacceptable values: conditions over them fail with an error, and the failure mode decides
        invalid = frozenset(problem.signal for problem in problems)
        errors = [EvaluationError("invalid_signal", problem.message, signal=problem.signal) for problem in problems]
        matched = [policy for policy in candidates if policy.explain(values, invalid).matched]
    if snapshot is not None and spec.spec_id in snapshot.broken:
        # Policies of this spec that could not be loaded: what they would decide is unknown (§3a).
        errors.extend(
            EvaluationError("broken_policy", f"policy {problem}", policy_id=problem.subject)
            for problem in snapshot.broken[spec.spec_id]
        )
    trace = Trace(candidates, values, invalid)
    return _conclude(decision, spec, resolution, snapshot, failure_mode, trace, matched, errors)


def _binding_errors(
    decision: Decision, spec: Spec, resolution: ScopeResolution, snapshot: CompiledSnapshot | None
) -> list[EvaluationError]:
    errors: list[EvaluationError] = []
    home = (decision.organization_id, decision.domain)
    governs = (spec.organization_id, spec.domain, spec.intent, spec.stage)
    if governs != (*home, decision.intent, decision.stage):
        errors.append(
            EvaluationError(
                "spec_mismatch",
                f"spec {spec.ref} governs {'/'.join(governs)}, not"
                f" {decision.organization_id}/{decision.domain}/{decision.intent}/{decision.stage}",
            )
        )
    if snapshot is not None and (snapshot.organization_id, snapshot.domain) != home:
        errors.append(
            EvaluationError(
                "snapshot_mismatch",
                f"snapshot {snapshot.snapshot_id} belongs to {snapshot.organization_id}/{snapshot.domain},"
                f" not {'/'.join(home)}",
            )
        )
    scope = resolution.scope
    if (scope.organization_id, scope.domain) != home:
        errors.append(
            EvaluationError(
                "scope_mismatch",
                f"scope {scope.scope_id} belongs to {scope.organization_id}/{scope.domain}, not {'/'.join(home)}",
            )
        )
    checked = None if snapshot is None else snapshot.checked_against(spec.spec_id)
    if snapshot is not None and checked is not None and checked != spec.version:
        errors.append(
            EvaluationError(
                "spec_version_mismatch",
                f"snapshot {snapshot.snapshot_id} was checked against {spec.spec_id}@{checked}, not {spec.ref};"
                " load the snapshot against the spec version in force",
            )
        )
    return errors


def _conclude(
    decision: Decision,
    spec: Spec,
    resolution: ScopeResolution,
    snapshot: CompiledSnapshot | None,
    failure_mode: Verdict,
    trace: Trace,
    matched: list[CompiledPolicy],
    errors: list[EvaluationError],
) -> Evaluation:
    """Resolve the verdict (BLOCK > PAUSE > ALLOW > OBSERVE, else the default) and record why."""
    deciding = matched
    if not errors:
        verdict = resolve_verdict(map(_VERDICT, matched), spec.enforcement.default_verdict)
        reason = Reason.POLICY if matched else Reason.DEFAULT
        if not matched and verdict not in spec.allowed_verdicts:
            errors.append(
                EvaluationError("default_not_allowed", f"default verdict {verdict} is not allowed by spec {spec.ref}")
            )
    if errors:  # the failure mode decides; an error never grants, nor hides a PAUSE or BLOCK that did match
        deciding = [policy for policy in matched if policy.verdict in _HOLDS_THROUGH_ERRORS]
        verdict = resolve_verdict([*map(_VERDICT, deciding), failure_mode])
        reason = Reason.ERROR
    winning = [policy for policy in deciding if policy.verdict is verdict]
    winners = [policy.policy_id for policy in winning]
    if len(winners) > 1 and reason is Reason.POLICY:
        reason = Reason.TIE
    # The authority is the winning policy's own scope; the verdict records the tied scope whose chain holds it.
    authority = resolution.find(winning[0].scope_id) if winning else None
    recorded = resolution.holder(winning[0].scope_id) if winning else resolution.scope

    return Evaluation(
        verdict=verdict,
        reason=reason,
        decision=decision,
        spec=spec,
        snapshot=snapshot,
        resolution=resolution,
        scope=recorded,
        authority=authority,
        winning_policy_id=winners[0] if winners else None,
        tied_policy_ids=tuple(winners[1:]),
        matched_policy_ids=tuple(map(_POLICY_ID, matched)),
        failure_mode=failure_mode,
        errors=tuple(errors),
        trace=trace,
    )


def governance_gap(
    decision: Decision, reason_code: str, message: str | None = None, *, spec: Spec | None = None
) -> Evaluation:
    """The OBSERVE answer to a decision nothing governs (§3 steps 2 and 5), explained like any other.

    `reason_code` is a `GapCode` (or another code of the caller's); without `message`, the standard sentence for the
    code is used. Pass the resolved `spec` when the gap is a missing scope.
    """
    if message is None:
        message = _gap_message(decision, reason_code)
    return Evaluation(
        verdict=Verdict.OBSERVE, reason=Reason.GAP, decision=decision, spec=spec, gap=Gap(str(reason_code), message)
    )


def _gap_message(decision: Decision, reason_code: str) -> str:
    if reason_code == GapCode.NO_ACTIVE_SPEC:
        return f"no active spec for {decision.organization_id}/{decision.domain}/{decision.intent}/{decision.stage}"
    if reason_code == GapCode.NO_SCOPE:
        attribution = _attribution(decision)
        return f"no scope holds authority here ({attribution or 'no scope attribution'})"
    return reason_code


def _attribution(decision: Decision) -> str:
    attribution = decision.attribution
    return ", ".join(f"{name}={attribution[name]}" for name in SELECTORS if attribution.get(name) is not None)
