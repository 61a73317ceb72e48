"""The LangGraph guard with the real LangGraph: the example's graph, whose model is LangChain's scripted fake chat
model, calls tools through a `ToolNode` guarded by Mandate; BLOCK comes back to the agent as a tool error, PAUSE
interrupts the thread until it is resumed, and PostgreSQL holds each decision once."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, ToolMessage
from langgraph.types import Command

from mandate.client import MandateClient
from tests.integrations.conftest import EXAMPLES, ORG, Mandate, load_example

example = load_example("langgraph_agent")


@pytest.fixture
def client(mandate: Mandate) -> Iterator[MandateClient]:
    example.RAN.clear()
    with MandateClient(mandate.url, organization_id=ORG, domain="config-management", token=mandate.token) as c:
        yield c


def call(name: str, call_id: str, **args: Any) -> AIMessage:
    return AIMessage(content="", tool_calls=[{"name": name, "args": args, "id": call_id, "type": "tool_call"}])


LARGE_WRITE = {"path": "/data/config/production.yaml", "content": "x" * 2_000_000}


def test_block_is_a_tool_error_the_agent_sees_and_pause_interrupts_until_approved(
    mandate: Mandate, client: MandateClient
) -> None:
    app = example.build(client, example.scripted_model())
    thread = {"configurable": {"thread_id": "t-1"}}

    first = app.invoke({"messages": [("user", "clean up production")]}, thread)
    # BLOCK: the tool did not run; the agent got the refusal as the tool's error result.
    blocked = next(m for m in first["messages"] if isinstance(m, ToolMessage))
    assert blocked.status == "error" and blocked.content.startswith("Blocked by Mandate")
    assert "policy-block-unbackedup-drops-v1" in blocked.content
    # PAUSE: the thread is interrupted with the decision to approve.
    [pending] = first["__interrupt__"]
    ref = pending.value["mandate"]
    assert pending.value["tool"] == "write_config" and ref["requires"] == ["compliance-review"]
    assert example.RAN == []

    done = app.invoke(Command(resume={"approved": True, "decision_id": ref["decision_id"]}), thread)
    assert example.RAN == ["write /data/config/production.yaml"]
    assert done["messages"][-1].content == "done"

    stored = mandate.stored()
    assert [(d["intent"], d["verdict"], d["actor"]) for d in stored] == [
        ("database.drop_table", "BLOCK", "langgraph-agent"),
        ("file.write", "PAUSE", "langgraph-agent"),  # once, although the resumed node asked again
    ]
    assert stored[1]["decision_id"] == ref["decision_id"]
    assert stored[1]["context"] == {"content_length": 2_000_000, "content_type": "yaml"}
    assert mandate.outcomes(stored[0]["decision_id"]) == ["outcome reported: refused"]
    assert mandate.outcomes(stored[1]["decision_id"]) == ["outcome reported: succeeded"]


def test_a_resume_that_does_not_approve_this_decision_refuses_the_tool(mandate: Mandate, client: MandateClient) -> None:
    model = GenericFakeChatModel(messages=iter([call("write_config", "c-9", **LARGE_WRITE), AIMessage(content="no")]))
    app = example.build(client, model)
    thread = {"configurable": {"thread_id": "t-2"}}
    assert app.invoke({"messages": [("user", "write it")]}, thread)["__interrupt__"]
    done = app.invoke(Command(resume={"approved": True, "decision_id": "not-this-one"}), thread)
    refused = next(m for m in done["messages"] if isinstance(m, ToolMessage))
    assert refused.status == "error" and refused.content.startswith("Paused by Mandate")
    assert example.RAN == []
    [decision] = mandate.stored()
    assert decision["verdict"] == "PAUSE"
    assert mandate.outcomes(decision["decision_id"]) == ["outcome reported: refused"]


def test_an_allowed_call_runs_and_is_reported(mandate: Mandate, client: MandateClient) -> None:
    drop = call("drop_table", "c-5", table="staging.users", risk_level="low", reversible=True, backup_first=True)
    model = GenericFakeChatModel(messages=iter([drop, AIMessage(content="ok")]))
    out = example.build(client, model).invoke({"messages": [("user", "drop")]}, {"configurable": {"thread_id": "3"}})
    assert example.RAN == ["drop staging.users"]
    assert out["messages"][-1].content == "ok"
    [decision] = mandate.stored()
    assert decision["verdict"] == "ALLOW" and decision["target"] == "staging.users"
    assert mandate.outcomes(decision["decision_id"]) == ["outcome reported: succeeded"]


def test_the_example_runs_end_to_end(mandate: Mandate) -> None:
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "langgraph_agent.py"), "--url", mandate.url],
        env={**os.environ, "MANDATE_API_TOKEN": mandate.token},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "drop_table: Blocked by Mandate" in done.stdout
    assert "PAUSE write_config" in done.stdout
    assert "tools that ran: ['write /data/config/production.yaml']" in done.stdout
    assert [d["verdict"] for d in mandate.stored()] == ["BLOCK", "PAUSE"]
