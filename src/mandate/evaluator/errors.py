"""Errors raised when governance data is loaded. `evaluate` itself never raises.

    EvaluatorError          base class
    ├── SpecError           a spec contradicts itself (check_spec)
    └── SnapshotError       policies break their specs' contracts or bindings (compile_snapshot)

Both carry every problem found, not just the first, so a bundle can be fixed in one pass.
"""

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class LoadProblem:
    """One thing wrong with governance data.

    `subject` is what it is about (a policy id, a spec as `spec_id@version`), `field` the path inside it
    (`conditions[0].operator`), `code` a stable machine-readable name, `message` what is wrong and what to do.
    """

    subject: str
    field: str
    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.subject}: {self.field}: {self.message}"


class EvaluatorError(Exception):
    """Base of the errors raised while loading governance data."""

    def __init__(self, what: str, problems: Iterable[LoadProblem]) -> None:
        self.problems: tuple[LoadProblem, ...] = tuple(problems)
        lines = "\n".join(f"  - {problem}" for problem in self.problems)
        super().__init__(f"{what} refused, {len(self.problems)} problem(s):\n{lines}")


class SpecError(EvaluatorError):
    """A spec contradicts itself (e.g. its default verdict is not one it allows)."""


class SnapshotError(EvaluatorError):
    """A policy snapshot cannot be loaded: unknown signals, illegal verdicts, cross-domain bindings…"""
