"""`mandate migrate run 008` when the machine or another session gets in the way: the disk fills up during the
backup, the runner's connection is dropped in the middle of the migration, another session holds a lock on a
table 008 rewrites. Each time: a clear failure naming the cause, the database exactly as before (catalog, row
counts, content checksums, no migration_log row for 008), and a report that says so.

The full disk is a real one: a 64 MB tmpfs mounted for the test (`mount -t tmpfs -o size=64m`, which needs root,
as CI and the development machine run the tests), filled by another writer after the pre-flight measured enough
room — as a log or another backup would fill it. Where mounting is refused (not root), the same run is made with
pg_dump's file size limited (RLIMIT_FSIZE): the kernel stops pg_dump's writes as a full disk would, with another
error (SIGXFSZ instead of ENOSPC); the test says which one it used.
"""

from __future__ import annotations

import contextlib
import json
import resource
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from mandate.migrate import backup as backups
from mandate.migrate import transaction
from mandate.migrate.remedies import Remedies
from mandate.migrate.runbook import Outcome
from tests.migrate.test_runbook import book, make_legacy, migration_log_8, snapshot

pytestmark = pytest.mark.slow

APPLICATION = "mandate migrate run 008"


@pytest.fixture
def legacy(fresh_db: Any) -> str:
    return make_legacy(fresh_db, "add_unattributed_rows")


def _remedies() -> Remedies:
    from tests import legacy_data

    return Remedies.from_options(unattributed_to=f"{legacy_data.EXAMPLE_ORG_ID}/unattributed")


def _assert_unchanged_and_reported(outcome: Outcome, url: str, before: Any) -> dict[str, Any]:
    failure: dict[str, Any] = outcome.data["failure"]
    assert failure["database_changed"] is False
    assert snapshot(url) == before
    assert migration_log_8(url) is None
    assert outcome.report_markdown is not None and outcome.report_json is not None
    markdown = outcome.report_markdown.read_text()
    assert "Database changed: **no — everything was rolled back**" in markdown, markdown[:3000]
    assert json.loads(outcome.report_json.read_text())["failure"]["database_changed"] is False
    return failure


# -- the disk fills up during the backup ----------------------------------------------------------------------------


@contextlib.contextmanager
def _small_filesystem() -> Iterator[tuple[Path, str]]:
    """A 64 MB tmpfs of our own, unmounted afterwards; ('', 'rlimit') when mounting is refused."""
    where = Path(tempfile.mkdtemp(prefix="mandate-full-disk-"))
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(where)], capture_output=True, check=False
    )
    try:
        yield where, "tmpfs" if mounted.returncode == 0 else "rlimit"
    finally:
        if mounted.returncode == 0:
            subprocess.run(["umount", str(where)], check=True)
        shutil.rmtree(where, ignore_errors=True)


def _fill(directory: Path, leave: int = 4096) -> Path:
    """Write zeros into `directory` until its filesystem has at most `leave` bytes free."""
    filler = directory / "filler"
    block = b"\0" * (1 << 20)
    with filler.open("wb") as f:
        while (free := shutil.disk_usage(directory).free) > leave:
            try:
                f.write(block[: max(1, min(len(block), free - leave))])
                f.flush()
            except OSError:
                break
    return filler


