"""The operator's own service commands (`--stop-command`, `--start-command`) and the bounded waits after them.

The runbook does not know how a deployment runs Mandate (docker compose, systemd, Kubernetes…): the operator gives
the commands, the runbook runs them through the shell and then waits, with a time limit, for what it can observe —
no other session left on the database after a stop, the health endpoint answering after a start.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import psycopg

from mandate.db.migration_preflight import TERMINATE_SESSION
from mandate.errors import CheckFailed
from mandate.migrate import preflight


@dataclass(frozen=True)
class CommandRun:
    command: str
    exit_code: int
    duration_s: float
    output_tail: str

    def as_json(self) -> dict[str, Any]:
        return {
            "command": self.command,
            "exit_code": self.exit_code,
            "duration_s": round(self.duration_s, 3),
            "output_tail": self.output_tail,
        }


def run_command(command: str, timeout_s: float, what: str) -> CommandRun:
    """Run `command` through the shell; CheckFailed when it fails or outlives `timeout_s`."""
    started = time.perf_counter()
    try:
        result = subprocess.run(
            command,
            shell=True,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        raise CheckFailed(f"{what} `{command}` did not finish within {timeout_s:g} s") from None
    output = (result.stdout + result.stderr).strip()
    run = CommandRun(command, result.returncode, time.perf_counter() - started, output[-1000:])
    if result.returncode != 0:
        raise CheckFailed(f"{what} `{command}` failed with exit status {result.returncode}: {output[-500:]}")
    return run


def wait_for_no_sessions(
    conn: psycopg.Connection[Any], timeout_s: float, exclude: Collection[int] = (), interval_s: float = 0.25
) -> float:
    """Seconds until no other client session is connected to the database; CheckFailed after `timeout_s`."""
    started = time.perf_counter()
    while True:
        sessions = preflight.other_sessions(conn, exclude)
        if not sessions:
            return time.perf_counter() - started
        if time.perf_counter() - started >= timeout_s:
            raise CheckFailed(
                f"{len(sessions)} session(s) still connected {timeout_s:g} s after the stop command: "
                + "; ".join(s.describe() for s in sessions)
                + f". Stop them ({TERMINATE_SESSION} ends one), or pass --allow-connections"
            )
        time.sleep(interval_s)
