"""`mandate migrate run 008`: the operator's whole execution checklist for migration 008, as one safe command.

In order, each step timed, shown live and logged:

1. pre-flight — the database is at 007 (legacy or managed), the remedies given make sense, the operator's
   --stop-command ran and the sessions went away, then everything is measured (preflight.py); a FAIL refuses.
2. pre-migration checks — 008_PRE_MIGRATION_CHECKS.sql with the remedies filled in, in a transaction rolled back;
   any FAIL stops here, naming the rows and the remedy (the gate).
3. backup — pg_dump -Fc, read back completely and compared with the catalog, hashed, optionally copied and
   restore-tested (backup.py). A dry run skips it unless --backup.
4. migration — after a confirmation (unless --yes), ONE transaction: the eight tables locked (lock_timeout, retried
   with backoff), the remedies filled, the pre-checks run again when other sessions were allowed (they may have
   written since; otherwise nobody could), row counts and content checksums captured, then the
   Runner applies 008 (and the later migrations up to --to) as a savepoint of that transaction, timed phase by phase
   from 008's NOTICEs;
5. post-verification — 008_POST_MIGRATION_VERIFICATION.sql, counts and checksums compared — still before COMMIT;
6. constraint tests — in a savepoint rolled back — still before COMMIT. Any failure so far rolls everything back.
   Then COMMIT (a dry run rolls back instead), and 5–6 again after COMMIT, ANALYZE, --start-command;
7. smoke tests — against --api-url, or Mandate's API started in-process;
8. report — Markdown and JSON (report.py), its path printed.

A kill or a lost connection at any moment before COMMIT leaves the database exactly as it was: nothing is committed
before the final COMMIT, and the server rolls back a transaction whose client is gone (checked every second on
PostgreSQL 14+, client_connection_check_interval). A failure says what failed, whether the database changed, and
the next command; after COMMIT that is the restore of the verified backup.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg import conninfo
from rich.console import Console

from mandate.db import migration_backup, migration_log, migration_preflight, migration_runbook
from mandate.db.connect import connect
from mandate.errors import BackupError, CheckFailed, ConfigError, MandateError, MigrationError, MigrationFailed
from mandate.migrate import backup as backups
from mandate.migrate import baseline, checks, constraints, preflight, runner, services, smoke
from mandate.migrate import estimate as estimating
from mandate.migrate import report as reporting
from mandate.migrate.files import load
from mandate.migrate.progress import Progress
from mandate.migrate.remedies import Remedies

VERSION = 8
APPLICATION = "mandate migrate run 008"
LAST_REPORT = "migration-008-last-report"
RETRY_BACKOFF_S = 2.0
SETTLE_S = 3.0
#: Rehearse the whole chain (008 → target, rolled back) before the backup when the estimated migration takes at most
#: this long; beyond it, the gate's checks (which cover what 009 and 010 require of history) and the migration
#: transaction itself (all or nothing) stand in for it, unless --rehearse asks for it anyway.
REHEARSAL_LIMIT_S = 120.0


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


@contextlib.contextmanager
def _migration_lock(conn: psycopg.Connection[Any], wait_s: float) -> Iterator[None]:
    """Hold the runners' advisory lock for the whole run; releasing it on a broken connection is not an error."""
    lock = runner.MigrationLock(conn, wait_s)
    lock.__enter__()
    try:
        yield
    finally:
        with contextlib.suppress(psycopg.Error):
            lock.__exit__(None, None, None)


class _LockBusy(Exception):
    """The tables could not be locked within lock_timeout (retried by the caller)."""


class TablesLocked(CheckFailed):
    """Every attempt to lock the tables failed: other sessions hold locks on them (named in the message)."""


@dataclass
class Outcome:
    """What `run` returns: where the report is and how it ended."""

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


