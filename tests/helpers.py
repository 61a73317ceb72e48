"""Small helpers shared by tests: running the CLI and psql as subprocesses, as an operator would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg

from mandate.db import tools

REPO = Path(__file__).resolve().parents[1]
MIGRATIONS = REPO / "migrations"


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "mandate", *args], capture_output=True, text=True, env=full_env, timeout=timeout
    )


def psql(url: str, *args: str, stdin: str | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run psql (a client at least as new as the server) against `url`."""
    with psycopg.connect(url) as conn:
        major = conn.info.server_version // 10000
    exe = tools.find("psql", major).path
    return subprocess.run(
        [str(exe), "-X", "-d", url, *args], input=stdin, capture_output=True, text=True, timeout=timeout
    )


def scalar(conn: psycopg.Connection[Any], query: str, params: Any = None) -> Any:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return row[0]
