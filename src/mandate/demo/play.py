"""Playing the example agents' scenarios through the SDK, as `mandate demo` does, the way `examples/` do: the
observe agent reports each executed action's outcome; the support chatbot sends its replies through a guard,
which reports them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from mandate.client import MandateClient, Refused, Verdict
from mandate.demo.scenarios import ALL, Scenario


@dataclass(frozen=True)
class Played:
    scenario: Scenario
    verdict: Verdict


def play(client: MandateClient, scenarios: Iterable[Scenario] = ALL) -> list[Played]:
    """Send each scenario's decision (a fresh decision_id each time) and report outcomes; return the verdicts."""
    return [Played(scenario, _play(client, scenario)) for scenario in scenarios]


def _play(client: MandateClient, scenario: Scenario) -> Verdict:
    if scenario.agent == "support_reply_guard":
        guard = client.guard(scenario.intent, scenario.stage, **scenario.decide_args())
        try:
            with guard:
                pass  # the draft is sent
        except Refused as refused:
            return refused.verdict  # the fallback or the refusal is sent instead
        assert guard.verdict is not None
        return guard.verdict
    verdict = client.decide(scenario.intent, scenario.stage, **scenario.decide_args())
    if scenario.stage == "executed":
        client.report_outcome(verdict.decision_id, "executed", success=True, details={"execution_success": True})
    return verdict
