"""What a run of the 008 runbook is asked to do (`Options`, from `mandate migrate run 008`'s flags) and how it ended
(`Outcome`), with the migration it runs, its phases, and how the run names itself and its database."""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import conninfo

from mandate.migrate.files import load
from mandate.migrate.remedies import Remedies

VERSION = 8
APPLICATION = "mandate migrate run 008"


@dataclass(frozen=True)
class Options:
    dry_run: bool = False
    backup: bool | None = None  # None: a real run backs up, a dry run does not
    backup_dir: Path | None = None
    backup_copy_to: Path | None = None
    verify_restore: bool = False
    api_url: str | None = None
    report: Path | None = None
    allow_connections: bool = False
    lock_timeout: str = "10s"
    lock_retries: int = 3
    statement_timeout: str = "0"
    yes: bool = False
    stop_command: str | None = None
    start_command: str | None = None
    stop_wait_s: float = 300.0
    start_wait_s: float = 300.0
    to: int | None = None  # None: 008 and every later pending migration (what this Mandate needs)
    rehearse: bool | None = None  # None: rehearse 008→target before the backup when it takes ≤ REHEARSAL_LIMIT_S
    remedies: Remedies = field(default_factory=Remedies)

    @property
    def takes_backup(self) -> bool:
        return (not self.dry_run) if self.backup is None else self.backup

    def as_json(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "backup": self.takes_backup,
            "backup_dir": str(self.backup_dir) if self.backup_dir else None,
            "backup_copy_to": str(self.backup_copy_to) if self.backup_copy_to else None,
            "verify_restore": self.verify_restore,
            "api_url": self.api_url,
            "report": str(self.report) if self.report else None,
            "allow_connections": self.allow_connections,
            "lock_timeout": self.lock_timeout,
            "lock_retries": self.lock_retries,
            "statement_timeout": self.statement_timeout,
            "yes": self.yes,
            "stop_command": self.stop_command,
            "start_command": self.start_command,
            "stop_wait_s": self.stop_wait_s,
            "start_wait_s": self.start_wait_s,
            "to": self.to,
            "rehearse": self.rehearse,
            "remedies": self.remedies.as_json(),
        }


@dataclass
class Outcome:
    """What `Runbook.run` returns: where the report is and how it ended."""

    status: str  # succeeded | rehearsed | already_applied | failed | refused
    report_markdown: Path | None
    report_json: Path | None
    message: str
    data: dict[str, Any]


def redact(url: str) -> str:
    """The URL as shown in reports and logs: without its password."""
    try:
        params = conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "(unparsable URL)"
    params.pop("password", None)
    return conninfo.make_conninfo(**{k: str(v) for k, v in params.items() if v is not None})


def phase_plan() -> list[str]:
    """The phases announced by 008 (its RAISE NOTICE lines), for the report and the plan."""
    f = next(m for m in load() if m.version == VERSION)
    return re.findall(r"RAISE NOTICE '(phase \d+/\d+: [^']*)'", f.text)


def command_line() -> str:
    """The command as the operator typed it, for the report and the advice to run it again."""
    return " ".join(["mandate", *sys.argv[1:]])
