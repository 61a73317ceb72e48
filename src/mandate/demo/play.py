"""Playing the example agents' scenarios through the SDK, as `mandate demo` does, the way `examples/` do: the
observe agent reports each executed action's outcome; the support chatbot sends its replies through a guard,
which reports them. Then an approval end to end: a PAUSE approved and resumed, and one the agent ignored."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from mandate.client import Approval, MandateClient, Refused, Verdict
from mandate.demo.scenarios import ALL, LARGE_PRODUCTION_WRITE, Scenario


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


@dataclass(frozen=True)
class ApprovalTour:
    """A PAUSE that ends (docs/approvals.md): approved, then resumed as ALLOW; and a PAUSE that expired unanswered,
    whose action the agent reported as executed anyway: a finding."""

    scenario: Scenario
    paused: Verdict
    approval: Approval  # as the approver left it: approved
    resumed: Verdict  # ALLOW, reason "approved"
    ignored: Verdict  # another PAUSE, expired unanswered
    ignored_approval: Approval  # its request: expired
    executed: Verdict  # its `executed` stage
    finding: str  # the finding on its timeline


def approval_tour(client: MandateClient, scenario: Scenario = LARGE_PRODUCTION_WRITE) -> ApprovalTour:
    """Approve one PAUSE of `scenario` requirement by requirement and resume it with the approval; send another
    that expires unanswered and report it executed anyway. The demo server runs without authentication, so the
    approver is unnamed; with tokens, each requirement records the approver's token (a different one each)."""
    args = scenario.decide_args()
    paused = client.decide(scenario.intent, scenario.stage, **args)
    if paused.approval_id is None:
        raise AssertionError(f"the demo governance gave {paused.verdict}, not a PAUSE with an approval request")
    approval = client.approvals.get(paused.approval_id)
    for requirement in paused.pause_requires:
        approval = client.approvals.approve(
            paused.approval_id, requirement=requirement, reason="the demo's operator looked at the write"
        )
    resumed = client.decide(scenario.intent, scenario.stage, approval_id=paused.approval_id, **args)
    # Asked three hours ago: its approval request has expired (the spec gives approvers an hour), unanswered.
    three_hours_ago = datetime.now(UTC) - timedelta(hours=3)
    ignored = client.decide(scenario.intent, scenario.stage, timestamp=three_hours_ago, **args)
    executed = client.decide(scenario.intent, "executed", decision_id=ignored.decision_id, **args)
    if ignored.approval_id is None:
        raise AssertionError(f"the demo governance gave {ignored.verdict}, not a PAUSE with an approval request")
    ignored_approval = client.approvals.get(ignored.approval_id)
    findings = [e for e in client.get_timeline(ignored.decision_id) if str(e.get("summary", "")).startswith("finding")]
    if not findings:
        raise AssertionError("an action executed without its approval left no finding")
    finding = str(findings[0]["summary"])
    return ApprovalTour(scenario, paused, approval, resumed, ignored, ignored_approval, executed, finding)