def test_a_disk_that_fills_up_during_the_backup_stops_the_run_before_anything_changes(
    legacy: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = snapshot(legacy)
    create = backups.create
    with _small_filesystem() as (disk, kind):
        backup_dir = disk / "backups" if kind == "tmpfs" else tmp_path / "backups"

        def create_on_a_full_disk(url: str, directory: Path, name: str | None = None) -> backups.Backup:
            # Another writer fills the disk between the pre-flight (which found room) and pg_dump.
            if kind == "tmpfs":
                _fill(disk)
                return create(url, directory, name)
            soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
            resource.setrlimit(resource.RLIMIT_FSIZE, (4096, hard))  # inherited by pg_dump
            try:
                return create(url, directory, name)
            finally:
                resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))

        monkeypatch.setattr(backups, "create", create_on_a_full_disk)
        outcome = book(
            legacy, tmp_path, backup_dir=backup_dir, report=tmp_path / "report" / "report.md", remedies=_remedies()
        ).run()
        monkeypatch.setattr(backups, "create", create)
        assert outcome.status == "refused", outcome.message
        failure = _assert_unchanged_and_reported(outcome, legacy, before)
        assert failure["step"] == "backup"
        assert "pg_dump failed" in failure["message"]
        if kind == "tmpfs":
            assert "No space left on device" in failure["message"], failure["message"]
        assert not list(backup_dir.rglob("*.partial")), "the unfinished dump was left behind"
        assert not list(backup_dir.rglob("*.dump")), "a dump was kept although it could not be written"
        print(f"\nfull disk ({kind}): {failure['message'][:160]}")

        # Room again: the same command backs up and migrates.
        if kind == "tmpfs":
            (disk / "filler").unlink()
        rerun = book(
            legacy, tmp_path / "rerun", backup_dir=backup_dir, report=tmp_path / "rerun.md", remedies=_remedies()
        ).run()
        assert Path(rerun.data["backup"]["path"]).is_file()
        assert migration_log_8(legacy) is not None, rerun.message


# -- the connection is dropped in the middle of the migration -------------------------------------------------------


def test_a_connection_dropped_in_the_middle_of_the_migration_rolls_everything_back_and_says_so(
    legacy: str, tmp_path: Path
) -> None:
    before = snapshot(legacy)
    b = book(legacy, tmp_path, remedies=_remedies(), report=tmp_path / "report.md")
    terminated: list[int] = []

    def drop_the_connection_once_the_migration_began() -> None:
        deadline = time.monotonic() + 120
        while not b.data.get("migration", {}).get("started_at") and time.monotonic() < deadline:
            time.sleep(0.005)
        with psycopg.connect(legacy, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT pid, pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s "
                "AND pid <> pg_backend_pid() AND xact_start IS NOT NULL",
                (APPLICATION,),
            ).fetchall()
        terminated.extend(pid for pid, ok in rows if ok)

    dropper = threading.Thread(target=drop_the_connection_once_the_migration_began)
    dropper.start()
    outcome = b.run()
    dropper.join(timeout=130)
    assert terminated, "no migration session was found to terminate"
    assert outcome.status == "failed", outcome.message
    failure = _assert_unchanged_and_reported(outcome, legacy, before)
    assert "connection to the database was lost" in failure["message"] or "terminating connection" in failure["message"]
    assert outcome.data["migration"].get("started_at")
    book(legacy, tmp_path / "rerun", remedies=_remedies()).run()
    assert migration_log_8(legacy) is not None, "the same command, run again, did not migrate"


# -- another session holds a lock -----------------------------------------------------------------------------------


def test_another_session_holding_a_lock_fails_the_run_clearly_with_the_database_unchanged(
    legacy: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(transaction, "RETRY_BACKOFF_S", 0.05)
    before = snapshot(legacy)
    with psycopg.connect(legacy, application_name="nightly-report") as holder:
        # A reporting job in the middle of a long read: ACCESS SHARE on decision_events until it ends.
        holder.execute("SELECT count(*) FROM mandate.decision_events").fetchone()
        outcome = book(
            legacy,
            tmp_path,
            allow_connections=True,
            lock_timeout="300ms",
            lock_retries=2,
            remedies=_remedies(),
            report=tmp_path / "report.md",
        ).run()
        holder_pid = holder.info.backend_pid
        holder.rollback()
    assert outcome.status == "failed", outcome.message
    failure = _assert_unchanged_and_reported(outcome, legacy, before)
    assert failure["step"] == "migration"
    assert "could not be locked" in failure["message"]
    assert f"pid {holder_pid}" in failure["message"] and "nightly-report" in failure["message"]
    assert any("pg_terminate_backend" in step for step in failure["next"]), failure["next"]
    assert "Failed at: migration" in outcome.report_markdown.read_text()  # type: ignore[union-attr]  # checked above
