"""Load-time checks of a spec against itself: its signal declarations and its enforcement semantics."""

from mandate.evaluator.errors import LoadProblem, SpecError
from mandate.evaluator.model import SignalSource, SignalType, Spec
from mandate.evaluator.verdicts import FAILURE_MODES

_SOURCE_TYPES: dict[SignalSource, frozenset[SignalType]] = {
    SignalSource.CONTEXT: frozenset(SignalType),
    SignalSource.SCOPE: frozenset({SignalType.STRING, SignalType.ENUM}),  # attribution values are text
    SignalSource.TIMESTAMP: frozenset({SignalType.NUMBER, SignalType.STRING}),  # epoch seconds or ISO 8601
}


def spec_problems(spec: Spec) -> list[LoadProblem]:
    """Every way `spec` contradicts itself; empty when it is sound."""
    problems: list[LoadProblem] = []

    def add(field: str, code: str, message: str) -> None:
        problems.append(LoadProblem(spec.ref, field, code, message))

    seen: set[str] = set()
    for i, signal in enumerate(spec.signals):
        where = f"signals[{i}]"
        if signal.name in seen:
            add(f"{where}.name", "duplicate_signal", f"signal {signal.name!r} is declared twice; keep one")
        seen.add(signal.name)
        if signal.type is SignalType.ENUM and not signal.values:
            add(f"{where}.values", "enum_without_values", f"enum signal {signal.name!r} declares no values")
        if signal.type is not SignalType.ENUM and signal.values:
            add(
                f"{where}.values",
                "values_on_non_enum",
                f"signal {signal.name!r} is {signal.type}, only enum signals take values",
            )
        if len(set(signal.values)) != len(signal.values):
            add(f"{where}.values", "duplicate_enum_value", f"signal {signal.name!r} lists a value twice")
        if signal.type not in _SOURCE_TYPES[signal.source]:
            allowed = " or ".join(sorted(_SOURCE_TYPES[signal.source]))
            add(
                f"{where}.type",
                "type_not_allowed_for_source",
                f"signal {signal.name!r} comes from {signal.source}, so it must be {allowed}, not {signal.type}",
            )

    enforcement = spec.enforcement
    allowed = ", ".join(sorted(spec.allowed_verdicts)) or "none"
    if not spec.allowed_verdicts:
        add("allowed_verdicts", "no_allowed_verdicts", "a spec must allow at least one verdict")
    if enforcement.default_verdict not in spec.allowed_verdicts:
        add(
            "enforcement.default_verdict",
            "default_not_allowed",
            f"default verdict {enforcement.default_verdict} is not among the allowed verdicts ({allowed});"
            " allow it or declare another default",
        )
    if enforcement.failure_mode not in FAILURE_MODES:
        add(
            "enforcement.failure_mode",
            "failure_mode_not_allowed",
            f"failure mode {enforcement.failure_mode} would grant on error; use OBSERVE, PAUSE or BLOCK",
        )
    elif enforcement.failure_mode not in spec.allowed_verdicts:
        add(
            "enforcement.failure_mode",
            "failure_mode_not_among_allowed",
            f"failure mode {enforcement.failure_mode} is not among the allowed verdicts ({allowed});"
            " allow it or declare another failure mode",
        )
    timeout = enforcement.resolution_timeout_minutes
    if timeout is not None and timeout < 1:
        add(
            "enforcement.resolution_timeout_minutes",
            "bad_timeout",
            f"resolution timeout must be at least 1 minute (or absent), not {timeout}",
        )
    return problems


def check_spec(spec: Spec) -> Spec:
    """Return `spec` unchanged, or raise `SpecError` listing every problem with it."""
    problems = spec_problems(spec)
    if problems:
        raise SpecError(f"spec {spec.ref}", problems)
    return spec
