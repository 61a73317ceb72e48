"""A LangGraph agent whose tools Mandate guards; PAUSE interrupts the thread until a human approves.

    MANDATE_API_TOKEN=mdt_… python examples/langgraph_agent.py --url http://127.0.0.1:3000

The model here is LangChain's scripted fake chat model (no API key needed): it drops a critical table without a
backup (BLOCK: the agent is told, the tool never runs), then writes a 2 MB production file (PAUSE: the graph is
interrupted; this script approves it by resuming with the decision id), then finishes. Put a real chat model in
`agent` for real use; the guard does not change.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator, Mapping
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition
from langgraph.types import Command

from mandate.client import MandateClient, MandateError
from mandate.demo.scenarios import ORGANIZATION_ID
from mandate.integrations import ToolDecision
from mandate.integrations.langgraph import MandateToolGuard

RAN: list[str] = []


@tool
def drop_table(table: str, risk_level: str, reversible: bool, backup_first: bool) -> str:
    """Drop a database table."""
    RAN.append(f"drop {table}")
    return f"dropped {table}"


@tool
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


def scripted_model() -> GenericFakeChatModel:
    def call(name: str, call_id: str, **args: Any) -> AIMessage:
        return AIMessage(content="", tool_calls=[{"name": name, "args": args, "id": call_id, "type": "tool_call"}])

    turns: Iterator[AIMessage] = iter(
        [
            call("drop_table", "call-1", table="production.users", risk_level="critical", reversible=False,
                 backup_first=False),
            call("write_config", "call-2", path="/data/config/production.yaml", content="x" * 2_000_000),
            AIMessage(content="done"),
        ]
    )  # fmt: skip
    return GenericFakeChatModel(messages=turns)


def build(client: MandateClient, model: BaseChatModel) -> Any:
    """The agent graph: model → (tool calls?) → tools guarded by Mandate → model …"""
    guard = MandateToolGuard(client, actor="langgraph-agent", scope={}, decide_tool=decide_tool)

    def agent(state: MessagesState) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    graph = StateGraph(MessagesState)
    graph.add_node("agent", agent)
    graph.add_node("tools", ToolNode([drop_table, write_config], wrap_tool_call=guard))
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", tools_condition)
    graph.add_edge("tools", "agent")
    return graph.compile(checkpointer=InMemorySaver())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--url", default=os.environ.get("MANDATE_URL", "http://127.0.0.1:3000"), help="Mandate server")
    args = parser.parse_args(argv)
    thread = {"configurable": {"thread_id": "example"}}
    try:
        with MandateClient(args.url, organization_id=ORGANIZATION_ID, domain="config-management") as client:
            app = build(client, scripted_model())
            state = app.invoke({"messages": [("user", "clean up production")]}, thread)
            for pending in state.get("__interrupt__", []):
                mandate = pending.value["mandate"]
                print(f"PAUSE {pending.value['tool']}: {mandate['summary']}")
                print(f"approving decision {mandate['decision_id']} (needs {', '.join(mandate['requires'])})")
                state = app.invoke(Command(resume={"approved": True, "decision_id": mandate["decision_id"]}), thread)
    except MandateError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for message in state["messages"]:
        if message.type == "tool":
            print(f"{message.name}: {message.content}")
    print(f"tools that ran: {RAN}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
