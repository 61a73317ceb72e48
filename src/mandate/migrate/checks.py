"""The checks around migration 008, run from their SQL files: the single source of truth for what is checked.

`migrations/008_PRE_MIGRATION_CHECKS.sql` and `migrations/008_POST_MIGRATION_VERIFICATION.sql` run as they are
with psql. Each fills a TEMP table `m008_check_results` (check_id, section, title, status PASS|FAIL|WARN|INFO,
measured, offending_count, sample text[], remedy) with one row per check, prints it, then — after a line
`-- @@gate@@` — raises when any check FAILed, and rolls back. The runbook runs the part from the first `BEGIN;`
line up to that marker (psql meta-commands and transaction lines blanked, line numbers kept) inside its own
transaction, in a savepoint, and reads the table. Nothing the checks do survives them.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import psycopg

from mandate.db import migration_checks
from mandate.errors import MigrationError
from mandate.migrate.files import migrations_dir

PRE = "008_PRE_MIGRATION_CHECKS.sql"
POST = "008_POST_MIGRATION_VERIFICATION.sql"
GATE_MARKER = "-- @@gate@@"
STATUSES = ("PASS", "FAIL", "WARN", "INFO")

_TXN_LINE = re.compile(r"^\s*(BEGIN|COMMIT|ROLLBACK|START\s+TRANSACTION)\s*;\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class CheckResult:
    check_id: str
    section: str
    title: str
    status: str  # PASS | FAIL | WARN | INFO
    measured: str | None
    offending_count: int | None
    sample: tuple[str, ...]
    remedy: str | None

    def as_json(self) -> dict[str, Any]:
        return {
            "check_id": self.check_id,
            "section": self.section,
            "title": self.title,
            "status": self.status,
            "measured": self.measured,
            "offending_count": self.offending_count,
            "sample": list(self.sample),
            "remedy": self.remedy,
        }

    def describe(self) -> str:
        """One paragraph: what failed, how many rows, the first of them, and the remedy."""
        text = f"{self.check_id} {self.title}: {self.status}"
        if self.measured:
            text += f" (measured: {self.measured})"
        if self.offending_count:
            text += f"; {self.offending_count} offending row(s)"
        if self.sample:
            shown = "; ".join(self.sample[:10])
            more = self.offending_count - len(self.sample[:10]) if self.offending_count else 0
            text += f": {shown}" + (f"; … and {more} more" if more > 0 else "")
        if self.remedy and self.status in ("FAIL", "WARN"):
            text += f". Remedy: {self.remedy}"
        return text


@dataclass(frozen=True)
class CheckScript:
    """One of the two check files, and the part of it the runbook runs."""

    path: Path

    @classmethod
    def named(cls, name: str) -> CheckScript:
        path = migrations_dir() / name
        if not path.is_file():
            raise MigrationError(f"the check script {path} is missing from this installation of Mandate")
        return cls(path)

    @cached_property
    def text(self) -> str:
        return self.path.read_text(encoding="utf-8")

    @cached_property
    def checksum(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()

    def runnable_sql(self) -> str:
        """From the first BEGIN; line up to the gate marker; meta-commands and transaction lines blanked."""
        lines = self.text.splitlines()
        begins = [i for i, line in enumerate(lines) if re.match(r"^\s*BEGIN\s*;\s*$", line, re.IGNORECASE)]
        gates = [i for i, line in enumerate(lines) if line.strip() == GATE_MARKER]
        if not begins or not gates or gates[0] < begins[0]:
            raise MigrationError(
                f"{self.path.name} does not have the expected shape (a BEGIN; line, then a line {GATE_MARKER!r})"
            )
        kept = []
        for i, line in enumerate(lines[: gates[0]]):
            if i <= begins[0] or line.lstrip().startswith("\\") or _TXN_LINE.match(line):
                kept.append("")
            else:
                kept.append(line)
        return "\n".join(kept) + "\n"


@dataclass
class CheckRun:
    """The results of one run of a check script."""

    script: str
    checksum: str
    results: list[CheckResult] = field(default_factory=list)
    duration_s: float = 0.0

    @property
    def failed(self) -> list[CheckResult]:
        return [r for r in self.results if r.status == "FAIL"]

    @property
    def warnings(self) -> list[CheckResult]:
        return [r for r in self.results if r.status == "WARN"]

    @property
    def passed(self) -> bool:
        return bool(self.results) and not self.failed

    def counts(self) -> dict[str, int]:
        return {s: sum(1 for r in self.results if r.status == s) for s in STATUSES}

    def summary(self) -> str:
        c = self.counts()
        return f"{len(self.results)} checks: {c['PASS']} passed, {c['FAIL']} failed, {c['WARN']} warnings, {c['INFO']} info"

    def as_json(self) -> dict[str, Any]:
        return {
            "script": self.script,
            "checksum": self.checksum,
            "duration_s": round(self.duration_s, 3),
            "results": [r.as_json() for r in self.results],
        }


def run(conn: psycopg.Connection[Any], script: CheckScript) -> CheckRun:
    """Run `script` in the caller's transaction, in a savepoint rolled back afterwards; return its results."""
    started = time.perf_counter()
    result = CheckRun(script.path.name, script.checksum)
    try:
        # A savepoint rolled back after reading: the script's temporary table and helper functions go with it.
        with conn.transaction(force_rollback=True):
            conn.execute(script.runnable_sql())
            rows = migration_checks.results(conn)
    except psycopg.Error as exc:
        diag = exc.diag
        where = f" (at {diag.context.strip().splitlines()[-1]})" if diag.context else ""
        raise MigrationError(
            f"{script.path.name} could not run: {(diag.message_primary or str(exc)).strip()}{where}"
        ) from exc
    for check_id, section, title, status, measured, count, sample, remedy in rows:
        status = (status or "").upper()
        if status not in STATUSES:
            raise MigrationError(f"{script.path.name}: check {check_id} has status {status!r}, not one of {STATUSES}")
        result.results.append(
            CheckResult(check_id, section or "", title, status, measured, count, tuple(sample), remedy)
        )
    result.results.sort(key=lambda r: _natural(r.check_id))
    result.duration_s = time.perf_counter() - started
    return result


def _natural(key: str) -> tuple[Any, ...]:
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", key))


def run_alone(
    conn: psycopg.Connection[Any],
    script: CheckScript,
    before: Callable[[psycopg.Connection[Any]], object] | None = None,
) -> CheckRun:
    """Run `script` in a transaction of its own that is rolled back; `before(conn)` runs first inside it."""
    with conn.transaction(force_rollback=True):
        if before is not None:
            before(conn)
        return run(conn, script)
