"""The migration runner on a real PostgreSQL: fresh installs, idempotence, locking, checksums, adoption."""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from mandate.db import migration_lock
from mandate.errors import MigrationError, MigrationLockTimeout, UnknownDatabaseShape
from mandate.migrate import catalog, runner
from mandate.migrate.files import head_version, load
from tests.helpers import MIGRATIONS, scalar

EXPECTED_HEAD = Path(__file__).with_name("expected_head_schema.json")


def _log(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT migration_version, name, checksum, baseline, tool_version FROM mandate.migration_log ORDER BY 1"
    ).fetchall()


def test_fresh_install_reaches_head_with_one_log_row_per_file(fresh_db: Callable[..., str]) -> None:
    url = fresh_db(empty=True)
    with psycopg.connect(url, autocommit=True) as conn:
        applied = runner.Runner(conn).up()
        log = _log(conn)
    files = load()
    assert [a.version for a in applied] == [f.version for f in files]
    assert [(r[0], r[1], r[2], r[3]) for r in log] == [(f.version, f.name, f.checksum, False) for f in files]
    assert all(r[4].startswith("mandate ") for r in log)


def test_fresh_install_gives_the_checked_in_schema(conn: psycopg.Connection[Any]) -> None:
    expected = json.loads(EXPECTED_HEAD.read_text())
    actual = catalog.describe(conn)
    comparison = catalog.compare(actual, expected)
    assert comparison.structural == []
    assert comparison.index_warnings == []


def test_001_to_007_give_the_legacy_schema(fresh_db: Callable[..., str]) -> None:
    with psycopg.connect(fresh_db(7)) as conn:
        actual = catalog.describe(conn, exclude=frozenset({"migration_log"}))
    comparison = catalog.compare(actual, runner.legacy_description())
    assert comparison.matches, comparison.structural
    assert comparison.index_warnings == []


def test_second_up_changes_nothing(conn: psycopg.Connection[Any]) -> None:
    before = _log(conn)
    schema_before = catalog.describe(conn)
    assert runner.Runner(conn).up() == []
    assert _log(conn) == before
    assert catalog.describe(conn) == schema_before


def test_up_to_stops_at_the_given_version(fresh_db: Callable[..., str]) -> None:
    with psycopg.connect(fresh_db(empty=True), autocommit=True) as conn:
        runner.Runner(conn).up(to=3)
        assert runner.status(conn).current_version == 3
        assert [f.version for f in runner.status(conn).pending] == list(range(4, head_version() + 1))


def test_up_to_an_unknown_version_is_refused(conn: psycopg.Connection[Any]) -> None:
    with pytest.raises(MigrationError, match="there is no migration 042"):
        runner.Runner(conn).up(to=42)


def test_a_second_runner_waits_then_fails_naming_the_holder(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True, application_name="dba-console") as holder:
        holder_pid = holder.info.backend_pid
        with runner.MigrationLock(holder, wait_s=1), psycopg.connect(db_url, autocommit=True) as other:
            with pytest.raises(MigrationLockTimeout) as excinfo:
                runner.Runner(other, lock_wait_s=0.3).up()
            assert f"pid {holder_pid}" in str(excinfo.value)
            assert "'dba-console'" in str(excinfo.value)


def test_two_concurrent_runners_serialise(fresh_db: Callable[..., str]) -> None:
    url = fresh_db(empty=True)
    results: dict[str, Any] = {}
    with psycopg.connect(url, autocommit=True) as first, runner.MigrationLock(first, wait_s=5):

        def second() -> None:
            with psycopg.connect(url, autocommit=True, application_name="second-runner") as c:
                results["applied"] = runner.Runner(c, lock_wait_s=30).up()

        thread = threading.Thread(target=second)
        thread.start()
        # Wait until the second runner is blocked on the advisory lock (a condition, not a sleep).
        with psycopg.connect(url, autocommit=True) as probe:
            for _ in range(500):
                waiting = scalar(
                    probe,
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
                    "AND classid = %s AND objid = %s AND database = (SELECT oid FROM pg_database "
                    "WHERE datname = current_database())",
                    migration_lock.LOCK_KEYS,
                )
                if waiting:
                    break
                probe.execute("SELECT pg_sleep(0.01)")
            assert waiting == 1
        # While the lock is held, nothing has been applied.
        assert scalar(first, "SELECT to_regclass('mandate.migration_log') IS NULL")
    thread.join(timeout=60)
    assert [a.version for a in results["applied"]] == [f.version for f in load()]


