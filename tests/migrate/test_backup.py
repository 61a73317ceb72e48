"""Verified backups: pg_dump -Fc, read back completely, hashed, copied, and restored with identical content."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import conninfo

from mandate.db import tools
from mandate.errors import BackupError
from mandate.migrate import backup, baseline, catalog
from mandate.migrate.runner import Runner
from tests.helpers import run_cli, scalar
from tests.migrate.test_runbook import make_legacy


def _state(url: str) -> tuple[dict[str, Any], dict[str, baseline.TableState]]:
    with psycopg.connect(url, autocommit=True) as conn, conn.transaction(force_rollback=True):
        return catalog.describe(conn), baseline.capture(conn)


def _dbname(url: str) -> str:
    return str(conninfo.conninfo_to_dict(url)["dbname"])


@pytest.fixture
def legacy(fresh_db: Callable[..., str]) -> str:
    return make_legacy(fresh_db)


def test_a_backup_is_created_read_back_and_described(legacy: str, tmp_path: Path) -> None:
    made = backup.create(legacy, tmp_path / "backups")
    assert made.path.is_file() and made.path.suffix == ".dump"
    assert made.size == made.path.stat().st_size
    assert made.sha256 == backup.sha256_of(made.path)
    assert set(made.tables) == set(baseline.TABLES)
    check = backup.verify(made.path, expected_tables=made.tables)
    assert check.ok, check.problems()
    assert check.full_read and check.tables_missing == [] and check.tables_expected == sorted(made.tables)
    manifest = json.loads(backup.manifest_path(made.path).read_text())
    assert manifest["sha256"] == made.sha256 and manifest["tables"] == made.tables
    # Without a catalog to compare with, `verify` uses the manifest written next to the archive.
    assert backup.verify(made.path).expected_from == "manifest"
    with pytest.raises(BackupError, match="never overwritten"):
        backup.create(legacy, tmp_path / "backups", name=made.path.name)


def test_a_truncated_backup_is_detected_although_pg_restore_list_accepts_it(legacy: str, tmp_path: Path) -> None:
    made = backup.create(legacy, tmp_path)
    data = made.path.read_bytes()
    truncated = tmp_path / "truncated.dump"
    truncated.write_bytes(data[: len(data) - 4096])
    # What the checklist does ("pg_restore --list … | head") passes: the table of contents sits at the start.
    listing = subprocess.run(
        [str(backup.newest("pg_restore").path), "--list", str(truncated)], capture_output=True, text=True, check=False
    )
    assert listing.returncode == 0 and "TABLE DATA mandate decision_events" in listing.stdout
    check = backup.verify(truncated, expected_tables=made.tables)
    assert not check.ok and not check.full_read
    assert any("cannot be read to the end" in p for p in check.problems())
    # The CLI says so and exits 1.
    result = run_cli("backup", "verify", str(truncated))
    assert result.returncode == 1
    assert "not a usable backup" in result.stderr and "cannot be read to the end" in result.stderr


def test_a_changed_archive_no_longer_matches_its_manifest(legacy: str, tmp_path: Path) -> None:
    made = backup.create(legacy, tmp_path)
    manifest = backup.manifest_path(made.path)
    recorded = json.loads(manifest.read_text())
    recorded["sha256"] = "0" * 64
    manifest.write_text(json.dumps(recorded))
    check = backup.verify(made.path)
    assert not check.ok
    assert any("differs from the one recorded" in p for p in check.problems())


def test_a_file_that_is_no_archive_is_refused(tmp_path: Path) -> None:
    plain = tmp_path / "mandate_backup.sql"
    plain.write_text("CREATE TABLE x ();\n")
    with pytest.raises(BackupError, match="not a PostgreSQL custom-format archive"):
        backup.verify(plain)
    with pytest.raises(BackupError, match="does not exist"):
        backup.verify(tmp_path / "absent.dump")


def test_a_table_missing_from_the_archive_is_detected(legacy: str, tmp_path: Path) -> None:
    made = backup.create(legacy, tmp_path)
    check = backup.verify(made.path, expected_tables=[*made.tables, "spec_status_events"])
    assert not check.ok and check.tables_missing == ["spec_status_events"]


def test_a_copy_is_verified_by_its_hash(legacy: str, tmp_path: Path) -> None:
    made = backup.create(legacy, tmp_path / "one")
    record = backup.copy(made, tmp_path / "two")
    assert record["verified"] and record["sha256"] == made.sha256
    assert Path(record["path"]).read_bytes() == made.path.read_bytes()
    assert backup.verify(Path(record["path"])).ok
    with pytest.raises(BackupError, match="never overwritten"):
        backup.copy(made, tmp_path / "two")


def test_restore_after_a_committed_migration_gives_back_the_same_rows_and_content(legacy: str, tmp_path: Path) -> None:
    before = _state(legacy)
    made = backup.create(legacy, tmp_path)
    with psycopg.connect(legacy, autocommit=True) as conn:
        Runner(conn).up()  # 008 and 009 committed: new tables, functions, a view on mandate_specs
        assert scalar(conn, "SELECT to_regclass('mandate.spec_status_events')") is not None
    # The plain `pg_restore --clean --if-exists --single-transaction` cannot do it (objects created since depend
    # on what it drops), which is why the restore replaces schema mandate as a whole.
    pg_restore = backup.newest("pg_restore").path
    target, env = backup._client_env(legacy)
    plain = subprocess.run(
        [
            str(pg_restore),
            "--clean",
            "--if-exists",
            "--single-transaction",
            "--exit-on-error",
            "-d",
            target,
            str(made.path),
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert plain.returncode != 0 and "depend" in plain.stderr
    restored = backup.restore(made.path, legacy)
    assert restored.database == _dbname(legacy)
    assert _state(legacy) == before
    with psycopg.connect(legacy) as conn:
        assert "mandate" in scalar(conn, "SHOW search_path"), "the database's default search_path is set again"
    assert made.path.name in restored.command and "pg_restore" in restored.command


def test_restore_into_a_new_database(legacy: str, tmp_path: Path, pg: Any) -> None:
    made = backup.create(legacy, tmp_path)
    name = _dbname(legacy) + "_copy"
    try:
        restored = backup.restore(made.path, legacy, into_new_database=name)
        assert restored.new_database and restored.database == name
        assert _state(pg.url(name))[1] == _state(legacy)[1]
        with pytest.raises(BackupError, match="already exists"):
            backup.restore(made.path, legacy, into_new_database=name)
    finally:
        pg.drop(name)


def test_a_failed_restore_changes_nothing(legacy: str, tmp_path: Path) -> None:
    with psycopg.connect(legacy, autocommit=True) as conn:
        # An object outside schema mandate: it is in the archive, and still in the database at restore time, so
        # re-creating it fails half-way through the restore, after schema mandate was dropped and partly rebuilt.
        conn.execute("CREATE TABLE public.restore_conflict (x int)")
    made = backup.create(legacy, tmp_path)
    with psycopg.connect(legacy, autocommit=True) as conn:
        Runner(conn).up()
    before = _state(legacy)
    with pytest.raises(BackupError, match=r"(?s)the restore failed and was rolled back.*restore_conflict"):
        backup.restore(made.path, legacy)
    assert _state(legacy) == before, "one transaction: the migrated schema is still there, untouched"
    # An archive that cannot be read to the end is refused before anything is dropped.
    broken = tmp_path / "broken.dump"
    data = made.path.read_bytes()
    broken.write_bytes(data[: len(data) - 2048])
    with pytest.raises(BackupError, match="not a verified backup, nothing was restored"):
        backup.restore(broken, legacy)
    assert _state(legacy) == before


def test_the_restore_command_reads_the_archive_with_pg_restore(legacy: str, tmp_path: Path) -> None:
    made = backup.create(legacy, tmp_path)
    command = backup.restore_command(made.path, legacy)
    assert "pg_restore --file -" in command and "--single-transaction" in command
    assert "DROP SCHEMA IF EXISTS mandate CASCADE" in command and "SET search_path = mandate, public" in command
    assert "psql <" not in command
    new = backup.restore_command(made.path, legacy, into_new_database="staging_copy")
    assert "dbname=staging_copy" in new and "--single-transaction" in new


def test_the_backup_commands_as_an_operator_runs_them(legacy: str, tmp_path: Path) -> None:
    env = {"DATABASE_URL": legacy, "MANDATE_DATA_DIR": str(tmp_path / "data")}
    before = _state(legacy)
    created = run_cli(
        "backup", "create", "--backup-dir", str(tmp_path / "b"), "--copy-to", str(tmp_path / "c"), env=env
    )
    assert created.returncode == 0, created.stderr
    dump = next((tmp_path / "b").glob("*.dump"))
    assert f"backup: {dump}" in created.stdout and "sha256" in created.stdout
    assert (tmp_path / "c" / dump.name).is_file()
    verified = run_cli("backup", "verify", str(dump), env=env)
    assert verified.returncode == 0 and "complete and readable" in verified.stdout
    with psycopg.connect(legacy, autocommit=True) as conn:
        Runner(conn).up()
    refused = run_cli("backup", "restore", str(dump), env=env)
    assert refused.returncode == 1 and "pass --yes" in refused.stderr
    restored = run_cli("backup", "restore", str(dump), "--yes", env=env)
    assert restored.returncode == 0, restored.stderr
    assert "pg_restore" in restored.stdout
    assert _state(legacy) == before


def test_an_unwritable_backup_dir_is_refused_and_nothing_is_written(legacy: str, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = run_cli("backup", "create", "--backup-dir", str(blocker / "sub"), env={"DATABASE_URL": legacy})
    assert result.returncode == 1 and "--backup-dir" in result.stderr and "is not a folder" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_the_tools_fit_the_server(legacy: str) -> None:
    with psycopg.connect(legacy) as conn:
        major = conn.info.server_version // 10000
    assert tools.find("pg_dump", major).major >= major
    assert backup.newest("pg_restore").major >= major
