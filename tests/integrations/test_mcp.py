"""The MCP guard with the real MCP SDK: an MCP client (driven by a scripted model) calls the sample server's
tools; Mandate decides each `tools/call` before it reaches the tool, and PostgreSQL holds each decision."""

from __future__ import annotations

import os
import sys
from typing import Any

import anyio
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from tests.integrations.conftest import EXAMPLES, Mandate, load_example

CRITICAL_DROP = {"table": "production.users", "risk_level": "critical", "reversible": False, "backup_first": False}
LOW_RISK_DROP = {"table": "staging.users", "risk_level": "low", "reversible": True, "backup_first": True}
LARGE_WRITE = {"path": "/data/config/production.yaml", "content": "x" * 2_500_000}

# The scripted model: the tool calls it makes, in order.
SCRIPT: list[tuple[str, dict[str, Any]]] = [
    ("list_tables", {}),
    ("drop_table", CRITICAL_DROP),
    ("write_config", LARGE_WRITE),
    ("drop_table", LOW_RISK_DROP),
]


async def run_script(client: Client) -> list[Any]:
    return [await client.call_tool(name, arguments) for name, arguments in SCRIPT]


def test_each_tool_call_is_decided_before_it_runs_block_denied_pause_pending(mandate: Mandate) -> None:
    example = load_example("mcp_server")
    server = example.build(mandate.url, token=mandate.token)

    async def scenario() -> list[Any]:
        async with Client(server) as client:
            return await run_script(client)

    listed, blocked, paused, allowed = anyio.run(scenario)
    assert not listed.is_error and "production.users" in str(listed.structured_content)  # ungoverned: ran

    assert blocked.is_error is True
    denial = blocked.structured_content["mandate"]
    assert denial["authorization"] == "denied" and denial["verdict"] == "BLOCK"
    assert "policy-block-unbackedup-drops-v1" in blocked.content[0].text

    assert paused.is_error is True
    pending = paused.structured_content["mandate"]
    assert pending["authorization"] == "pending_approval" and pending["verdict"] == "PAUSE"
    assert pending["requires"] == ["compliance-review"]

    assert not allowed.is_error and allowed.content[0].text == "dropped staging.users"
    assert "staging.users" not in example.TABLES and "production.users" in example.TABLES  # BLOCK never ran

    stored = mandate.stored()
    assert [(d["intent"], d["verdict"]) for d in stored] == [
        ("database.drop_table", "BLOCK"),
        ("file.write", "PAUSE"),
        ("database.drop_table", "ALLOW"),
    ]
    assert stored[0]["decision_id"] == denial["decision_id"]
    assert stored[0]["target"] == "production.users" and stored[0]["actor"] == "db-admin-mcp"
    assert stored[0]["context"] == {"risk_level": "critical", "reversible": False, "backup_first": False}
    assert stored[1]["decision_id"] == pending["decision_id"]
    assert stored[1]["context"] == {"content_length": 2_500_000, "content_type": "yaml"}
    assert mandate.outcomes(stored[0]["decision_id"]) == ["outcome reported: refused"]
    assert mandate.outcomes(stored[2]["decision_id"]) == ["outcome reported: succeeded"]


def test_the_sample_server_over_stdio(mandate: Mandate) -> None:
    params = StdioServerParameters(
        command=sys.executable,
        args=[str(EXAMPLES / "mcp_server.py"), "--url", mandate.url],
        env={**os.environ, "MANDATE_API_TOKEN": mandate.token},
    )

    async def scenario() -> tuple[Any, Any]:
        with anyio.fail_after(60):
            async with Client(params) as client:
                tools = {t.name for t in (await client.list_tools()).tools}
                assert tools == {"drop_table", "write_config", "list_tables"}
                return await client.call_tool("drop_table", CRITICAL_DROP), await client.call_tool(
                    "drop_table", LOW_RISK_DROP
                )

    blocked, allowed = anyio.run(scenario)
    assert blocked.is_error and blocked.structured_content["mandate"]["verdict"] == "BLOCK"
    assert allowed.content[0].text == "dropped staging.users"
    assert [d["verdict"] for d in mandate.stored()] == ["BLOCK", "ALLOW"]
