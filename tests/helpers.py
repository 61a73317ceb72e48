"""Small helpers shared by tests: running the CLI and psql as subprocesses, as an operator would."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg

from mandate.db import tools
from mandate.migrate.files import MigrationFile, load

REPO = Path(__file__).resolve().parents[1]
MIGRATIONS = REPO / "migrations"
RELEASED = Path(__file__).resolve().parent / "migrate" / "released"


def released_chain(folder: Path, released: str) -> list[MigrationFile]:
    """The migrations up to the version of `released` (a file of tests/migrate/released/: a migration as first
    released, before it was edited), that one as released; copied into `folder`."""
    folder.mkdir()
    version = int(released[:3])
    for f in load(MIGRATIONS):
        if f.version < version:
            shutil.copy(f.path, folder / f.path.name)
    shutil.copy(RELEASED / released, folder / released)
    return load(folder)


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
