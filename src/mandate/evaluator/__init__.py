"""The pure policy evaluator: governance data and a decision in, a verdict with its explanation out.

No I/O, no clock, no randomness, no environment, no logging: time is an argument, and the same inputs give the
same verdict and the same explanation, byte for byte. The caller (the ingestion path) keeps specs, a `ScopeIndex`
and `CompiledSnapshot`s in memory and does, per decision (MANDATE.md §3):

    problems = validate_signals(spec, decision)           # step 4: any problem is a client error
    resolution = scopes.resolve(decision)                 # step 5: None -> governance_gap(..., GapCode.NO_SCOPE)
    evaluation = evaluate(decision, spec, resolution, snapshot)   # steps 6-10; never raises
    evaluation.to_dict()                                  # the structured explanation to store

Governance data is checked when loaded, not per request: `check_spec` and `compile_snapshot` raise `SpecError` and
`SnapshotError` listing every problem (for governance being published); `load_snapshot` never raises and contains
each problem to the spec it concerns (for governance already stored, which must always be served — §3a). `flips`
reads a stored explanation and says which signal changes would give another verdict.
"""

from mandate.evaluator.engine import evaluate, governance_gap
from mandate.evaluator.errors import EvaluatorError, LoadProblem, SnapshotError, SpecError
from mandate.evaluator.explain import Evaluation
from mandate.evaluator.flips import Flip, flips
from mandate.evaluator.model import (
    SELECTORS,
    Condition,
    Decision,
    Enforcement,
    Policy,
    Scope,
    SignalDef,
    SignalSource,
    SignalType,
    Spec,
)
from mandate.evaluator.operators import Operator
from mandate.evaluator.result import (
    ConditionResult,
    EvaluationError,
    Gap,
    GapCode,
    PolicyResult,
    Reason,
)
from mandate.evaluator.scopes import ScopeIndex, ScopeResolution, can_tie, resolve_scope
from mandate.evaluator.signals import SignalProblem, read_signals, resolve_signals, validate_signals
from mandate.evaluator.snapshot import CompiledSnapshot, LoadedSnapshot, compile_snapshot, load_snapshot
from mandate.evaluator.specs import check_spec, spec_problems
from mandate.evaluator.verdicts import FAILURE_MODES, SEVERITY, Verdict, resolve_verdict

__all__ = [
    "FAILURE_MODES",
    "SELECTORS",
    "SEVERITY",
    "CompiledSnapshot",
    "Condition",
    "ConditionResult",
    "Decision",
    "Enforcement",
    "Evaluation",
    "EvaluationError",
    "EvaluatorError",
    "Flip",
    "Gap",
    "GapCode",
    "LoadProblem",
    "LoadedSnapshot",
    "Operator",
    "Policy",
    "PolicyResult",
    "Reason",
    "Scope",
    "ScopeIndex",
    "ScopeResolution",
    "SignalDef",
    "SignalProblem",
    "SignalSource",
    "SignalType",
    "SnapshotError",
    "Spec",
    "SpecError",
    "Verdict",
    "can_tie",
    "check_spec",
    "compile_snapshot",
    "evaluate",
    "flips",
    "governance_gap",
    "load_snapshot",
    "read_signals",
    "resolve_scope",
    "resolve_signals",
    "resolve_verdict",
    "spec_problems",
    "validate_signals",
]
