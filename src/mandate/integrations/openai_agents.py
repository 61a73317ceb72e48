"""Mandate in front of OpenAI Agents SDK function tools (`openai-agents`, extra `[openai-agents]`).

    from agents import Agent, function_tool
    from mandate.client import AsyncMandateClient
    from mandate.integrations.openai_agents import MandateToolPolicy

    policy = MandateToolPolicy(AsyncMandateClient(URL, organization_id=ORG, domain=DOMAIN), actor="ops", scope=SCOPE)
    agent = Agent(name="ops", tools=[policy.protect(function_tool(drop_table)), …])

`protect` gives a function tool two hooks of the SDK, both backed by the same Mandate decision (its id derives
from the tool-call id, so asking twice re-sends one decision and never stores two):

- `needs_approval`: PAUSE → True, so the run stops with the SDK's approval interruption
  (`result.interruptions`); approve it with `state.approve(item)` and run again, or `state.reject(item)`.
  When the run context is a dict, the PAUSE's reference (decision id, verdict id, requires, expires_at — Mandate
  has no approval ids yet) is kept in it under `context["mandate"][call_id]`, so it travels with the `RunState`.
- a tool input guardrail: BLOCK → `reject_content`, so the tool does not run and the model is told why (the
  decision is reported `refused`); every other verdict lets the tool run (a PAUSE only after its approval).

ALLOW and OBSERVE need no approval and pass the guardrail.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Mapping, MutableMapping
from typing import Any

from agents import FunctionTool, RunContextWrapper, ToolGuardrailFunctionOutput, ToolInputGuardrail
from agents.tool_guardrails import ToolInputGuardrailData

from mandate.client import AsyncMandateClient, MandateError, Verdict
from mandate.integrations import DecideTool, pause_reference, tool_as_intent

__all__ = ["MandateToolPolicy"]

NAMESPACE = uuid.UUID("1d7b5a0e-2f0c-4d5e-8a43-7c9e61b0f3a2")  # decision ids of Agents SDK tool calls


class MandateToolPolicy:
    """Approval and guardrail hooks for function tools, backed by Mandate (see the module docstring)."""

    def __init__(
        self,
        client: AsyncMandateClient,
        *,
        actor: str,
        scope: Mapping[str, Any],
        decide_tool: DecideTool = tool_as_intent,
    ) -> None:
        self.client = client
        self.actor = actor
        self.scope = dict(scope)
        self.decide_tool = decide_tool

    def protect(self, tool: FunctionTool) -> FunctionTool:
        """`tool`, asking Mandate before it runs: its `needs_approval` and one more input guardrail."""
        name = tool.name

        async def needs_approval(run_context: RunContextWrapper[Any], params: dict[str, Any], call_id: str) -> bool:
            verdict = await self.decide(name, params, call_id)
            if verdict is None or not verdict.paused:
                return False
            if isinstance(run_context.context, MutableMapping):
                run_context.context.setdefault("mandate", {})[call_id] = pause_reference(verdict)
            return True

        async def mandate_guardrail(data: ToolInputGuardrailData) -> ToolGuardrailFunctionOutput:
            ctx = data.context
            try:
                params = json.loads(ctx.tool_arguments or "{}")
            except json.JSONDecodeError:
                params = {}
            verdict = await self.decide(ctx.tool_name, params if isinstance(params, dict) else {}, ctx.tool_call_id)
            if verdict is None or not verdict.blocked:
                return ToolGuardrailFunctionOutput.allow(output_info=None if verdict is None else verdict.verdict)
            with contextlib.suppress(MandateError):  # the refusal stands whether or not it could be reported
                await self.client.report_outcome(verdict.decision_id, "refused", stage=verdict.stage)
            return ToolGuardrailFunctionOutput.reject_content(
                f"Blocked by Mandate (decision {verdict.decision_id}): {verdict.summary}",
                output_info={"verdict": "BLOCK", **pause_reference(verdict)},
            )

        tool.needs_approval = needs_approval
        tool.tool_input_guardrails = [
            *(tool.tool_input_guardrails or []),
            ToolInputGuardrail(guardrail_function=mandate_guardrail, name="mandate"),
        ]
        return tool

    async def decide(self, name: str, params: Mapping[str, Any], call_id: str | None) -> Verdict | None:
        """The verdict for this tool call (None: the call is not governed). The same call, the same decision."""
        ask = self.decide_tool(name, params)
        if ask is None:
            return None
        return await self.client.decide(
            ask.intent,
            ask.stage,
            context=dict(ask.context),
            scope={**self.scope, **ask.scope},
            target=ask.target,
            actor=self.actor,
            unstructured_context=ask.unstructured_context,
            decision_id=uuid.uuid5(NAMESPACE, f"{name}\x1f{call_id}") if call_id else None,
        )