class Runbook:
    """One run of the 008 runbook. `run()` never leaves the database half-migrated; see the module docstring."""

    def __init__(
        self,
        url: str,
        options: Options,
        *,
        data_dir: Path,
        console: Console,
        command: str = "mandate migrate run 008",
        confirm: Callable[[str], bool] | None = None,
        live: bool | None = None,
        lock_wait_s: float = 30.0,
        api_app: smoke.AppFactory | None = None,
    ) -> None:
        # Every path the report, the restore command and migration_log.details name is absolute.
        options = dataclasses.replace(
            options,
            backup_dir=options.backup_dir.absolute() if options.backup_dir else None,
            backup_copy_to=options.backup_copy_to.absolute() if options.backup_copy_to else None,
            report=options.report.absolute() if options.report else None,
        )
        data_dir = data_dir.absolute()
        self.url = url
        self.opts = options
        self.data_dir = data_dir
        self.console = console
        self.command = command
        self.confirm = confirm
        self.live = live
        self.lock_wait_s = lock_wait_s
        self.api_app = api_app
        self.started = datetime.now(UTC)
        self.run_id = self.started.strftime("%Y%m%d-%H%M%S") + ("-dry-run" if options.dry_run else "")
        self.backup_dir = options.backup_dir or data_dir / "backups"
        self.run_dir = self.backup_dir / f"m008-{self.run_id}"
        if options.report is not None:
            self.markdown = options.report
            self.json = options.report.with_suffix(".json")
            self.log_path = options.report.with_suffix(".log")
        else:
            self.markdown = self.run_dir / "report.md"
            self.json = self.run_dir / "report.json"
            self.log_path = self.run_dir / "run.log"
        self.data: dict[str, Any] = {}
        self.progress: Progress | None = None
        self.conn: psycopg.Connection[Any] | None = None
        self.pf: preflight.Preflight | None = None
        self.before: dict[str, baseline.TableState] | None = None
        self.backup: backups.Backup | None = None
        self.committed = False
        self.restore_state: dict[str, Any] | None = None
        self.resume: dict[str, Any] | None = None  # migration_log.details.runbook of a run killed after COMMIT

    # -- entry point ----------------------------------------------------------------------------------------------
    def run(self) -> Outcome:
        """Validate (writing nothing when the options or the database rule the run out), then run every step."""
        self._validate_paths()
        conn = connect(self.url, application=APPLICATION)
        self.conn = conn
        try:
            state = self._validate_database(conn)
            if state is not None:
                return state  # nothing to do, so nothing to confirm
            if self.resume is None and not self.opts.dry_run and not self.opts.yes and self.confirm is None:
                raise ConfigError("no terminal to ask for confirmation: pass --yes to migrate without asking")
            return self._run_steps(conn)
        finally:
            conn.close()

    def _validate_paths(self) -> None:
        problem = preflight.writable_dir(self.backup_dir)
        if problem is not None:
            raise ConfigError(f"--backup-dir: {problem}; nothing was done")
        if self.opts.report is not None and (problem := preflight.writable_dir(self.opts.report.parent)):
            raise ConfigError(f"--report: {problem}; nothing was done")
        if self.opts.backup_copy_to is not None and (problem := preflight.writable_dir(self.opts.backup_copy_to)):
            raise ConfigError(f"--backup-copy-to: {problem}; nothing was done")

    def _validate_database(self, conn: psycopg.Connection[Any]) -> Outcome | None:
        """None when the run may go on; an Outcome when there is nothing to do. Raises for what rules it out."""
        st = runner.status(conn)
        if st.state == "empty":
            raise CheckFailed(
                "the database is empty: there is no legacy data to migrate; `mandate migrate up` installs Mandate"
            )
        applied = {a.version: a for a in st.applied}
        if VERSION in applied and (unfinished := self._unfinished_run(conn)) is not None:
            self.resume = unfinished
            return None
        if VERSION in applied:
            a = applied[VERSION]
            message = (
                f"migration 008 is already applied on this database (at {a.started_at:%Y-%m-%d %H:%M:%S%z} by "
                f"{a.applied_by or '?'} with {a.tool_version}): nothing to do. `mandate migrate verify 008` checks it; "
                "`mandate migrate up` applies later migrations"
            )
            return Outcome("already_applied", None, None, message, {})
        if st.state == "managed" and st.current_version < VERSION - 1:
            raise CheckFailed(
                f"the database is at schema version {st.current_version:03d}; 008 needs 007: run "
                "`mandate migrate up --to 7` first"
            )
        versions = [f.version for f in load()]
        if self.opts.to is not None and (self.opts.to < VERSION or self.opts.to not in versions):
            raise ConfigError(f"--to must be a migration version from 8 to {versions[-1]} (got {self.opts.to})")
        self.opts.remedies.validate(conn)
        return None

    def _unfinished_run(self, conn: psycopg.Connection[Any]) -> dict[str, Any] | None:
        """The runbook details of the run that committed 008 when it never wrote its report (it was killed or lost
        its machine after COMMIT, before ANALYZE, the checks after COMMIT, the smoke tests and the report)."""
        found = (migration_log.details(conn, VERSION) or {}).get("runbook") or {}
        report = found.get("report")
        if not report or found.get("dry_run") or Path(report).with_suffix(".json").is_file():
            return None
        return dict(found)

    # -- the steps ------------------------------------------------------------------------------------------------
    def _run_steps(self, conn: psycopg.Connection[Any]) -> Outcome:
        if self.resume is not None:
            return self._finish_unfinished_run(conn, self.resume)
        progress = Progress(self.console, self.log_path, live=self.live)
        self.progress = progress
        self._init_data()
        with progress, contextlib.ExitStack() as held:
            progress.log(
                f"{APPLICATION}{' (dry run)' if self.opts.dry_run else ''} on {redact(self.url)}; report in {self.markdown}"
            )
            try:
                migration_runbook.check_client_connection(conn)
                self._step_preflight(conn, held)
                self._step_prechecks(conn)
                self._step_backup()
                self._confirm()
                self._migrate(conn)
                if self.committed:
                    self._after_commit(conn)
                    held.close()  # release the migration lock: the API answers 503 while it is held
                    self._start_services()
                    self._step_smoke()
                else:
                    held.close()
                    progress.skipped("smoke tests", "not run: a dry run rolls back, there is nothing to serve")
                    self.data["smoke"] = {
                        "skipped": "dry run: the migration was rolled back, there is nothing to serve"
                    }
                self.data["outcome"] = "succeeded" if self.committed else "rehearsed"
            except (MandateError, psycopg.Error) as exc:
                self._failed(exc)
            except KeyboardInterrupt:
                self._failed(MigrationError("interrupted (Ctrl-C)"))
                raise
            finally:
                self._finish()
        return self._outcome()

    def _finish_unfinished_run(self, conn: psycopg.Connection[Any], previous: dict[str, Any]) -> Outcome:
        """Finish, for a run killed after COMMIT, what it skipped: the checks after COMMIT, ANALYZE, --start-command,
        the smoke tests and its report (written where that run announced it)."""
        self.markdown = Path(previous["report"])
        self.json = self.markdown.with_suffix(".json")
        self.log_path = self.markdown.with_name(self.markdown.stem + "-resumed.log")
        self.run_dir = self.markdown.parent
        self.run_dir.mkdir(parents=True, exist_ok=True)
        progress = Progress(self.console, self.log_path, live=self.live)
        self.progress = progress
        self._init_data()
        self.committed = True
        self.data["resumed"] = {
            "run_id": previous.get("run_id"),
            "reason": "that run committed the migration but stopped before its end (no report was written)",
        }
        self.data["migration"] = {"committed": True, "applied_by_run": previous.get("run_id")}
        backup = previous.get("backup") or {}
        if backup.get("path"):
            self.data["backup_of_run"] = backup
            self.data["restore_command"] = backups.restore_command(Path(backup["path"]), self.url)
        before = previous.get("baseline_before")
        with progress, contextlib.ExitStack() as held:
            progress.log(
                f"{APPLICATION}: run {previous.get('run_id')} committed the migration but never wrote its report "
                f"({self.markdown}); finishing what it skipped: checks after COMMIT, ANALYZE, smoke tests, report"
            )
            try:
                held.enter_context(_migration_lock(conn, self.lock_wait_s))
                if before:
                    self.before = baseline.from_json(before)
                    self.data["baseline"]["before"] = before
                else:
                    with conn.transaction(force_rollback=True):
                        self.before = baseline.capture(conn)
                    self.data["warnings"].append(
                        "the interrupted run recorded no baseline: row counts are compared with themselves"
                    )
                self._after_commit(conn)
                held.close()
                self._start_services()
                self._step_smoke()
                self.data["outcome"] = "succeeded"
            except (MandateError, psycopg.Error) as exc:
                self._failed(exc)
            finally:
                self._finish()
        return self._outcome()

    def _init_data(self) -> None:
        conn = self.conn
        assert conn is not None
        version = migration_preflight.server_version(conn)
        self.data = {
            "format": reporting.FORMAT,
            "run_id": self.run_id,
            "tool": runner.TOOL,
            "command": self.command,
            "dry_run": self.opts.dry_run,
            "started_at": self.started.isoformat(timespec="seconds"),
            "database": {
                "name": conn.info.dbname,
                "url": redact(self.url),
                "server_version": version,
            },
            "options": self.opts.as_json(),
            "remedy_sources": list(self.opts.remedies.sources),
            "log_path": str(self.log_path),
            "run_dir": str(self.run_dir),
            "report_paths": {"markdown": str(self.markdown), "json": str(self.json)},
            "phase_plan": phase_plan(),
            "warnings": [],
            "migration": {},
            "baseline": {},
            "services": {},
        }

    def _step_preflight(self, conn: psycopg.Connection[Any], held: contextlib.ExitStack) -> None:
        progress = self.progress
        assert progress is not None
        own = {conn.info.backend_pid}
        with progress.step("pre-flight") as step:
            if self.opts.stop_command:
                progress.log(f"running --stop-command: {self.opts.stop_command}")
                stop = services.run_command(self.opts.stop_command, self.opts.stop_wait_s, "--stop-command")
                self.data["services"]["stop"] = stop.as_json()
                if not self.opts.allow_connections:
                    gone = services.wait_for_no_sessions(conn, self.opts.stop_wait_s, own)
                    self.data["services"]["sessions_gone_s"] = round(gone, 3)
                    progress.log(f"every other session left the database within {gone:.1f} s")
            pf = preflight.run(
                conn,
                backup_dir=self.backup_dir,
                allow_connections=self.opts.allow_connections,
                own_pids=own,
                data_dir=self.data_dir,
                needs_backup=self.opts.takes_backup,
            )
            self.pf = pf
            self.data["preflight"] = pf.as_json()
            if pf.estimate is not None:
                self.data["estimate"] = pf.estimate.as_json()
                progress.estimate_s = pf.estimate.total_s
                progress.phase_estimates = dict(pf.estimate.phases)
            progress.rows_for_phase = self._rows_for_phase
            for item in pf.items:
                style = {"FAIL": "red", "WARN": "yellow"}.get(item.status)
                detail = f" — {item.detail}" if item.detail and item.status in ("FAIL", "WARN") else ""
                progress.log(f"   {item.status:4} {item.title}: {item.measured}{detail}", style=style)
                if item.status == "WARN":
                    self.data["warnings"].append(f"{item.title}: {item.measured}")
            if pf.failed:
                raise CheckFailed(
                    "pre-flight refused the run: "
                    + "; ".join(f"{i.title}: {i.measured} ({i.detail})" for i in pf.failed)
                )
            held.enter_context(_migration_lock(conn, self.lock_wait_s))
            removed = backups.remove_partials(self.backup_dir)
            if removed:
                self.data["removed_partials"] = [str(p) for p in removed]
                progress.log(
                    f"   removed {len(removed)} unfinished backup file(s) an interrupted run left behind: "
                    + ", ".join(str(p) for p in removed),
                    style="yellow",
                )
                self.data["warnings"].append(
                    f"removed {len(removed)} unfinished backup file(s) of an interrupted run: "
                    + ", ".join(str(p) for p in removed)
                )
            self.data["rehearsal"] = self._rehearsal()
            self.data["previous_backup"] = self._previous_backup()
            step.summary = (
                f"{preflight.size(pf.db_bytes)}, {len(pf.sessions)} other session(s), estimate {pf.estimate.total_s:.1f} s"
                if pf.estimate
                else ""
            )

    def _rows_for_phase(self, number: int) -> str:
        tables = estimating.PHASE_TABLES.get(number, ())
        if self.pf is None or not tables:
            return ""
        return ", ".join(f"{t} {self.pf.tables.get(t, {}).get('rows', 0)} rows" for t in tables)

    def _rehearsal(self) -> dict[str, Any] | None:
        if self.pf is None:
            return None
        found = estimating.last_rehearsal(estimating.history(self.data_dir), self.pf.database_key)
        return found.as_json() if found else None

    def _previous_backup(self) -> str | None:
        found = sorted(
            (p for p in [*self.backup_dir.glob("*.dump"), *self.backup_dir.glob("*/*.dump")] if p.is_file()),
            key=lambda p: p.stat().st_mtime,
        )
        if not found:
            return None
        newest = found[-1]
        age = time.time() - newest.stat().st_mtime
        return f"newest earlier backup in {self.backup_dir}: {newest} ({newest.stat().st_size} bytes, {age / 3600:.1f} h old)"

    def _step_prechecks(self, conn: psycopg.Connection[Any]) -> None:
        progress = self.progress
        assert progress is not None
        with progress.step("pre-migration checks") as step:
            script = checks.CheckScript.named(checks.PRE)
            result = checks.run_alone(conn, script, before=self.opts.remedies.fill)
            self.data["prechecks"] = result.as_json()
            self._log_checks(result)
            step.summary = result.summary()
            for r in result.warnings:
                self.data["warnings"].append(r.describe())
            if result.failed:
                raise CheckFailed(
                    "the pre-migration checks failed, nothing was changed:\n"
                    + "\n".join(f"  - {r.describe()}" for r in result.failed)
                )
            rehearsal = self._rehearse_chain(conn)
            if rehearsal is not None:
                step.summary += f"; {rehearsal}"

    def _rehearse_chain(self, conn: psycopg.Connection[Any]) -> str | None:
        """Prove, before the backup and before anything changes, that every migration from 008 to the target applies
        to this data: run them with the remedies in a transaction that is rolled back. A failure names the migration,
        PostgreSQL's error and DETAIL (MigrationFailed) and stops the run with the database unchanged."""
        progress = self.progress
        assert progress is not None
        targets = [
            f.label for f in load() if f.version >= VERSION and (self.opts.to is None or f.version <= self.opts.to)
        ]
        chain = f"{targets[0]}→{targets[-1]}" if targets else "008"
        estimated = self.pf.estimate.migration_s if self.pf and self.pf.estimate else 0.0
        wanted = self.opts.rehearse
        if self.opts.dry_run or wanted is False or (wanted is None and estimated > REHEARSAL_LIMIT_S):
            reason = (
                "the dry run is itself the rehearsal"
                if self.opts.dry_run
                else "--no-rehearse"
                if wanted is False
                else f"the migration is estimated at {estimated:.0f} s (> {REHEARSAL_LIMIT_S:.0f} s); the gate's checks "
                "and the all-or-nothing migration transaction stand in for it (--rehearse forces it)"
            )
            self.data["chain_rehearsal"] = {"chain": chain, "ran": False, "reason": reason}
            progress.log(f"   rehearsal of {chain} not run: {reason}")
            return None
        progress.log(f"   rehearsing {chain} in a transaction that is rolled back (nothing is kept)")
        started = time.perf_counter()
        record: dict[str, Any] = {"chain": chain, "ran": True}
        self.data["chain_rehearsal"] = record
        try:
            with conn.transaction(force_rollback=True):
                self.opts.remedies.fill(conn)
                runner.Runner(
                    conn,
                    lock_wait_s=self.lock_wait_s,
                    lock_timeout=self.opts.lock_timeout,
                    statement_timeout=self.opts.statement_timeout,
                ).up(to=self.opts.to)
        except MigrationFailed as exc:
            if exc.sqlstate == "55P03":  # lock_not_available: other sessions (--allow-connections) hold the tables
                reason = (
                    f"not completed: other sessions held the tables beyond lock_timeout {self.opts.lock_timeout}; the "
                    "migration transaction retries the locks and is all or nothing"
                )
                record.update(passed=None, reason=reason, duration_s=round(time.perf_counter() - started, 3))
                self.data["warnings"].append(f"rehearsal of {chain}: {reason}")
                progress.log(f"   rehearsal of {chain} {reason}", style="yellow")
                return None
            record.update(
                passed=False,
                duration_s=round(time.perf_counter() - started, 3),
                failed_migration=exc.label,
                sqlstate=exc.sqlstate,
                detail=exc.detail,
                hint=exc.hint,
                error=str(exc),
            )
            raise CheckFailed(
                f"the rehearsal of {chain} (rolled back) shows that {exc.label} cannot apply to this database, so "
                f"nothing was changed and no backup was taken:\n  {exc}"
            ) from exc
        record.update(passed=True, duration_s=round(time.perf_counter() - started, 3))
        progress.log(f"   rehearsal of {chain}: every migration applied, rolled back in {record['duration_s']:.2f} s")
        return f"{chain} rehearsed and rolled back"

    def _log_checks(self, result: checks.CheckRun) -> None:
        assert self.progress is not None
        for r in result.results:
            style = {"FAIL": "red", "WARN": "yellow"}.get(r.status)
            text = (
                r.describe() if r.status in ("FAIL", "WARN") else f"{r.check_id} {r.title}: {r.status} ({r.measured})"
            )
            self.progress.log(f"   {text}", style=style)

    def _step_backup(self) -> None:
        progress = self.progress
        assert progress is not None
        if not self.opts.takes_backup:
            progress.skipped("backup", "dry run (no --backup): a rehearsal changes nothing")
            return
        with progress.step("backup") as step:
            started = time.perf_counter()
            progress.log(f"pg_dump -Fc into {self.run_dir}")
            b = backups.create(self.url, self.run_dir)
            self.backup = b
            self.data["backup"] = b.as_json()
            progress.log(f"   {b.path.name}: {b.size} bytes in {b.dump_s:.1f} s, sha256 {b.sha256}; reading it back")
            b.verification = backups.verify(b.path, expected_tables=b.tables)
            backups.write_manifest(b)
            self.data["backup"] = b.as_json()
            self.data["restore_command"] = backups.restore_command(b.path, self.url)
            if not b.verification.ok:
                raise BackupError(f"the backup {b.path} is not usable: {'; '.join(b.verification.problems())}")
            progress.log(
                f"   verified: read to the end, {len(b.verification.tables_expected)} tables with data, "
                f"in {b.verification.duration_s:.1f} s"
            )
            if self.opts.backup_copy_to is not None:
                record = backups.copy(b, self.opts.backup_copy_to)
                progress.log(f"   copied to {record['path']}, sha256 verified")
                self.data["backup"] = b.as_json()
            if self.opts.verify_restore:
                self._restore_test(b)
            self.data.setdefault("actual", {})["backup_s"] = round(time.perf_counter() - started, 3)
            step.summary = f"{b.path} ({preflight.size(b.size)}, sha256 {b.sha256[:16]}…)"

    def _restore_test(self, b: backups.Backup) -> None:
        """Restore the backup into a scratch database and capture its baseline (compared with the real one later)."""
        assert self.progress is not None
        conn = self.conn
        assert conn is not None
        name = f"{conn.info.dbname}_m008_restore_{self.started:%Y%m%d%H%M%S}"[:63]
        self.progress.log(f"   restore test: restoring into scratch database {name}")
        restored = backups.restore(b.path, self.url, into_new_database=name)
        try:
            with (
                psycopg.connect(backups.url_of_database(self.url, name), autocommit=True) as scratch,
                scratch.transaction(force_rollback=True),
            ):
                state = baseline.capture(scratch)
        finally:
            migration_backup.drop_database(conn, name)
        self.restore_state = baseline.as_json(state)
        self.data["restore_test"] = {
            "database": name,
            "duration_s": restored.duration_s,
            "passed": None,
            "summary": "restored; compared with the baseline once it is captured",
            "baseline": self.restore_state,
        }

    def _confirm(self) -> None:
        if self.opts.dry_run or self.opts.yes:
            return
        assert self.progress is not None and self.pf is not None and self.confirm is not None
        est = self.pf.estimate.migration_s if self.pf.estimate else 0.0
        question = (
            f"Pre-flight and pre-checks passed; backup {self.backup.path if self.backup else '(none)'} verified. "
            f"Migrate {self.pf.database} now (about {est:.0f} s, tables locked meanwhile)?"
        )
        with self.progress.paused():
            answer = self.confirm(question)
        self.progress.log(f"confirmation: {'yes' if answer else 'no'}")
        if not answer:
            raise CheckFailed("the operator declined the migration; nothing was changed")

    # -- the migration transaction --------------------------------------------------------------------------------
    def _migrate(self, conn: psycopg.Connection[Any]) -> None:
        progress = self.progress
        assert progress is not None
        mig = self.data["migration"]
        mig["lock_attempts"] = []
        own = {conn.info.backend_pid}
        if not self.opts.allow_connections:
            # A session that has just closed (pg_dump's, the restore test's) takes a moment to leave pg_stat_activity.
            with contextlib.suppress(CheckFailed):
                services.wait_for_no_sessions(conn, SETTLE_S, own)
        sessions = preflight.other_sessions(conn, own)
        self.data["services"]["sessions_at_migration"] = [s.describe() for s in sessions]
        if sessions and not self.opts.allow_connections:
            raise CheckFailed(
                f"{len(sessions)} session(s) connected since the pre-flight: "
                + "; ".join(s.describe() for s in sessions)
                + ". Stop them, or pass --allow-connections"
            )
        retries = max(1, self.opts.lock_retries)
        for attempt in range(1, retries + 1):
            try:
                self._transaction(conn, attempt)
                return
            except _LockBusy as busy:
                mig["lock_attempts"].append({"attempt": attempt, "holders": str(busy)})
                if attempt == retries:
                    progress.steps[-1].status = "failed"  # the migration step: its last attempt, not one retried
                    raise TablesLocked(
                        f"the tables could not be locked within lock_timeout {self.opts.lock_timeout} in {retries} "
                        f"attempt(s); nothing was changed. Sessions holding locks: {busy}. End them (or wait for "
                        "them), then run the command again"
                    ) from None
                wait = RETRY_BACKOFF_S * 2 ** (attempt - 1)
                progress.log(
                    f"   the tables are locked by other sessions ({busy}); attempt {attempt}/{retries}, "
                    f"trying again in {wait:.0f} s",
                    style="yellow",
                )
                time.sleep(wait)

    def _transaction(self, conn: psycopg.Connection[Any], attempt: int) -> None:
        progress = self.progress
        assert progress is not None
        mig = self.data["migration"]
        opts = self.opts
        started = time.perf_counter()
        try:
            with conn.transaction(force_rollback=opts.dry_run):
                with progress.step("migration") as step:
                    migration_runbook.set_timeouts(conn, opts.lock_timeout, opts.statement_timeout)
                    mig["started_at"] = datetime.now(UTC).isoformat(timespec="milliseconds")
                    progress.log(
                        f"BEGIN; locking the eight tables (lock_timeout {opts.lock_timeout}, attempt {attempt})"
                    )
                    try:
                        migration_runbook.lock_tables(conn)
                    except psycopg.errors.LockNotAvailable:
                        step.status = "retried"
                        raise _LockBusy(self._lock_holders(conn)) from None
                    recorded = opts.remedies.fill(conn)
                    self.data["remedies"] = recorded
                    if opts.allow_connections:
                        self._gate_again(conn)
                    self.before = baseline.capture(conn)
                    self.data["baseline"]["before"] = baseline.as_json(self.before)
                    progress.log("   row counts and content checksums captured")
                    self._compare_restore_test()
                    r = runner.Runner(
                        conn,
                        lock_wait_s=self.lock_wait_s,
                        lock_timeout=opts.lock_timeout,
                        statement_timeout=opts.statement_timeout,
                        progress=progress.notice,
                    )
                    details = {
                        "remedies": recorded,
                        "runbook": {
                            "run_id": self.run_id,
                            "dry_run": opts.dry_run,
                            "report": str(self.markdown),
                            "baseline_before": baseline.as_json(self.before),
                            "backup": {"path": str(self.backup.path), "sha256": self.backup.sha256}
                            if self.backup
                            else None,
                        },
                    }
                    try:
                        applied = r.up(to=opts.to, details={VERSION: details})
                    except MigrationError as exc:
                        cause = exc.__cause__
                        mig["error"] = str(exc)
                        mig["sqlstate"] = getattr(cause, "sqlstate", None)
                        mig["phase_at_error"] = progress.phases[-1].title if progress.phases else None
                        if isinstance(exc, MigrationFailed):
                            mig.update(failed_migration=exc.label, detail=exc.detail, hint=exc.hint)
                            if exc.version != VERSION:
                                # 008 finished every phase; the error belongs to the later migration.
                                mig["phase_at_error"] = f"{exc.label} (after 008 completed its phases)"
                        raise
                    mig["applied"] = [f"{a.version:03d}_{a.name}" for a in applied]
                    step.summary = f"applied {', '.join(mig['applied'])}"
                    self.data["migration_log"] = migration_log.entry(conn, VERSION)
                self._verify(conn, after_commit=False)
                with progress.step("constraint tests") as step:
                    result = constraints.run(conn)
                    self.data["constraints"] = result.as_json()
                    self._log_constraints(result)
                    step.summary = (
                        f"{sum(t.passed for t in result.tests)}/3 passed, {result.leftovers} test row(s) left"
                    )
                    if not result.passed:
                        raise CheckFailed(
                            "the constraint tests failed; rolled back: " + self._constraint_failures(result)
                        )
                commit_started = time.perf_counter()
                progress.log("ROLLBACK (dry run: the rehearsal is undone)" if opts.dry_run else "COMMIT")
            mig["commit_s"] = round(time.perf_counter() - commit_started, 3)
        finally:
            mig["duration_s"] = round(time.perf_counter() - started, 3)
            self.data.setdefault("actual", {})["migration_s"] = mig["duration_s"]
        if not opts.dry_run:
            self.committed = True
            mig["committed"] = True
            mig["committed_at"] = datetime.now(UTC).isoformat(timespec="milliseconds")
        progress.log(f"the migration transaction took {mig['duration_s']:.2f} s")

    def _gate_again(self, conn: psycopg.Connection[Any]) -> None:
        """Other sessions were allowed, so the data may have changed since the gate: run it again under the lock."""
        assert self.progress is not None
        again = checks.run(conn, checks.CheckScript.named(checks.PRE))
        self.data["prechecks_in_transaction"] = again.as_json()
        self.progress.log(
            f"   pre-migration checks again, under the lock (other sessions were allowed): {again.summary()}"
        )
        if again.failed:
            raise CheckFailed(
                "the pre-migration checks failed inside the migration transaction (the data changed since the first "
                "run); rolled back:\n" + "\n".join(f"  - {r.describe()}" for r in again.failed)
            )

    def _lock_holders(self, conn: psycopg.Connection[Any]) -> str:
        """Who holds locks on the eight tables (asked after the rollback; best effort)."""
        try:
            rows = migration_runbook.lock_holders(conn)
        except psycopg.Error:
            return "unknown"
        return "; ".join(f"pid {r[0]} ({r[1]}, {r[2]}) {r[3]}" for r in rows) or "released since"

    def _compare_restore_test(self) -> None:
        test = self.data.get("restore_test")
        if not test or self.restore_state is None or self.before is None:
            return
        diffs = baseline.compare(self.before, baseline.from_json(self.restore_state))
        test["passed"] = not diffs
        test["summary"] = (
            "the restored copy has the same rows and content checksums as the database at the migration"
            if not diffs
            else "the restored copy differs: " + "; ".join(diffs)
        )

    def _verify(self, conn: psycopg.Connection[Any], *, after_commit: bool) -> None:
        """The POST script and the comparison with the baseline: rows and content checksums before COMMIT (where a
        difference rolls everything back), row counts again after COMMIT (the content is what was just verified)."""
        progress = self.progress
        assert progress is not None and self.before is not None
        with progress.step("post-verification") as step:
            script = checks.CheckScript.named(checks.POST)
            if after_commit:
                result = checks.run_alone(conn, script)
                now = baseline.counts(conn)
                self.data["postchecks_after_commit"] = result.as_json()
                self.data["baseline"]["counts_after_commit"] = now
                diffs = [
                    f"{t}: {b.rows} rows before, {now.get(t)} after COMMIT"
                    for t, b in self.before.items()
                    if now.get(t) != b.rows
                ]
                self.data["baseline"]["differences_after_commit"] = diffs
            else:
                result = checks.run(conn, script)
                after = baseline.capture(conn)
                self.data["postchecks"] = result.as_json()
                self.data["baseline"]["after"] = baseline.as_json(after)
                diffs = baseline.compare(self.before, after)
                self.data["baseline"]["differences"] = diffs
                self.data["baseline"]["created_by_remedies"] = baseline.created_by_remedies(conn)
            self._log_checks(result)
            step.summary = (
                ("after COMMIT: " if after_commit else "")
                + result.summary()
                + ("; " if diffs else "; rows " + ("" if after_commit else "and content ") + "unchanged")
                + (f"{len(diffs)} table(s) differ" if diffs else "")
            )
            for d in diffs:
                progress.log(f"   {d}", style="red")
            if result.failed or diffs:
                problems = [r.describe() for r in result.failed] + diffs
                where = "after COMMIT" if after_commit else "before COMMIT; everything was rolled back"
                raise CheckFailed(
                    f"post-migration verification failed ({where}):\n" + "\n".join(f"  - {p}" for p in problems)
                )

    def _log_constraints(self, result: constraints.ConstraintRun) -> None:
        assert self.progress is not None
        for t in result.tests:
            self.progress.log(
                f"   {'PASS' if t.passed else 'FAIL'} {t.title}: {t.outcome}", style=None if t.passed else "red"
            )

    def _constraint_failures(self, result: constraints.ConstraintRun) -> str:
        parts = [f"{t.title}: expected {t.expected}, got {t.outcome}" for t in result.tests if not t.passed]
        if result.leftovers:
            parts.append(f"{result.leftovers} test row(s) survived the rollback")
        return "; ".join(parts)

    # -- after COMMIT ---------------------------------------------------------------------------------------------
    def _after_commit(self, conn: psycopg.Connection[Any]) -> None:
        progress = self.progress
        assert progress is not None
        self._verify(conn, after_commit=True)
        with progress.step("constraint tests") as step:
            result = constraints.run_alone(conn)
            self.data["constraints_after_commit"] = result.as_json()
            self._log_constraints(result)
            step.summary = f"after COMMIT: {sum(t.passed for t in result.tests)}/3 passed"
            if not result.passed:
                raise CheckFailed("the constraint tests failed after COMMIT: " + self._constraint_failures(result))
        started = time.perf_counter()
        migration_runbook.analyze(conn)
        self.data["analyze"] = {"tables": list(baseline.TABLES), "duration_s": round(time.perf_counter() - started, 3)}
        progress.log(
            f"ANALYZE of the rebuilt tables: {time.perf_counter() - started:.2f} s (fresh tables have no statistics)"
        )
        self.data["explain"] = self._explain(conn)

    def _explain(self, conn: psycopg.Connection[Any]) -> str | None:
        target = smoke.pick_target(conn)
        if target.domain is None or target.organization_id is None:
            return None
        lines = migration_runbook.explain_domain_query(conn, target.organization_id, target.domain)
        return " / ".join(line.strip() for line in lines)

    def _start_services(self) -> None:
        progress = self.progress
        assert progress is not None
        if not self.opts.start_command:
            return
        progress.log(f"running --start-command: {self.opts.start_command}")
        start = services.run_command(self.opts.start_command, self.opts.start_wait_s, "--start-command")
        self.data["services"]["start"] = start.as_json()

    def _step_smoke(self) -> None:
        progress = self.progress
        conn = self.conn
        assert progress is not None and conn is not None
        pending = [f.label for f in runner.status(conn).pending]
        if pending:
            # --to stopped before head: this Mandate's API refuses the database until the later migrations apply.
            reason = (
                f"not applicable: the database is at schema {runner.status(conn).current_version:03d} (--to "
                f"{self.opts.to}) and Mandate's API needs {', '.join(pending)} too; run `mandate migrate up`, then "
                "`mandate migrate smoke 008`"
            )
            progress.skipped("smoke tests", reason)
            self.data["smoke"] = {"skipped": reason, "not_applicable": True, "pending": pending}
            return
        with progress.step("smoke tests") as step:
            target = smoke.pick_target(conn)
            if self.opts.api_url:
                base = self.opts.api_url.rstrip("/")
                progress.log(f"waiting (at most {self.opts.start_wait_s:g} s) for {base}/api/health")
                healthy = smoke.wait_healthy(base, self.opts.start_wait_s)
                with smoke.service_token(self.url, target) as token:
                    result = smoke.run(base, target, token=token)
                result.time_to_healthy_s = round(healthy, 3)
            elif self.api_app is not None:
                progress.log("no --api-url: starting Mandate's API in this process on the migrated database")
                with smoke.in_process(self.url, self.api_app) as base:
                    result = smoke.run(base, target, in_process=True)
            else:
                raise CheckFailed("no API to run the smoke tests against: give --api-url of the running service")
            self.data["smoke"] = result.as_json()
            for t in result.tests:
                progress.log(
                    f"   {'PASS' if t.passed else 'FAIL'} GET {t.url}: {t.detail}", style=None if t.passed else "red"
                )
            step.summary = f"{4 - result.errors}/4 passed against {result.target}"
            if not result.passed:
                raise CheckFailed(
                    "smoke tests failed after the migration was committed: "
                    + "; ".join(f"GET {t.url}: {t.detail}" for t in result.tests if not t.passed)
                )

    # -- failure and the end --------------------------------------------------------------------------------------
    def _failed(self, exc: BaseException) -> None:
        progress = self.progress
        assert progress is not None
        step = next((s.name for s in reversed(progress.steps) if s.status == "failed"), None) or "between steps"
        message = str(exc).strip() or type(exc).__name__
        if isinstance(exc, psycopg.Error):
            message = f"database error: {message}"
        changed = self.committed
        self.data["outcome"] = "failed" if (changed or self.data["migration"].get("started_at")) else "refused"
        next_steps = self._next_steps(step, exc, changed)
        self.data["failure"] = {
            "step": step,
            "message": message,
            "type": type(exc).__name__,
            "database_changed": changed,
            "next": next_steps,
        }
        progress.log(f"FAILED at {step}: {message}", style="bold red")
        progress.log(
            "the database was changed: the migration is committed" if changed else "the database is unchanged",
            style="red" if changed else None,
        )
        for n in next_steps:
            progress.log(f"next: {n}", style="bold")

    def _next_steps(self, step: str, exc: BaseException, changed: bool) -> list[str]:
        rerun = f"when fixed, run the same command again: `{self.command}`"
        restore = self.data.get("restore_command")
        if changed:
            steps = ["do NOT restart the services on this database yet"]
            if self.backup is not None:
                steps.append(
                    f"restore the verified backup: `mandate backup restore {self.backup.path}` (runs: `{restore}`)"
                )
            steps.append(
                "or, if the failure is outside the database (e.g. the API), fix it and run `mandate migrate verify 008` and `mandate migrate smoke 008`"
            )
            return steps
        failed = exc.__cause__ if isinstance(exc, CheckFailed) else exc
        if isinstance(failed, MigrationFailed) and failed.version != VERSION:
            return [
                f"nothing was committed: the database is unchanged (still before 008) and the current Mandate server "
                f"can keep serving it; {failed.label} refuses rows of this database"
                + (f" ({failed.detail})" if failed.detail else ""),
                (f"do what PostgreSQL suggests: {failed.hint}" if failed.hint else "")
                or f"history the original server wrote must migrate as is: send this report to the Mandate "
                f"maintainers and install the release that fixes {failed.label}; do not edit historical rows",
                "then rehearse on a copy with `mandate migrate run 008 --dry-run`, and run the same command again: "
                f"`{self.command}`",
            ]
        if step == "pre-flight":
            return ["fix what the pre-flight names above (or give --stop-command / --allow-connections)", rerun]
        if step == "pre-migration checks":
            return [
                "apply the remedy each failed check names (--domain-slug NAME=slug, --domain-slug-file, "
                "--unattributed-to ORG_ID/DOMAIN, --scope-id-map FILE), then check with `mandate migrate check 008`",
                rerun,
            ]
        if step == "backup":
            return ["fix the backup location (space, permissions) or choose another --backup-dir", rerun]
        if isinstance(exc, TablesLocked):
            return [
                "nothing was committed (the transaction never got its locks); no restore is needed",
                "end the sessions named above (COMMIT or ROLLBACK in their application, or "
                f"`{migration_preflight.TERMINATE_SESSION}`), or wait for them, or give a longer --lock-timeout",
                rerun,
            ]
        if _connection_lost(exc):
            return [
                "the connection to the database was lost (the session was terminated, or the server restarted): the "
                "server rolled the transaction back, nothing was committed",
                rerun,
            ]
        return [
            "nothing was committed (one transaction, rolled back); no restore is needed",
            "rehearse with `mandate migrate run 008 --dry-run` on a copy to investigate; the report names the SQL "
            "error and the phase",
            rerun,
        ]

    def _finish(self) -> None:
        progress = self.progress
        assert progress is not None
        finished = datetime.now(UTC)
        self.data["finished_at"] = finished.isoformat(timespec="seconds")
        self.data["duration_s"] = round((finished - self.started).total_seconds(), 3)
        self.data.setdefault("outcome", "failed")
        with progress.step("report"):
            progress.log(f"writing the report: {self.markdown}")
        self.data["steps"] = [s.as_json() for s in progress.steps]
        self.data["phases"] = [p.as_json() for p in progress.phases]
        self.data["artifacts"] = sorted(
            str(p) for p in {*self.run_dir.glob("*"), self.markdown, self.json, self.log_path} if p != self.run_dir
        )
        try:
            reporting.write(self.data, self.markdown, self.json)
            self.data_dir.mkdir(parents=True, exist_ok=True)
            (self.data_dir / LAST_REPORT).write_text(str(self.json.resolve()) + "\n", encoding="utf-8")
        except OSError as exc:
            progress.log(f"could not write the report: {exc}", style="red")
        self._remember()

    def _remember(self) -> None:
        pf = self.pf
        if pf is None or "started_at" not in self.data["migration"]:
            return
        e = self.data.get("evidence") or {}

        def ok(key: str) -> bool:
            return bool(e.get(key, {}).get("status") == "pass")

        record = estimating.RunRecord(
            database=pf.database_key,
            when=self.data["started_at"],
            dry_run=self.opts.dry_run,
            outcome=self.data["outcome"],
            db_bytes=pf.db_bytes,
            rewritten_bytes=pf.rewritten_bytes,
            steps={s["name"]: s["duration_s"] for s in self.data["steps"]},
            phases={str(p["number"]): p["duration_s"] for p in self.data["phases"]},
            migration_s=float(self.data["migration"].get("duration_s") or 0),
            backup_s=float((self.data.get("actual") or {}).get("backup_s") or 0),
            checks={
                "prechecks": ok("prechecks.passed"),
                "migration": ok("migration.errors"),
                "post": ok("post.passed"),
                "constraints": ok("constraints.slug") and ok("constraints.valid"),
                "prefix": ok("constraints.prefix"),
            },
        )
        with contextlib.suppress(OSError):
            estimating.remember(self.data_dir, record)

    def _outcome(self) -> Outcome:
        status = self.data["outcome"]
        failure = self.data.get("failure")
        if failure:
            message = f"{failure['message']}\n" + "\n".join(f"next: {n}" for n in failure["next"])
        elif status == "rehearsed":
            message = "dry run complete: everything ran and was rolled back; the database is unchanged"
        else:
            message = "migration 008 applied and verified"
        return Outcome(status, self.markdown, self.json, message, self.data)


def _connection_lost(exc: BaseException) -> bool:
    """Whether `exc` (or what caused it) is a lost connection rather than an error of the migration itself."""
    current: BaseException | None = exc
    while current is not None:
        if isinstance(current, psycopg.OperationalError):
            state = current.sqlstate or ""
            if not state or state.startswith(("08", "57P")):
                return True
        current = current.__cause__
    return False


def last_report(data_dir: Path) -> Path | None:
    pointer = data_dir / LAST_REPORT
    if not pointer.is_file():
        return None
    path = Path(pointer.read_text(encoding="utf-8").strip())
    return path if path.is_file() else None


def command_line() -> str:
    return " ".join(["mandate", *sys.argv[1:]])


__all__ = ["Options", "Outcome", "Runbook", "command_line", "last_report", "phase_plan", "redact"]
