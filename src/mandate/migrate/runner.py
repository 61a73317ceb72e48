"""The migration runner: applies `migrations/NNN_*.sql` in order, one transaction each, recorded in migration_log.

A session-level advisory lock keeps two runners from interleaving; the second waits (bounded) and then fails,
naming the holder. A database that predates migration_log but has the legacy Mandate shape (LEGACY-SCHEMA.md) is
adopted: versions 001–007 are recorded as a baseline instead of being re-run. A database that is neither empty,
managed, nor legacy is refused with what differs.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources
from typing import Any

import psycopg

import mandate
from mandate.db import catalog as pg_catalog
from mandate.db import migration_lock, migration_log
from mandate.errors import (
    MigrationError,
    MigrationFailed,
    MigrationLockTimeout,
    SchemaTooOld,
    UnknownDatabaseShape,
)
from mandate.migrate import catalog
from mandate.migrate.files import MigrationFile, load

LEGACY_BASELINE = 7
TOOL = f"mandate {mandate.__version__}"
#: Tables an operator (or `mandate migrate run 008`) creates for migration 008's remedies, which 008 reads and
#: drops: they are not part of the schema, so a legacy database holding them is still recognised as legacy.
OPERATOR_TABLES = frozenset({"migration_008_domain_slugs", "migration_008_scope_ids", "migration_008_unattributed"})

#: Checksums of earlier releases of a migration file that the runner still accepts as "this file, applied".
#: 009 as first released also keyed the timeline to (decision_id, stage), which rejects the original server's outcome
#: reports, so it could never apply to a database holding them; that foreign key moved to 010 (docs/migrations.md,
#: "Migration 009 was edited once"). Databases that applied the released file are not "changed": 010 brings them to
#: the same schema as the edited file does. 014 as first released filled decision_events.verdict with an UPDATE of
#: every row (339 s and 2.3 × the table's size at 1 M decisions); it now rewrites the table once with the same values
#: and the same schema (docs/migrations.md, "014").
EARLIER_CHECKSUMS: Mapping[int, frozenset[str]] = {
    9: frozenset({"47d4520f6b6777bca7a858913267b67ecab78484ace771eba3ed02458a257e6f"}),
    14: frozenset({"9493093abf7ffd295a8a2466075ff297ac402a4022039bf5c3b98b50595c1c26"}),  # filled by an UPDATE
}

Progress = Callable[[str], None]


@dataclass(frozen=True)
class AppliedMigration:
    version: int
    name: str
    checksum: str | None
    started_at: datetime
    duration_ms: float
    applied_by: str
    tool_version: str
    baseline: bool


@dataclass
class Status:
    state: str  # empty | legacy | managed
    applied: list[AppliedMigration] = field(default_factory=list)
    pending: list[MigrationFile] = field(default_factory=list)
    changed: list[tuple[AppliedMigration, MigrationFile]] = field(default_factory=list)
    unknown: list[AppliedMigration] = field(default_factory=list)  # applied, but no such file in this code
    index_warnings: list[str] = field(default_factory=list)

    @property
    def current_version(self) -> int:
        return max((a.version for a in self.applied), default=0)


def legacy_description() -> dict[str, Any]:
    text = resources.files("mandate.migrate").joinpath("legacy_schema.json").read_text(encoding="utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def classify(conn: psycopg.Connection[Any]) -> tuple[str, list[str]]:
    """Return (state, index_warnings) with state empty | managed | legacy; raise UnknownDatabaseShape otherwise."""
    tables = set(pg_catalog.tables(conn))
    if "migration_log" in tables:
        return "managed", []
    if not tables:
        return "empty", []
    comparison = catalog.compare(catalog.describe(conn, exclude=OPERATOR_TABLES), legacy_description())
    if comparison.matches:
        return "legacy", comparison.index_warnings
    shown = comparison.structural[:25]
    more = len(comparison.structural) - len(shown)
    raise UnknownDatabaseShape(
        "schema mandate holds tables but no migration_log, and it is not the legacy Mandate schema "
        "(LEGACY-SCHEMA.md), so the runner will not touch it. What differs:\n  - "
        + "\n  - ".join(shown)
        + (f"\n  … and {more} more" if more else "")
    )


def applied_migrations(conn: psycopg.Connection[Any]) -> list[AppliedMigration]:
    rows = migration_log.applied(conn)
    return [AppliedMigration(r[0], r[1], r[2], r[3], float(r[4]), r[5], r[6], r[7]) for r in rows]


def status(conn: psycopg.Connection[Any], files: list[MigrationFile] | None = None) -> Status:
    files = load() if files is None else files
    state, warnings = classify(conn)
    result = Status(state=state, index_warnings=warnings)
    if state == "managed":
        result.applied = applied_migrations(conn)
    by_version = {f.version: f for f in files}
    done = {a.version for a in result.applied}
    if state == "legacy":
        done = set(range(1, LEGACY_BASELINE + 1))
    result.pending = [f for f in files if f.version not in done]
    for a in result.applied:
        f = by_version.get(a.version)
        if f is None:
            result.unknown.append(a)
        elif a.checksum not in (None, f.checksum, *EARLIER_CHECKSUMS.get(a.version, ())):
            result.changed.append((a, f))
    return result


class MigrationLock:
    """The session-level advisory lock that serialises runners (a context manager)."""

    def __init__(self, conn: psycopg.Connection[Any], wait_s: float) -> None:
        self.conn = conn
        self.wait_s = wait_s

    def __enter__(self) -> MigrationLock:
        try:
            migration_lock.acquire(self.conn, self.wait_s)
        except psycopg.errors.LockNotAvailable:
            holder = migration_lock.holder(self.conn)
            who = (
                f"pid {holder[0]}, application {holder[1]!r}, user {holder[2]}, connected since {holder[3]:%Y-%m-%d %H:%M:%S%z}"
                if holder
                else "a session that has since released it"
            )
            raise MigrationLockTimeout(
                f"another migration runner holds the migration lock ({who}); waited {self.wait_s:g}s. "
                "Let it finish, or stop that session, then run the command again."
            ) from None
        return self

    def __exit__(self, *exc: object) -> None:
        if not self.conn.closed:
            migration_lock.release(self.conn)


@contextlib.contextmanager
def holding_lock(conn: psycopg.Connection[Any], wait_s: float) -> Iterator[None]:
    """Hold the runners' advisory lock for the block (the whole runbook run); releasing it on a broken connection is
    not an error."""
    lock = MigrationLock(conn, wait_s)
    lock.__enter__()
    try:
        yield
    finally:
        with contextlib.suppress(psycopg.Error):
            lock.__exit__(None, None, None)


def lock_holder(conn: psycopg.Connection[Any]) -> tuple[int, str] | None:
    """(pid, application) of the session holding the migration lock, if any."""
    holder = migration_lock.holder(conn)
    return (holder[0], holder[1]) if holder else None


def require_head(conn: psycopg.Connection[Any]) -> None:
    """SchemaTooOld unless every shipped migration is applied (what writing governance needs)."""
    pending = status(conn).pending
    if pending:
        raise SchemaTooOld(
            f"the database schema lacks migration(s) {', '.join(f'{f.version:03d}' for f in pending)};"
            " run `mandate migrate up` first"
        )


@dataclass
class Runner:
    """Applies pending migrations. `conn` must be in autocommit mode (each migration opens its own transaction)."""

    conn: psycopg.Connection[Any]
    lock_wait_s: float = 30.0
    lock_timeout: str = "10s"
    statement_timeout: str = "0"
    progress: Progress = lambda _message: None
    files: list[MigrationFile] = field(default_factory=load)

    def up(
        self, to: int | None = None, details: Mapping[int, Mapping[str, Any]] | None = None
    ) -> list[AppliedMigration]:
        """Apply pending migrations up to `to` (default: all). Returns what was applied now."""
        if to is not None and to not in {f.version for f in self.files}:
            raise MigrationError(f"there is no migration {to:03d}; known: {', '.join(f.label for f in self.files)}")
        done: list[AppliedMigration] = []
        with MigrationLock(self.conn, self.lock_wait_s):
            state, warnings = classify(self.conn)
            self._bootstrap(state, warnings)
            current = status(self.conn, self.files)
            for f in current.pending:
                if to is not None and f.version > to:
                    break
                done.append(self.apply(f, (details or {}).get(f.version, {})))
        return done

    def _bootstrap(self, state: str, index_warnings: list[str]) -> None:
        if state == "managed":
            return
        with self.conn.transaction():
            migration_log.create(self.conn)
            if state == "legacy":
                self.progress(f"adopting a legacy Mandate database: recording 001–{LEGACY_BASELINE:03d} as baseline")
                for f in self.files:
                    if f.version > LEGACY_BASELINE:
                        break
                    migration_log.record_baseline(
                        self.conn,
                        f.version,
                        f.name,
                        f"baseline: adopted from an existing legacy database — {f.description}",
                        TOOL,
                        {"index_warnings": index_warnings},
                    )

    def apply(self, f: MigrationFile, details: Mapping[str, Any] | None = None) -> AppliedMigration:
        self.progress(f"applying {f.label}: {f.description}")
        started = time.perf_counter()

        def forward(diag: psycopg.errors.Diagnostic) -> None:
            # What the migration says (RAISE: its phases) and every warning are shown; PostgreSQL's own notices
            # ("… already exists, skipping" for IF [NOT] EXISTS) are not news to the operator.
            said = diag.source_function == "exec_stmt_raise" or diag.severity_nonlocalized != "NOTICE"
            if diag.message_primary and said:
                self.progress(diag.message_primary)

        self.conn.add_notice_handler(forward)
        try:
            with self.conn.transaction():
                self.session_settings()
                started_at = migration_log.clock(self.conn)
                self.conn.execute(f.executable_sql())
                duration_ms = (time.perf_counter() - started) * 1000
                migration_log.record_applied(
                    self.conn,
                    version=f.version,
                    name=f.name,
                    description=f.description,
                    checksum=f.checksum,
                    started_at=started_at,
                    duration_ms=duration_ms,
                    tool=TOOL,
                    details=details or {},
                )
        except psycopg.Error as exc:
            diag = exc.diag
            where = f" (at {diag.context.strip().splitlines()[0]})" if diag.context else ""
            detail = diag.message_detail.strip() if diag.message_detail else None
            hint = diag.message_hint.strip() if diag.message_hint else None
            raise MigrationFailed(
                f"migration {f.label} failed and was rolled back: {(diag.message_primary or str(exc)).strip()}{where}"
                + (f"\n  DETAIL: {detail}" if detail else "")
                + (f"\n  HINT: {hint}" if hint else ""),
                version=f.version,
                label=f.label,
                sqlstate=exc.sqlstate,
                detail=detail,
                hint=hint,
            ) from exc
        finally:
            self.conn.remove_notice_handler(forward)
        self.progress(f"applied {f.label} in {duration_ms:.0f} ms")
        return AppliedMigration(f.version, f.name, f.checksum, started_at, duration_ms, "", TOOL, False)

    def session_settings(self) -> None:
        """Transaction-local settings for a migration: timeouts, and the marker that the runner records it."""
        migration_log.apply_settings(self.conn, self.lock_timeout, self.statement_timeout)
