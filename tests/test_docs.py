"""Documentation is tested: every API route and every CLI command appears in docs/."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import typer.main

from mandate.cli import app
from mandate.web.app import create_app

DOCS = Path(__file__).resolve().parents[1] / "docs"


def _docs_text() -> str:
    return "\n".join(p.read_text() for p in DOCS.glob("*.md"))


def test_every_api_route_is_documented_with_an_example() -> None:
    api_md = (DOCS / "api.md").read_text()
    app_ = create_app("postgresql://unused@127.0.0.1:1/unused")
    paths = {
        (method.upper(), path)
        for path, operations in app_.openapi()["paths"].items()
        for method in operations
        if path.startswith("/api/")
    }
    assert paths
    for method, path in sorted(paths):
        if method == "HEAD":
            continue
        heading = f"### `{method} {path}`"
        assert heading in api_md, f"docs/api.md has no section {heading}"
        section = api_md.split(heading, 1)[1].split("\n### ", 1)[0]
        assert "curl " in section, f"the section for {method} {path} has no example"


def _commands(group: Any, prefix: str = "mandate") -> list[str]:
    found = []
    for name, command in group.commands.items():
        full = f"{prefix} {name}"
        if hasattr(command, "commands"):
            found += _commands(command, full)
        else:
            found.append(full)
    return found


def test_every_cli_command_is_documented() -> None:
    text = _docs_text()
    commands = _commands(typer.main.get_command(app))
    assert "mandate migrate up" in commands
    missing = [c for c in commands if not re.search(re.escape(c) + r"\b", text)]
    assert missing == [], f"commands not mentioned in docs/: {missing}"
