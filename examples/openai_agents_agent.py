"""An OpenAI Agents SDK agent whose tools Mandate guards; PAUSE is the SDK's approval interruption.

    MANDATE_API_TOKEN=mdt_… python examples/openai_agents_agent.py --url http://127.0.0.1:3000

The model is the SDK's `ScriptedModel` (no API key needed): it drops a critical table without a backup (BLOCK:
the guardrail rejects the call, the model is told why), then writes a 2 MB production file (PAUSE: the run stops
for approval; this script approves it), then finishes. Put a real model on the Agent for real use.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Mapping
from typing import Any

from agents import Agent, Runner, function_tool, set_tracing_disabled
from agents.models.interface import Model
from agents.testing import ScriptedModel, assistant_message, function_call

from mandate.client import AsyncMandateClient, MandateError
from mandate.demo.scenarios import ORGANIZATION_ID
from mandate.integrations import ToolDecision
from mandate.integrations.openai_agents import MandateToolPolicy

RAN: list[str] = []


def drop_table(table: str, risk_level: str, reversible: bool, backup_first: bool) -> str:
    """Drop a database table."""
    RAN.append(f"drop {table}")
    return f"dropped {table}"


def write_config(path: str, content: str) -> str:
    """Write a configuration file."""
    RAN.append(f"write {path}")
    return f"wrote {len(content)} bytes to {path}"


def decide_tool(name: str, args: Mapping[str, Any]) -> ToolDecision | None:
    if name == "drop_table":
        signals = {k: args.get(k) for k in ("risk_level", "reversible", "backup_first")}
        scope = {"service": "db-admin-tool", "agent": "pause-escalation-agent", "environment": "production"}
        return ToolDecision("database.drop_table", target=str(args.get("table")), context=signals, scope=scope)
    if name == "write_config":
        scope = {"service": "config-writer", "agent": "pre-commit-agent", "environment": "production"}
        signals = {"content_length": len(str(args.get("content", "")).encode()), "content_type": "yaml"}
        return ToolDecision("file.write", target=str(args.get("path")), context=signals, scope=scope)
    return None


def scripted_model() -> ScriptedModel:
    critical = {"table": "production.users", "risk_level": "critical", "reversible": False, "backup_first": False}
    large = {"path": "/data/config/production.yaml", "content": "x" * 2_000_000}
    return ScriptedModel(
        [
            [function_call("drop_table", critical, call_id="call-1")],
            [function_call("write_config", large, call_id="call-2")],
            [assistant_message("done")],
        ]
    )


def build(client: AsyncMandateClient, model: Model) -> Agent[Any]:
    policy = MandateToolPolicy(client, actor="openai-agents-agent", scope={}, decide_tool=decide_tool)
    tools = [policy.protect(function_tool(drop_table)), policy.protect(function_tool(write_config))]
    return Agent(name="ops", instructions="Keep production tidy.", model=model, tools=tools)


async def run(url: str) -> int:
    context: dict[str, Any] = {}
    async with AsyncMandateClient(url, organization_id=ORGANIZATION_ID, domain="config-management") as client:
        agent = build(client, scripted_model())
        result = await Runner.run(agent, "clean up production", context=context)
        while result.interruptions:
            state = result.to_state()
            for item in result.interruptions:
                ref = context["mandate"][item.call_id]
                print(f"PAUSE {item.name}: {ref['summary']}")
                print(f"approving decision {ref['decision_id']} (needs {', '.join(ref['requires'])})")
                state.approve(item)
            result = await Runner.run(agent, state)
    print(f"final: {result.final_output}")
    print(f"tools that ran: {RAN}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--url", default=os.environ.get("MANDATE_URL", "http://127.0.0.1:3000"), help="Mandate server")
    args = parser.parse_args(argv)
    if not os.environ.get("OPENAI_API_KEY"):
        set_tracing_disabled(True)  # the SDK's own traces go to OpenAI's platform, which needs a key
    try:
        return asyncio.run(run(args.url))
    except MandateError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
