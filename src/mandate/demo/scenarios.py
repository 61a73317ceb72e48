"""The requests the original Mandate's example agents send (DEMO-GOVERNANCE.md), in one place: `mandate demo` plays
them and the scripts in `examples/` send them, so both always ask the same questions.

Each `Scenario` is one decision, with the verdict the demo governance (`mandate apply --demo`) gives it. The
identifiers are the original ones — organization 550e8400-…, domains `config-management` and `customer-support`,
the scopes' service/agent/environment — so upstream clients sending the same bodies get the same verdicts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

ORGANIZATION_ID = "550e8400-e29b-41d4-a716-446655440000"
CONFIG_DOMAIN = "config-management"
SUPPORT_DOMAIN = "customer-support"

Expected = Literal["ALLOW", "PAUSE", "BLOCK", "OBSERVE"]


@dataclass(frozen=True)
class Scenario:
    """One decision an example agent asks about, and what the demo governance answers."""

    agent: str  # the example that sends it (examples/<agent>.py)
    name: str
    domain: str
    intent: str
    stage: str
    actor: str
    target: str
    context: Mapping[str, Any]
    scope: Mapping[str, str]
    expected: Expected
    unstructured_context: str | None = None
    expected_policies: tuple[str, ...] = field(default=())

    def decide_args(self) -> dict[str, Any]:
        """Keyword arguments of `MandateClient.decide` after (intent, stage)."""
        return {
            "context": dict(self.context),
            "scope": dict(self.scope),
            "target": self.target,
            "actor": self.actor,
            "domain": self.domain,
            "unstructured_context": self.unstructured_context,
        }


def _scope(service: str, agent: str) -> dict[str, str]:
    return {"service": service, "agent": agent, "environment": "production"}


# -- config-management -------------------------------------------------------------------------------------------

LARGE_PRODUCTION_WRITE = Scenario(
    agent="pre_commit_agent",
    name="2.5 MB production YAML write",
    domain=CONFIG_DOMAIN,
    intent="file.write",
    stage="pre_commit",
    actor="pre-commit-agent",
    target="/data/config/production.yaml",
    context={"content_length": 2_500_000, "content_type": "yaml"},
    scope=_scope("config-writer", "pre-commit-agent"),
    expected="PAUSE",
    expected_policies=("policy-pause-large-files-v1",),
)

CRITICAL_DROP_WITHOUT_BACKUP = Scenario(
    agent="pause_escalation_agent",
    name="critical drop of production.users without a backup",
    domain=CONFIG_DOMAIN,
    intent="database.drop_table",
    stage="pre_commit",
    actor="pause-escalation-agent",
    target="production.users",
    context={"cascade": True, "backup_first": False, "risk_level": "critical", "reversible": False},
    scope=_scope("db-admin-tool", "pause-escalation-agent"),
    expected="BLOCK",
    expected_policies=("policy-block-unbackedup-drops-v1", "policy-pause-critical-db-ops-v1"),
)

_AUDIT = _scope("audit-logger", "observe-agent")

EXECUTED_LOGIN = Scenario(
    agent="observe_agent",
    name="user login (executed)",
    domain=CONFIG_DOMAIN,
    intent="user.login",
    stage="executed",
    actor="observe-agent",
    target="user:user-12345",
    # `execution_success` is not a declared signal: it is stored with the context and ignored by the evaluation.
    context={
        "user_id": "user-12345",
        "ip_address": "192.168.1.100",
        "auth_method": "password",
        "execution_success": True,
    },
    scope=_AUDIT,
    expected="OBSERVE",
    expected_policies=("policy-observe-user-login-v1",),
)

EXECUTED_EXPORT = Scenario(
    agent="observe_agent",
    name="data export with PII (executed)",
    domain=CONFIG_DOMAIN,
    intent="data.export",
    stage="executed",
    actor="observe-agent",
    target="export:customers.csv",
    context={"format": "csv", "record_count": 5000, "includes_pii": True, "execution_success": True},
    scope=_AUDIT,
    expected="OBSERVE",
    expected_policies=("policy-observe-data-exports-v1",),
)

EXECUTED_CONFIG_UPDATE = Scenario(
    agent="observe_agent",
    name="config update (executed)",
    domain=CONFIG_DOMAIN,
    intent="config.update",
    stage="executed",
    actor="observe-agent",
    target="config:max_connections",
    context={"key": "max_connections", "old_value": "100", "new_value": "200", "execution_success": True},
    scope=_AUDIT,
    expected="OBSERVE",
    expected_policies=("policy-observe-config-updates-v1",),
)

# -- customer-support ---------------------------------------------------------------------------------------------

# What the chatbot sends instead of its draft: on BLOCK, and on PAUSE (ALLOW and OBSERVE send the draft).
SUPPORT_UNABLE = "I'm sorry, I'm unable to process this request. Please contact our support team."
SUPPORT_FALLBACK = (
    "Thank you for your patience: a specialist will review your request and get back to you within one business day."
)


def support_draft(name: str, customer_id: str, draft: str, expected: Expected, policies: tuple[str, ...]) -> Scenario:
    """The check of one drafted reply: the draft goes as `unstructured_context`, and Mandate's observe phase
    extracts the refund signals from it (the chatbot sends only what it knows for certain)."""
    return Scenario(
        agent="support_reply_guard",
        name=name,
        domain=SUPPORT_DOMAIN,
        intent="issue_refund",
        stage="pre_commit",
        actor="chatbot-v3",
        target=f"customer:{customer_id}",
        context={"customer_id": customer_id},
        scope=_scope("chat-api", "chatbot-v3"),
        expected=expected,
        unstructured_context=draft,
        expected_policies=policies,
    )


REFUND_COMPLETED_FLIGHT = support_draft(
    "refund promised for a completed flight",
    "C123456",
    "Your flight has completed, and I'm processing a full refund for you.",
    "BLOCK",
    ("pol-refund-002",),
)
REFUND_250_DEPARTED = support_draft(
    "$250 refund promised on a departed flight",
    "C234567",
    "I've issued a refund of $250 for your flight, which departed this morning.",
    "PAUSE",
    ("pol-refund-001",),
)
SEAT_INFORMATION = support_draft(
    "seat and boarding information",
    "C345678",
    "Your seat is 14C and boarding starts at 9:40.",
    "ALLOW",
    (),
)

# -- by agent ------------------------------------------------------------------------------------------------------

AGENTS: dict[str, tuple[Scenario, ...]] = {
    "pre_commit_agent": (LARGE_PRODUCTION_WRITE,),
    "pause_escalation_agent": (CRITICAL_DROP_WITHOUT_BACKUP,),
    "observe_agent": (EXECUTED_LOGIN, EXECUTED_EXPORT, EXECUTED_CONFIG_UPDATE),
    "support_reply_guard": (REFUND_COMPLETED_FLIGHT, REFUND_250_DEPARTED, SEAT_INFORMATION),
}
"""Every scenario, by the example agent that sends it, in the order the demo plays them."""

ALL: tuple[Scenario, ...] = tuple(s for group in AGENTS.values() for s in group)
