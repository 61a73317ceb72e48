"""The evaluator's public surface is deliberate: `__all__` lists it, and everything listed exists."""

import mandate.evaluator as evaluator

EXPECTED = {
    # evaluation
    "evaluate",
    "governance_gap",
    "Evaluation",
    "Reason",
    "GapCode",
    "Gap",
    "PolicyResult",
    "ConditionResult",
    "EvaluationError",
    # verdicts
    "Verdict",
    "resolve_verdict",
    "SEVERITY",
    "FAILURE_MODES",
    # governance data
    "Spec",
    "SignalDef",
    "SignalType",
    "SignalSource",
    "Enforcement",
    "Scope",
    "SELECTORS",
    "Policy",
    "Condition",
    "Operator",
    "Decision",
    # loading
    "check_spec",
    "spec_problems",
    "compile_snapshot",
    "flips",
    "Flip",
    "can_tie",
    "load_snapshot",
    "LoadedSnapshot",
    "CompiledSnapshot",
    "LoadProblem",
    "EvaluatorError",
    "SpecError",
    "SnapshotError",
    # signals
    "validate_signals",
    "resolve_signals",
    "read_signals",
    "SignalProblem",
    # scopes
    "ScopeIndex",
    "ScopeResolution",
    "resolve_scope",
}


def test_all_declares_exactly_the_public_surface() -> None:
    assert set(evaluator.__all__) == EXPECTED
    assert len(evaluator.__all__) == len(EXPECTED)


def test_everything_declared_is_importable_and_documented() -> None:
    for name in evaluator.__all__:
        member = getattr(evaluator, name)
        if callable(member):
            assert member.__doc__, f"{name} has no docstring"
            assert member.__module__.startswith("mandate.evaluator."), name


def test_nothing_public_is_left_undeclared() -> None:
    public = {name for name in vars(evaluator) if not name.startswith("_")}
    modules = {"engine", "errors", "explain", "model", "operators", "result", "scopes", "signals", "snapshot"}
    modules |= {"specs", "verdicts"}
    assert public - modules == set(evaluator.__all__)
