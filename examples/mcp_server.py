"""A sample MCP server whose tools Mandate guards: a database admin's `drop_table`, `write_config`, `list_tables`.

    MANDATE_API_TOKEN=mdt_… python examples/mcp_server.py --url http://127.0.0.1:3000     # MCP on stdio

Each `tools/call` is a Mandate decision first (mandate.integrations.mcp): with the demo governance, dropping a
critical table without a backup is refused (BLOCK, a structured denial the client sees), a 2.5 MB production write
waits for a compliance review (PAUSE, pending approval), a low-risk reversible drop runs. `list_tables` only reads,
so it is not governed. Any MCP client can connect, e.g. an MCP-capable desktop agent configured with this command.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from mcp.server.mcpserver import MCPServer

from mandate.client import AsyncMandateClient
from mandate.demo.scenarios import ORGANIZATION_ID
from mandate.integrations import ToolDecision
from mandate.integrations.mcp import MandateMiddleware

DB_ADMIN = {"service": "db-admin-tool", "agent": "pause-escalation-agent", "environment": "production"}
CONFIG_WRITER = {"service": "config-writer", "agent": "pre-commit-agent", "environment": "production"}
TABLES = ["production.users", "production.orders", "staging.users"]


def decide_tool(name: str, arguments: Mapping[str, Any]) -> ToolDecision | None:
    """Which Mandate decision each tool call is (None: not governed)."""
    if name == "drop_table":
        signals = {k: arguments.get(k) for k in ("risk_level", "reversible", "backup_first")}
        return ToolDecision("database.drop_table", target=str(arguments.get("table")), context=signals, scope=DB_ADMIN)
    if name == "write_config":
        content = str(arguments.get("content", ""))
        return ToolDecision(
            "file.write",
            target=str(arguments.get("path")),
            context={"content_length": len(content.encode()), "content_type": arguments.get("content_type", "yaml")},
            scope=CONFIG_WRITER,
        )
    return None


def build(url: str, token: str | None = None) -> MCPServer:
    mandate = AsyncMandateClient(url, organization_id=ORGANIZATION_ID, domain="config-management", token=token)
    guard = MandateMiddleware(
        mandate, actor="db-admin-mcp", scope={"environment": "production"}, decide_tool=decide_tool
    )

    @asynccontextmanager
    async def close_mandate(_server: MCPServer) -> AsyncIterator[dict[str, Any]]:
        try:
            yield {}
        finally:
            await mandate.aclose()

    server = MCPServer("db-admin", middleware=[guard], lifespan=close_mandate)

    @server.tool()
    def drop_table(table: str, risk_level: str, reversible: bool, backup_first: bool) -> str:
        """Drop a table (Mandate decides first)."""
        if table in TABLES:
            TABLES.remove(table)
        return f"dropped {table}"

    @server.tool()
    def write_config(path: str, content: str, content_type: str = "yaml") -> str:
        """Write a configuration file (Mandate decides first)."""
        return f"wrote {len(content.encode())} bytes of {content_type} to {path}"

    @server.tool()
    def list_tables() -> list[str]:
        """The tables (read-only: not governed)."""
        return list(TABLES)

    return server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--url", default=os.environ.get("MANDATE_URL", "http://127.0.0.1:3000"), help="Mandate server")
    args = parser.parse_args(argv)
    build(args.url).run("stdio")
    return 0


if __name__ == "__main__":
    sys.exit(main())
