"""The `mandate` command as an operator runs it: a subprocess with the environment it reads."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path

import psycopg

from mandate.migrate.files import head_version, load
from tests.helpers import psql, run_cli


def test_db_url_starts_the_embedded_server_and_psql_can_use_it(tmp_path: Path) -> None:
    env = {"MANDATE_DATA_DIR": str(tmp_path / "data"), "DATABASE_URL": ""}
    first = run_cli("db", "url", env=env)
    try:
        assert first.returncode == 0, first.stderr
        url = first.stdout.strip()
        assert url.startswith("postgresql://") and "/mandate" in url
        # Reused across commands: the same server answers the second time.
        assert run_cli("db", "url", env=env).stdout.strip() == url
        result = psql(url, "-At", "-c", "SELECT current_database()")
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "mandate"
        up = run_cli("migrate", "up", env=env)
        assert up.returncode == 0, up.stderr
        status = run_cli("migrate", "status", env=env)
        assert status.returncode == 0, status.stderr
        for f in load():
            assert f"{f.version:03d}" in status.stdout
            assert f.checksum[:16] in status.stdout
        assert "0 pending" in status.stdout
    finally:
        pidfile = tmp_path / "data" / "pgdata" / "postmaster.pid"
        if pidfile.exists():
            os.kill(int(pidfile.read_text().split()[0]), signal.SIGTERM)


def test_migrate_up_then_status_against_database_url(fresh_db: Callable[..., str]) -> None:
    url = fresh_db(empty=True)
    up = run_cli("migrate", "up", "--to", "7", env={"DATABASE_URL": url})
    assert up.returncode == 0, up.stderr
    assert "schema version 007" in up.stdout
    status = run_cli("migrate", "status", env={"DATABASE_URL": url})
    assert f"{head_version() - 7} pending" in status.stdout
    again = run_cli("migrate", "up", env={"DATABASE_URL": url})
    assert f"schema version {head_version():03d}" in again.stdout
    assert "nothing to do" in run_cli("migrate", "up", env={"DATABASE_URL": url}).stdout


def test_status_exits_non_zero_when_an_applied_file_changed(fresh_db: Callable[..., str]) -> None:
    url = fresh_db()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ALTER TABLE mandate.migration_log DISABLE TRIGGER prevent_migration_log_mutation")
        conn.execute("UPDATE mandate.migration_log SET checksum = 'deadbeef' WHERE migration_version = 3")
    result = run_cli("migrate", "status", env={"DATABASE_URL": url})
    assert result.returncode == 1
    assert "changed after it was applied" in result.stdout


def test_a_malformed_database_url_is_named(tmp_path: Path) -> None:
    result = run_cli("db", "url", env={"DATABASE_URL": "mysql://root@localhost/x"})
    assert result.returncode == 1
    assert "DATABASE_URL must start with postgresql://" in result.stderr


def test_an_unreachable_database_is_a_clear_error() -> None:
    result = run_cli("migrate", "status", env={"DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"})
    assert result.returncode == 1
    assert "cannot connect to the database" in result.stderr


def test_bad_timeouts_and_versions_are_refused(fresh_db: Callable[..., str]) -> None:
    url = fresh_db(empty=True)
    bad = run_cli("migrate", "up", "--lock-timeout", "soon", env={"DATABASE_URL": url})
    assert bad.returncode == 1
    assert "--lock-timeout must be a duration" in bad.stderr
    unknown = run_cli("migrate", "up", "--to", "77", env={"DATABASE_URL": url})
    assert unknown.returncode == 1
    assert "there is no migration 077" in unknown.stderr
    env_bad = run_cli("migrate", "up", env={"DATABASE_URL": url, "MANDATE_MIGRATION_LOCK_WAIT": "-3"})
    assert env_bad.returncode == 1
    assert "MANDATE_MIGRATION_LOCK_WAIT must not be negative" in env_bad.stderr
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT to_regclass('mandate.migration_log')").fetchone() == (None,)
