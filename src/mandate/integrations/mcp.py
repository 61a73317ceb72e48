"""Mandate in front of an MCP server's tools: a middleware for the official MCP Python SDK (`mcp`, extra `[mcp]`).

    from mcp.server.mcpserver import MCPServer
    from mandate.client import AsyncMandateClient
    from mandate.integrations.mcp import MandateMiddleware

    mandate = AsyncMandateClient(URL, organization_id=ORG, domain="config-management", token=TOKEN)
    server = MCPServer("db-admin", middleware=[MandateMiddleware(mandate, actor="db-admin-mcp", scope=SCOPE)])

Every `tools/call` is a Mandate decision before it is forwarded to the tool (`decide_tool` maps the call; by
default the tool's name is the intent and its arguments the signals). ALLOW and OBSERVE forward the call, and the
outcome is reported after it. BLOCK and PAUSE never reach the tool: the client gets a tool result with
`isError: true`, a text the model can read, and `structuredContent.mandate` —

    BLOCK: {"authorization": "denied", "verdict": "BLOCK", "summary": …, "decision_id": …, "verdict_id": …}
    PAUSE: {"authorization": "pending_approval", "verdict": "PAUSE", "summary": …, "decision_id": …,
            "verdict_id": …, "requires": […], "expires_at": …}

(a PAUSE is resolved later under its decision id: Mandate has no approval ids yet). Mandate unreachable is an
MCP error (the call fails; the tool does not run). Other methods pass through untouched.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mcp.server.context import CallNext, HandlerResult, ServerMiddleware, ServerRequestContext
from mcp.shared.exceptions import MCPError
from mcp_types import CallToolResult, TextContent

from mandate.client import AsyncMandateClient, Blocked, MandateError, Paused, Verdict
from mandate.integrations import DecideTool, pause_reference, tool_as_intent

__all__ = ["MandateMiddleware", "refusal"]

UNAVAILABLE = -32001  # a server-defined JSON-RPC error: the authorization could not be obtained


def refusal(verdict: Verdict) -> CallToolResult:
    """The tool result that stands in for a refused call: an error the model sees, with a structured reason."""
    if verdict.paused:
        mandate = {"authorization": "pending_approval", "verdict": "PAUSE", **pause_reference(verdict)}
        text = f"Pending approval (decision {verdict.decision_id}): {verdict.summary}"
    else:
        mandate = {
            "authorization": "denied",
            "verdict": verdict.verdict,
            "summary": verdict.summary,
            "decision_id": str(verdict.decision_id),
            "verdict_id": str(verdict.verdict_id),
        }
        text = f"Denied by Mandate (decision {verdict.decision_id}): {verdict.summary}"
    return CallToolResult(
        content=[TextContent(type="text", text=text)], structured_content={"mandate": mandate}, is_error=True
    )


class MandateMiddleware(ServerMiddleware[Any]):
    """Ask Mandate before each `tools/call`; forward only what it lets through (see the module docstring)."""

    def __init__(
        self,
        client: AsyncMandateClient,
        *,
        actor: str,
        scope: Mapping[str, Any],
        decide_tool: DecideTool = tool_as_intent,
        report: bool = True,
    ) -> None:
        self.client = client
        self.actor = actor
        self.scope = dict(scope)
        self.decide_tool = decide_tool
        self.report = report

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        params = ctx.params or {}
        name = params.get("name")
        if ctx.method != "tools/call" or not isinstance(name, str):
            return await call_next(ctx)
        arguments = params.get("arguments") or {}
        ask = self.decide_tool(name, arguments if isinstance(arguments, Mapping) else {})
        if ask is None:
            return await call_next(ctx)
        guard = self.client.guard(
            ask.intent,
            ask.stage,
            context=dict(ask.context),
            scope={**self.scope, **ask.scope},
            target=ask.target,
            actor=self.actor,
            unstructured_context=ask.unstructured_context,
            report=self.report,
        )
        try:
            async with guard:
                return await call_next(ctx)
        except (Blocked, Paused) as refused:
            return refusal(refused.verdict)
        except MandateError as exc:
            raise MCPError(UNAVAILABLE, f"Mandate could not authorize {name}: {exc}; the tool did not run") from exc
