"""Mandate in front of LangGraph / LangChain tools (`langgraph`, `langchain-core`; extra `[langgraph]`).

    from langgraph.prebuilt import ToolNode
    from mandate.client import MandateClient
    from mandate.integrations.langgraph import MandateToolGuard

    guard = MandateToolGuard(MandateClient(URL, organization_id=ORG, domain=DOMAIN), actor="ops-agent", scope=SCOPE)
    tools = ToolNode([drop_table, write_config], wrap_tool_call=guard)

The guard wraps every tool call of the `ToolNode` (`decide_tool` maps a call to a decision; by default the tool's
name is the intent and its arguments the signals). Before the tool runs, Mandate decides:

- ALLOW, OBSERVE: the tool runs; its outcome is reported (`succeeded`, or `failed` when it answered an error).
- BLOCK: the tool does not run. The agent sees `ToolBlocked`'s message as the tool's error result (a `ToolMessage`
  with status `error` and the decision in its artifact), or — `on_block="raise"` — `ToolBlocked` is raised out of
  the graph.
- PAUSE: a LangGraph `interrupt` whose value is `{"mandate": {"decision_id", "verdict_id", "requires",
  "expires_at", "summary", …}, "tool": name, "arguments": args}`. Resume the thread with
  `Command(resume={"approved": True, "decision_id": <that decision id>})` to run the tool, or `approved: False`
  to refuse it (the agent sees `ToolPaused`'s message). Mandate has no approval ids yet: the decision id stands
  in for it, and a resume naming another decision is refused.

LangGraph re-runs an interrupted node from its start when it resumes, so each call's decision id is derived from
its tool-call id: the re-run re-sends the same decision, which Mandate answers with the stored verdict (never a
second decision). The guard needs a checkpointer for PAUSE, as every interrupt does. Sync graphs (`invoke`,
`stream`); the client is a `MandateClient`.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from typing import Any, Literal

from langchain_core.messages import ToolMessage
from langchain_core.tools import ToolException
from langgraph.prebuilt.tool_node import ToolCallRequest
from langgraph.types import Command, interrupt

from mandate.client import MandateClient, MandateError, Verdict
from mandate.integrations import DecideTool, pause_reference, tool_as_intent

__all__ = ["MandateToolGuard", "ToolBlocked", "ToolPaused"]

log = logging.getLogger("mandate.integrations")
NAMESPACE = uuid.UUID("6f0a4c1e-58a4-4f59-9d9b-0d5c3a7e2b11")  # decision ids of LangGraph tool calls


class ToolBlocked(ToolException):
    """Mandate answered BLOCK: the tool must not run. `.verdict` holds the answer and its explanation."""

    def __init__(self, verdict: Verdict) -> None:
        super().__init__(f"Blocked by Mandate (decision {verdict.decision_id}): {verdict.summary}")
        self.verdict = verdict


class ToolPaused(ToolException):
    """Mandate answered PAUSE and the resume did not approve this decision: the tool did not run."""

    def __init__(self, verdict: Verdict) -> None:
        super().__init__(
            f"Paused by Mandate (decision {verdict.decision_id}), not approved: {verdict.summary}; "
            f"it needs {', '.join(verdict.pause_requires) or 'a human resolution'}"
        )
        self.verdict = verdict


def decision_id_for(tool_call_id: str | None, name: str) -> uuid.UUID:
    """The same id every time the same tool call is decided (a resumed node re-runs from its start)."""
    return uuid.uuid5(NAMESPACE, f"{name}\x1f{tool_call_id}") if tool_call_id else uuid.uuid4()


def approved(resume: Any, verdict: Verdict) -> bool:
    """A resume value approves exactly this PAUSE: `{"approved": True, "decision_id": <its decision id>}`."""
    return (
        isinstance(resume, Mapping)
        and resume.get("approved") is True
        and str(resume.get("decision_id")) == str(verdict.decision_id)
    )


class MandateToolGuard:
    """A `ToolNode` `wrap_tool_call` interceptor that asks Mandate before each tool call (module docstring)."""

    def __init__(
        self,
        client: MandateClient,
        *,
        actor: str,
        scope: Mapping[str, Any],
        decide_tool: DecideTool = tool_as_intent,
        on_block: Literal["message", "raise"] = "message",
        report: bool = True,
    ) -> None:
        self.client = client
        self.actor = actor
        self.scope = dict(scope)
        self.decide_tool = decide_tool
        self.on_block = on_block
        self.report = report

    def __call__(
        self, request: ToolCallRequest, execute: Callable[[ToolCallRequest], ToolMessage | Command[Any]]
    ) -> ToolMessage | Command[Any]:
        call = request.tool_call
        name, arguments, call_id = call["name"], call.get("args") or {}, call.get("id")
        ask = self.decide_tool(name, arguments)
        if ask is None:
            return execute(request)
        verdict = self.client.decide(
            ask.intent,
            ask.stage,
            context=dict(ask.context),
            scope={**self.scope, **ask.scope},
            target=ask.target,
            actor=self.actor,
            unstructured_context=ask.unstructured_context,
            decision_id=decision_id_for(call_id, name),
        )
        if verdict.blocked:
            self._tell(verdict, "refused", None)
            if self.on_block == "raise":
                raise ToolBlocked(verdict)
            return self._refusal(ToolBlocked(verdict), name, call_id)
        if verdict.paused:
            resume = interrupt({"mandate": pause_reference(verdict), "tool": name, "arguments": dict(arguments)})
            if not approved(resume, verdict):
                self._tell(verdict, "refused", None)
                return self._refusal(ToolPaused(verdict), name, call_id)
        result = execute(request)
        failed = isinstance(result, ToolMessage) and result.status == "error"
        self._tell(verdict, "failed" if failed else "succeeded", not failed)
        return result

    @staticmethod
    def _refusal(error: ToolBlocked | ToolPaused, name: str, call_id: str | None) -> ToolMessage:
        verdict = error.verdict
        return ToolMessage(
            content=str(error),
            name=name,
            tool_call_id=call_id or "",
            status="error",
            artifact={"mandate": {"verdict": verdict.verdict, **pause_reference(verdict)}},
        )

    def _tell(self, verdict: Verdict, outcome: str, success: bool | None) -> None:
        """Report the outcome; a failed report never changes what the agent is told (it is logged by the SDK)."""
        if not self.report:
            return
        try:
            self.client.report_outcome(verdict.decision_id, outcome, success=success, stage=verdict.stage)
        except MandateError as exc:
            log.warning("could not report the outcome of decision %s: %s", verdict.decision_id, type(exc).__name__)
