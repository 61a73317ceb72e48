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

This module orchestrates the steps; their parts live apart: the options and outcome of a run (runbook_options.py),
the rehearsal of the chain (rehearsal.py), the backup step (backup_step.py), the migration transaction
(transaction.py), the checks before and after COMMIT (verification.py), the advice after a failure (advice.py) and
what is kept of each run (run_history.py).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from rich.console import Console

from mandate.db import migration_preflight, migration_runbook
from mandate.db.connect import connect, connection_lost
from mandate.errors import CheckFailed, ConfigError, MandateError, MigrationError
from mandate.migrate import backup as backups
from mandate.migrate import backup_step, baseline, checks, preflight, run_history, runner, services, smoke
from mandate.migrate import estimate as estimating
from mandate.migrate import report as reporting
from mandate.migrate.advice import next_steps
from mandate.migrate.files import load
from mandate.migrate.progress import Progress
from mandate.migrate.rehearsal import rehearse_chain
from mandate.migrate.run_history import last_report
from mandate.migrate.runbook_options import APPLICATION, VERSION, Options, Outcome, command_line, phase_plan, redact
from mandate.migrate.transaction import MigrationTransaction
from mandate.migrate.verification import after_commit, log_checks


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
        if VERSION in applied and (unfinished := run_history.unfinished_run(conn)) is not None:
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
                held.enter_context(runner.holding_lock(conn, self.lock_wait_s))
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
            held.enter_context(runner.holding_lock(conn, self.lock_wait_s))
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
            self.data["rehearsal"] = run_history.last_rehearsal(self.data_dir, self.pf)
            self.data["previous_backup"] = run_history.previous_backup(self.backup_dir)
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

    def _step_prechecks(self, conn: psycopg.Connection[Any]) -> None:
        progress = self.progress
        assert progress is not None
        with progress.step("pre-migration checks") as step:
            script = checks.CheckScript.named(checks.PRE)
            result = checks.run_alone(conn, script, before=self.opts.remedies.fill)
            self.data["prechecks"] = result.as_json()
            log_checks(progress, result)
            step.summary = result.summary()
            for r in result.warnings:
                self.data["warnings"].append(r.describe())
            if result.failed:
                raise CheckFailed(
                    "the pre-migration checks failed, nothing was changed:\n"
                    + "\n".join(f"  - {r.describe()}" for r in result.failed)
                )
            rehearsal = rehearse_chain(
                conn,
                self.opts,
                progress,
                self.data,
                estimated_s=self.pf.estimate.migration_s if self.pf and self.pf.estimate else 0.0,
                lock_wait_s=self.lock_wait_s,
            )
            if rehearsal is not None:
                step.summary += f"; {rehearsal}"

    def _step_backup(self) -> None:
        progress, conn = self.progress, self.conn
        assert progress is not None and conn is not None
        if not self.opts.takes_backup:
            progress.skipped("backup", "dry run (no --backup): a rehearsal changes nothing")
            return
        with progress.step("backup") as step:
            self.backup, self.restore_state = backup_step.take(
                conn, self.url, self.run_dir, self.opts, progress, self.data, step, started_at=self.started
            )

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
        assert self.progress is not None
        tx = MigrationTransaction(
            conn,
            self.opts,
            self.progress,
            self.data,
            run_id=self.run_id,
            report=self.markdown,
            lock_wait_s=self.lock_wait_s,
            backup=self.backup,
            restore_state=self.restore_state,
        )
        try:
            tx.run()
        finally:
            self.before, self.committed = tx.before, tx.committed

    # -- after COMMIT ---------------------------------------------------------------------------------------------
    def _after_commit(self, conn: psycopg.Connection[Any]) -> None:
        assert self.progress is not None and self.before is not None
        after_commit(conn, self.progress, self.data, self.before)

    def _start_services(self) -> None:
        progress = self.progress
        assert progress is not None
        if not self.opts.start_command:
            return
        progress.log(f"running --start-command: {self.opts.start_command}")
        start = services.run_command(self.opts.start_command, self.opts.start_wait_s, "--start-command")
        self.data["services"]["start"] = start.as_json()

    def _step_smoke(self) -> None:
        assert self.progress is not None and self.conn is not None
        smoke.run_step(
            self.conn,
            self.url,
            self.progress,
            self.data,
            api_url=self.opts.api_url,
            start_wait_s=self.opts.start_wait_s,
            to=self.opts.to,
            api_app=self.api_app,
        )

    # -- failure and the end --------------------------------------------------------------------------------------
    def _failed(self, exc: BaseException) -> None:
        progress = self.progress
        assert progress is not None
        step = next((s.name for s in reversed(progress.steps) if s.status == "failed"), None) or "between steps"
        message = str(exc).strip() or type(exc).__name__
        if connection_lost(exc):
            # Named whichever way the client learned of it (the server's FATAL, or just a closed socket).
            message = f"the connection to the database was lost: {message}"
        elif isinstance(exc, psycopg.Error):
            message = f"database error: {message}"
        changed = self.committed
        self.data["outcome"] = "failed" if (changed or self.data["migration"].get("started_at")) else "refused"
        advice = next_steps(
            step,
            exc,
            changed=changed,
            command=self.command,
            backup=self.backup.path if self.backup is not None else None,
            restore_command=self.data.get("restore_command"),
        )
        self.data["failure"] = {
            "step": step,
            "message": message,
            "type": type(exc).__name__,
            "database_changed": changed,
            "next": advice,
        }
        progress.log(f"FAILED at {step}: {message}", style="bold red")
        progress.log(
            "the database was changed: the migration is committed" if changed else "the database is unchanged",
            style="red" if changed else None,
        )
        for n in advice:
            progress.log(f"next: {n}", style="bold")

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
            run_history.point_to_last_report(self.data_dir, self.json)
        except OSError as exc:
            progress.log(f"could not write the report: {exc}", style="red")
        run_history.remember(self.data_dir, self.data, self.pf, dry_run=self.opts.dry_run)

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


__all__ = ["VERSION", "Options", "Outcome", "Runbook", "command_line", "last_report", "phase_plan", "redact"]
