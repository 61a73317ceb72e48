"""Guards for agent frameworks: each asks Mandate before a tool runs, in that framework's own terms.

| module                                  | framework (extra)                               | BLOCK                          | PAUSE                                   |
|-----------------------------------------|-------------------------------------------------|--------------------------------|-----------------------------------------|
| `mandate.integrations.mcp`              | the official MCP Python SDK (`[mcp]`)           | a tool error the client sees, with a structured denial | a tool error marked pending approval |
| `mandate.integrations.langgraph`        | LangGraph / LangChain tools (`[langgraph]`)     | `ToolBlocked` (the agent sees it) | a LangGraph `interrupt`; resume to go on |
| `mandate.integrations.openai_agents`    | OpenAI Agents SDK (`[openai-agents]`)           | a tool guardrail rejection     | the SDK's approval interruption (`needs_approval`) |

Every framework names a tool call (a name and its arguments); `ToolDecision` says which Mandate decision it is.
By default a tool is an intent of the same name, its arguments are the signals and its name is the target
(`tool_as_intent`); pass your own function to map calls onto your specs. A function that returns None leaves
that tool ungoverned. Each adapter depends on its framework only; this module on nothing but the SDK.

Approvals do not exist in Mandate yet: where a framework keeps "an approval id", the adapters keep the PAUSE's
decision id and verdict id (docs/integrations.md).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mandate.client import Verdict

__all__ = ["DecideTool", "ToolDecision", "pause_reference", "tool_as_intent"]


@dataclass(frozen=True)
class ToolDecision:
    """The Mandate decision a tool call asks for. The actor comes from the guard; `scope` (service, agent,
    environment, system, tenant) is laid over the guard's scope."""

    intent: str
    target: str
    context: Mapping[str, Any] = field(default_factory=dict)
    stage: str = "pre_commit"
    scope: Mapping[str, Any] = field(default_factory=dict)
    unstructured_context: str | None = None


DecideTool = Callable[[str, Mapping[str, Any]], ToolDecision | None]
"""(tool name, arguments) → the decision to ask for, or None to let the tool run ungoverned."""


def tool_as_intent(name: str, arguments: Mapping[str, Any]) -> ToolDecision:
    """The default mapping: intent = the tool's name, signals = its arguments, target = its name."""
    return ToolDecision(intent=name, target=name, context=dict(arguments))


def pause_reference(verdict: Verdict) -> dict[str, Any]:
    """What stands for "the approval id" until approvals exist: the PAUSE's decision id and verdict id."""
    return {
        "decision_id": str(verdict.decision_id),
        "verdict_id": str(verdict.verdict_id),
        "stage": verdict.stage,
        "requires": list(verdict.pause_requires),
        "expires_at": None if verdict.pause_expires_at is None else verdict.pause_expires_at.isoformat(),
        "summary": verdict.summary,
    }
