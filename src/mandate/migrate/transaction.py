"""The migration transaction of the 008 runbook: ONE transaction that locks the eight historical tables (retried with
backoff while other sessions hold them), fills the remedies, captures the baseline, applies 008 and the migrations up
to the target through the runner, verifies the result and runs the constraint tests — then commits, or rolls back on
a dry run or at the first failure. Nothing is committed before its end."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from mandate.db import migration_log, migration_runbook
from mandate.errors import CheckFailed, MigrationError, MigrationFailed
from mandate.migrate import backup as backups
from mandate.migrate import baseline, checks, constraints, preflight, runner, services
from mandate.migrate.progress import Progress
from mandate.migrate.runbook_options import VERSION, Options
from mandate.migrate.verification import constraint_failures, log_constraints, verify

RETRY_BACKOFF_S = 2.0
SETTLE_S = 3.0


class LockBusy(Exception):
    """The tables could not be locked within lock_timeout (retried by the caller)."""


class TablesLocked(CheckFailed):
    """Every attempt to lock the tables failed: other sessions hold locks on them (named in the message)."""


@dataclass
class MigrationTransaction:
    """The migration transaction of one run. `run()` records what happens in `data` (the run's report record) and
    leaves `before` (the baseline, captured under the lock) and `committed` set."""

    conn: psycopg.Connection[Any]
    opts: Options
    progress: Progress
    data: dict[str, Any]
    run_id: str
    report: Path
    lock_wait_s: float
    backup: backups.Backup | None = None
    restore_state: dict[str, Any] | None = None  # the baseline of the restore test's scratch database
    before: dict[str, baseline.TableState] | None = None
    committed: bool = False

    def run(self) -> None:
        """Refuse when sessions came back since the pre-flight (unless allowed); then the transaction, attempted
        again with backoff while other sessions hold the tables; TablesLocked after the last attempt."""
        conn, progress = self.conn, self.progress
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
                self._attempt(attempt)
                return
            except LockBusy as busy:
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

    def _attempt(self, attempt: int) -> None:
        """One attempt: BEGIN, the migration step, verification, constraint tests, COMMIT (ROLLBACK on a dry run)."""
        conn, progress, opts = self.conn, self.progress, self.opts
        mig = self.data["migration"]
        started = time.perf_counter()
        try:
            with conn.transaction(force_rollback=opts.dry_run):
                self._migration_step(attempt)
                assert self.before is not None
                verify(conn, progress, self.data, self.before, after_commit=False)
                with progress.step("constraint tests") as step:
                    result = constraints.run(conn)
                    self.data["constraints"] = result.as_json()
                    log_constraints(progress, result)
                    step.summary = (
                        f"{sum(t.passed for t in result.tests)}/3 passed, {result.leftovers} test row(s) left"
                    )
                    if not result.passed:
                        raise CheckFailed("the constraint tests failed; rolled back: " + constraint_failures(result))
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

    def _migration_step(self, attempt: int) -> None:
        """Inside the transaction: timeouts, the table locks (LockBusy when taken), the remedies, the gate again when
        other sessions were allowed, the baseline, then the runner up to the target."""
        conn, progress, opts = self.conn, self.progress, self.opts
        mig = self.data["migration"]
        with progress.step("migration") as step:
            migration_runbook.set_timeouts(conn, opts.lock_timeout, opts.statement_timeout)
            mig["started_at"] = datetime.now(UTC).isoformat(timespec="milliseconds")
            progress.log(f"BEGIN; locking the eight tables (lock_timeout {opts.lock_timeout}, attempt {attempt})")
            try:
                migration_runbook.lock_tables(conn)
            except psycopg.errors.LockNotAvailable:
                step.status = "retried"
                raise LockBusy(self._lock_holders()) from None
            recorded = opts.remedies.fill(conn)
            self.data["remedies"] = recorded
            if opts.allow_connections:
                self._gate_again()
            self.before = baseline.capture(conn)
            self.data["baseline"]["before"] = baseline.as_json(self.before)
            progress.log("   row counts and content checksums captured")
            self._compare_restore_test()
            mig["applied"] = self._apply(recorded)
            step.summary = f"applied {', '.join(mig['applied'])}"
            self.data["migration_log"] = migration_log.entry(conn, VERSION)

    def _apply(self, remedies: dict[str, Any]) -> list[str]:
        """The runner, up to the target, recording the run in 008's migration_log details; the labels applied. On a
        failure, what failed is recorded before the error goes on."""
        opts, progress, mig = self.opts, self.progress, self.data["migration"]
        assert self.before is not None
        r = runner.Runner(
            self.conn,
            lock_wait_s=self.lock_wait_s,
            lock_timeout=opts.lock_timeout,
            statement_timeout=opts.statement_timeout,
            progress=progress.notice,
        )
        details = {
            "remedies": remedies,
            "runbook": {
                "run_id": self.run_id,
                "dry_run": opts.dry_run,
                "report": str(self.report),
                "baseline_before": baseline.as_json(self.before),
                "backup": {"path": str(self.backup.path), "sha256": self.backup.sha256} if self.backup else None,
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
        return [f"{a.version:03d}_{a.name}" for a in applied]

    def _gate_again(self) -> None:
        """Other sessions were allowed, so the data may have changed since the gate: run it again under the lock."""
        again = checks.run(self.conn, checks.CheckScript.named(checks.PRE))
        self.data["prechecks_in_transaction"] = again.as_json()
        self.progress.log(
            f"   pre-migration checks again, under the lock (other sessions were allowed): {again.summary()}"
        )
        if again.failed:
            raise CheckFailed(
                "the pre-migration checks failed inside the migration transaction (the data changed since the first "
                "run); rolled back:\n" + "\n".join(f"  - {r.describe()}" for r in again.failed)
            )

    def _lock_holders(self) -> str:
        """Who holds locks on the eight tables (asked after the rollback; best effort)."""
        try:
            rows = migration_runbook.lock_holders(self.conn)
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