def test_an_edited_applied_file_is_reported(fresh_db: Callable[..., str], tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS, folder)
    with psycopg.connect(fresh_db(empty=True), autocommit=True) as conn:
        runner.Runner(conn, files=load(folder)).up(to=3)
        edited = folder / "002_policy_snapshots_and_verdicts.sql"
        edited.write_text(edited.read_text() + "\n-- a late edit\n")
        st = runner.status(conn, load(folder))
    assert [(a.version, f.name) for a, f in st.changed] == [(2, "policy_snapshots_and_verdicts")]


def test_a_failing_migration_is_rolled_back_and_not_recorded(fresh_db: Callable[..., str], tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS, folder)
    (folder / "099_broken.sql").write_text(
        "-- a migration that fails halfway\nBEGIN;\nCREATE TABLE mandate.half_done (id int);\nSELECT 1/0;\nCOMMIT;\n"
    )
    with psycopg.connect(fresh_db(), autocommit=True) as conn:
        with pytest.raises(MigrationError, match=r"099_broken failed and was rolled back: division by zero"):
            runner.Runner(conn, files=load(folder)).up()
        assert scalar(conn, "SELECT to_regclass('mandate.half_done') IS NULL")
        assert scalar(conn, "SELECT max(migration_version) FROM mandate.migration_log") == head_version()


def test_a_legacy_database_is_adopted_with_a_baseline(fresh_db: Callable[..., str]) -> None:
    with psycopg.connect(fresh_db(7), autocommit=True) as conn:
        conn.execute("DROP TABLE mandate.migration_log")  # what a real legacy database looks like
        assert runner.status(conn).state == "legacy"
        applied = runner.Runner(conn).up()
        log = _log(conn)
    assert [a.version for a in applied] == [f.version for f in load() if f.version > 7]
    assert [(r[0], r[2], r[3]) for r in log if r[0] <= 7] == [(v, None, True) for v in range(1, 8)]
    assert [r[3] for r in log if r[0] > 7] == [False] * (len(log) - 7)


def test_legacy_index_differences_warn_but_adopt(fresh_db: Callable[..., str]) -> None:
    with psycopg.connect(fresh_db(7), autocommit=True) as conn:
        conn.execute("DROP TABLE mandate.migration_log")
        conn.execute("DROP INDEX mandate.idx_decision_events_actor")
        conn.execute("CREATE INDEX dba_added ON mandate.verdict_events (created_at)")
        st = runner.status(conn)
        assert st.state == "legacy"
        assert "decision_events: index idx_decision_events_actor is missing" in st.index_warnings
        assert "verdict_events: additional index dba_added" in st.index_warnings
        runner.Runner(conn).up()
        details = scalar(conn, "SELECT details FROM mandate.migration_log WHERE migration_version = 1")
    assert "decision_events: index idx_decision_events_actor is missing" in details["index_warnings"]


def test_a_database_of_unknown_shape_is_refused_with_what_differs(fresh_db: Callable[..., str]) -> None:
    with psycopg.connect(fresh_db(7), autocommit=True) as conn:
        conn.execute("DROP TABLE mandate.migration_log")
        conn.execute("ALTER TABLE mandate.decision_events DROP COLUMN actor")
        conn.execute("CREATE TABLE mandate.something_else (id int)")
        with pytest.raises(UnknownDatabaseShape) as excinfo:
            runner.Runner(conn).up()
        assert scalar(conn, "SELECT to_regclass('mandate.migration_log') IS NULL")
    message = str(excinfo.value)
    assert "decision_events.actor is missing" in message
    assert "unexpected table something_else" in message


def test_migration_timeouts_apply_per_migration(fresh_db: Callable[..., str], tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS, folder)
    (folder / "099_slow.sql").write_text("-- a slow migration\nBEGIN;\nSELECT pg_sleep(5);\nCOMMIT;\n")
    with psycopg.connect(fresh_db(), autocommit=True) as conn:
        with pytest.raises(MigrationError, match="statement timeout"):
            runner.Runner(conn, files=load(folder), statement_timeout="200ms").up()
        # The setting was transaction-local: the session is back to no timeout.
        assert scalar(conn, "SHOW statement_timeout") == "0"


def test_lock_timeout_stops_a_migration_waiting_for_a_table(fresh_db: Callable[..., str], tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS, folder)
    (folder / "099_alter.sql").write_text(
        "-- needs a lock\nBEGIN;\nALTER TABLE mandate.organizations ADD COLUMN x int;\nCOMMIT;\n"
    )
    url = fresh_db()
    with psycopg.connect(url) as blocker, psycopg.connect(url, autocommit=True) as conn:
        blocker.execute("SELECT count(*) FROM mandate.organizations")  # holds ACCESS SHARE until rollback
        with pytest.raises(MigrationError, match="lock timeout"):
            runner.Runner(conn, files=load(folder), lock_timeout="100ms").up()
        blocker.rollback()
