"""The four verdicts and the one rule that orders them.

Precedence is BLOCK > PAUSE > ALLOW > OBSERVE: when several policies match, the most severe verdict wins. When none
matches, the spec's default verdict applies. `resolve_verdict` is the only place that knows this.
"""

from collections.abc import Iterable
from enum import StrEnum


class Verdict(StrEnum):
    """Mandate's answer to a decision."""

    ALLOW = "ALLOW"  # explicitly permitted
    PAUSE = "PAUSE"  # needs human resolution
    BLOCK = "BLOCK"  # must not proceed
    OBSERVE = "OBSERVE"  # logged only


SEVERITY: dict[Verdict, int] = {Verdict.OBSERVE: 0, Verdict.ALLOW: 1, Verdict.PAUSE: 2, Verdict.BLOCK: 3}
"""Rank of each verdict; higher is more severe."""

FAILURE_MODES: frozenset[Verdict] = frozenset({Verdict.OBSERVE, Verdict.PAUSE, Verdict.BLOCK})
"""Verdicts a spec may declare as its failure mode. ALLOW is not one: an evaluation error never grants."""


def resolve_verdict(matched: Iterable[Verdict], default: Verdict = Verdict.OBSERVE) -> Verdict:
    """The most severe of the `matched` verdicts, or `default` when there are none."""
    return max(matched, key=SEVERITY.__getitem__, default=default)
