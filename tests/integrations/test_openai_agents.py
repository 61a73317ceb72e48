"""The OpenAI Agents SDK guard with the real SDK: the example's agent, driven by the SDK's ScriptedModel, calls
protected function tools; BLOCK is a guardrail rejection the model sees, PAUSE the SDK's approval interruption,
and PostgreSQL holds each decision once."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import anyio
import pytest
from agents import Runner
from agents.testing import ScriptedModel, assistant_message, function_call

from mandate.client import AsyncMandateClient
from tests.integrations.conftest import EXAMPLES, ORG, Mandate, load_example

example = load_example("openai_agents_agent")
LARGE_WRITE = {"path": "/data/config/production.yaml", "content": "x" * 2_000_000}


@pytest.fixture(autouse=True)
def no_sdk_tracing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_AGENTS_DISABLE_TRACING", "1")  # the SDK's own traces would go to OpenAI
    example.RAN.clear()


def client(mandate: Mandate) -> AsyncMandateClient:
    return AsyncMandateClient(mandate.url, organization_id=ORG, domain="config-management", token=mandate.token)


def test_block_is_rejected_and_pause_waits_for_the_sdks_approval(mandate: Mandate) -> None:
    context: dict[str, Any] = {}

    async def scenario() -> tuple[Any, Any]:
        async with client(mandate) as mandate_client:
            agent = example.build(mandate_client, example.scripted_model())
            first = await Runner.run(agent, "clean up production", context=context)
            interrupted = first
            state = first.to_state()
            for item in first.interruptions:
                state.approve(item)
            return interrupted, await Runner.run(agent, state)

    first, done = anyio.run(scenario)
    [item] = first.interruptions
    assert item.name == "write_config"
    ref = context["mandate"][item.call_id]  # kept in the run context, so in the RunState
    assert ref["requires"] == ["compliance-review"]
    assert example.RAN == ["write /data/config/production.yaml"]  # the BLOCKed drop never ran
    assert done.final_output == "done"
    rejected = [i for i in first.new_items if getattr(i, "type", "") == "tool_call_output_item"]
    assert any("Blocked by Mandate" in str(i.output) for i in rejected)

    stored = mandate.stored()
    assert [(d["intent"], d["verdict"], d["actor"]) for d in stored] == [
        ("database.drop_table", "BLOCK", "openai-agents-agent"),
        ("file.write", "PAUSE", "openai-agents-agent"),  # once: approval and guardrail asked the same decision
    ]
    assert stored[1]["decision_id"] == ref["decision_id"]
    assert mandate.outcomes(stored[0]["decision_id"]) == ["outcome reported: refused"]


def test_a_rejected_approval_never_runs_the_tool(mandate: Mandate) -> None:
    model = ScriptedModel([[function_call("write_config", LARGE_WRITE, call_id="c-7")], [assistant_message("ok")]])

    async def scenario() -> Any:
        async with client(mandate) as mandate_client:
            agent = example.build(mandate_client, model)
            first = await Runner.run(agent, "write it", context={})
            state = first.to_state()
            for item in first.interruptions:
                state.reject(item)
            return await Runner.run(agent, state)

    assert anyio.run(scenario).final_output == "ok"
    assert example.RAN == []
    assert [d["verdict"] for d in mandate.stored()] == ["PAUSE"]


def test_an_allowed_call_runs_without_approval(mandate: Mandate) -> None:
    drop = {"table": "staging.users", "risk_level": "low", "reversible": True, "backup_first": True}
    model = ScriptedModel([[function_call("drop_table", drop, call_id="c-1")], [assistant_message("ok")]])

    async def scenario() -> Any:
        async with client(mandate) as mandate_client:
            return await Runner.run(example.build(mandate_client, model), "drop staging", context={})

    result = anyio.run(scenario)
    assert not result.interruptions and result.final_output == "ok"
    assert example.RAN == ["drop staging.users"]
    [decision] = mandate.stored()
    assert decision["verdict"] == "ALLOW" and decision["target"] == "staging.users"


def test_the_example_runs_end_to_end(mandate: Mandate) -> None:
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "openai_agents_agent.py"), "--url", mandate.url],
        env={**os.environ, "MANDATE_API_TOKEN": mandate.token},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "PAUSE write_config" in done.stdout and "final: done" in done.stdout
    assert "tools that ran: ['write /data/config/production.yaml']" in done.stdout
    assert [d["verdict"] for d in mandate.stored()] == ["BLOCK", "PAUSE"]
