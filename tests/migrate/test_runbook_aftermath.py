"""After a crash: a run killed after COMMIT is finished by the next run; a run killed during the backup leaves no
pg_dump behind, and the next run removes its unfinished file, saying so. Every path the run records is absolute."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from mandate.migrate import runner
from tests.helpers import scalar
from tests.migrate.test_runbook import book, make_legacy
from tests.migrate.test_runbook_cli import Runner, _remedies, _remedy, _wait_until_the_session_is_gone


def _pg_dumps_writing_into(folder: Path) -> list[int]:
    """Processes named pg_dump whose command line names `folder` (ours: the folder is this test's own)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if cmdline and cmdline[0].endswith(b"pg_dump") and any(str(folder).encode() in part for part in cmdline):
            found.append(int(entry.name))
    return found


def _until(condition: Callable[[], bool], timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def test_a_run_killed_after_commit_is_finished_by_the_next_run(fresh_db: Callable[..., str], tmp_path: Path) -> None:
    url = make_legacy(fresh_db, "add_unattributed_rows")
    backups = tmp_path / "backups"
    run = Runner(url, tmp_path / "data", "--yes", "--backup-dir", str(backups), *_remedy())
    run.wait_for("the migration transaction took")  # printed right after COMMIT returned
    run.kill()
    _wait_until_the_session_is_gone(url)
    with psycopg.connect(url) as conn:
        assert runner.status(conn).pending == []  # committed: 008 and every later migration
        details = scalar(conn, "SELECT details FROM mandate.migration_log WHERE migration_version = 8")
    report = Path(details["runbook"]["report"])
    assert report.is_absolute() and not report.with_suffix(".json").exists()
    assert Path(details["runbook"]["backup"]["path"]).is_absolute()

    rerun = book(url, tmp_path / "rerun", remedies=_remedies(), backup_dir=backups).run()
    assert rerun.status == "succeeded", rerun.message
    assert rerun.report_json == report.with_suffix(".json") and rerun.report_json.is_file()
    data = json.loads(rerun.report_json.read_text())
    assert data["resumed"]["run_id"] == details["runbook"]["run_id"]
    assert data["analyze"]["tables"] and data["constraints_after_commit"]["passed"]
    assert data["baseline"]["differences_after_commit"] == []
    assert data["smoke"]["passed"] and len(data["smoke"]["tests"]) == 4
    assert "mandate backup restore" not in rerun.message
    assert data["restore_command"] and details["runbook"]["backup"]["path"] in data["restore_command"]
    # Once the report is there, a third run has nothing left to do.
    assert book(url, tmp_path / "third", backup_dir=backups).run().status == "already_applied"


def test_a_run_killed_during_the_backup_leaves_no_pg_dump_and_the_next_run_cleans_up(
    fresh_db: Callable[..., str], tmp_path: Path
) -> None:
    url = make_legacy(fresh_db, "add_unattributed_rows")
    backups = tmp_path / "backups"
    with psycopg.connect(url, autocommit=True) as blocker:
        # pg_dump waits for this table (the pre-flight and the gate never read it), so the kill finds it running.
        blocker.execute("CREATE TABLE public.m12_blocker (x int)")
        blocker.execute("BEGIN")
        blocker.execute("LOCK TABLE public.m12_blocker IN ACCESS EXCLUSIVE MODE")
        run = Runner(url, tmp_path / "data", "--yes", "--allow-connections", "--backup-dir", str(backups), *_remedy())
        run.wait_for("pg_dump -Fc into")
        assert _until(lambda: bool(_pg_dumps_writing_into(backups))), "pg_dump did not start"
        assert _until(lambda: bool(list(backups.rglob("*.partial")))), "pg_dump did not open its file"
        run.kill()  # SIGKILL to the runner's process group; pg_dump is in a group of its own
        assert _until(lambda: not _pg_dumps_writing_into(backups), 10), "pg_dump outlived the runner"
        blocker.execute("ROLLBACK")
    _wait_until_the_session_is_gone(url)
    partials = sorted(backups.rglob("*.partial"))
    assert partials  # what the killed run left

    rerun = book(url, tmp_path / "rerun", remedies=_remedies(), backup_dir=backups).run()
    assert rerun.status == "succeeded", rerun.message
    assert rerun.data["removed_partials"] == [str(p) for p in partials]
    assert any("unfinished backup file" in w for w in rerun.data["warnings"])
    assert not list(backups.rglob("*.partial"))


def test_every_path_the_run_records_is_absolute(
    fresh_db: Callable[..., str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = make_legacy(fresh_db)
    monkeypatch.chdir(tmp_path)  # relative options are taken relative to here, and recorded absolute
    outcome = book(
        url, Path("."), backup_dir=Path("relative-backups"), backup_copy_to=Path("second"), report=Path("r.md")
    ).run()
    assert outcome.status == "succeeded", outcome.message
    data = outcome.data
    paths = [
        data["log_path"],
        data["run_dir"],
        *data["report_paths"].values(),
        data["backup"]["path"],
        data["backup"]["copies"][0]["path"],
        *data["artifacts"],
    ]
    assert all(Path(p).is_absolute() for p in paths), paths
    assert str(tmp_path / "relative-backups") in data["restore_command"]
    with psycopg.connect(url) as conn:
        details = scalar(conn, "SELECT details FROM mandate.migration_log WHERE migration_version = 8")
    assert Path(details["runbook"]["report"]).is_absolute()
    assert Path(details["runbook"]["backup"]["path"]).is_absolute()
