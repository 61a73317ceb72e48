"""What the runbook's report claims is what it measured: rows created by remedies are shown, rows never counted are
not called equal, the calibration of a local server is not charged for another process's work, and a missing
search_path is noted."""

from __future__ import annotations

import copy
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
from psycopg import sql

from mandate.migrate import estimate, preflight, report
from mandate.migrate.remedies import Remedies
from tests import legacy_data
from tests.migrate.test_runbook import book, make_legacy


def test_rows_created_by_remedies_are_listed_and_uncounted_rows_are_not_called_equal(
    fresh_db: Callable[..., str], tmp_path: Path
) -> None:
    url = make_legacy(fresh_db, "add_unattributed_rows")
    remedies = Remedies.from_options(unattributed_to=f"{legacy_data.EXAMPLE_ORG_ID}/unattributed")
    outcome = book(url, tmp_path, remedies=remedies).run()
    assert outcome.status == "succeeded", outcome.message
    data = outcome.data
    created = data["baseline"]["created_by_remedies"]
    assert created == {"domains": [f"domain {legacy_data.EXAMPLE_ORG_ID}/unattributed (--unattributed-to)"]}
    text = report.render(data)
    assert f"+1: domain {legacy_data.EXAMPLE_ORG_ID}/unattributed (--unattributed-to)" in text
    # The same run, as if it had stopped after the baseline and before anything was counted again.
    stopped = copy.deepcopy(data)
    for key in ("after", "counts_after_commit", "created_by_remedies"):
        stopped["baseline"].pop(key)
    stopped.pop("evidence", None)
    table = report.render(stopped).split("## Row counts and content checksums")[1].split("## ")[0]
    assert "| yes |" not in table
    assert table.count("not counted (the run stopped before)") == len(data["baseline"]["before"])


def test_a_core_taken_by_another_process_does_not_count_in_the_calibration_of_a_local_server(
    fresh_db: Callable[..., str],
) -> None:
    """The test server runs on this machine: while another process keeps a core busy, the pre-flight's calibration
    times its copies by the server process's own CPU time, which that process does not add to. (How far two
    pre-flights agree is a measurement, `python -m bench migration`, not an assertion.)"""
    url = make_legacy(fresh_db, decisions=20_000)
    with psycopg.connect(url, autocommit=True) as conn:
        assert conn.info.host.startswith("/") or conn.info.host in ("localhost", "127.0.0.1", "::1"), conn.info.host
        conn.execute("VACUUM ANALYZE")
        hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        try:
            time.sleep(0.2)  # the spinner is running before the calibration starts
            found = preflight.run(conn, backup_dir=None, allow_connections=True, needs_backup=False, settle_s=0)
        finally:
            hog.kill()
            hog.wait(timeout=10)
        # The copies stayed in the backend's memory: the session's temp_buffers was raised for them.
        assert conn.execute("SHOW temp_buffers").fetchone() == (estimate.CALIBRATION_TEMP_BUFFERS,)
    assert found.estimate is not None and found.estimate.calibration is not None
    calibration = found.estimate.calibration
    assert (calibration.clock, calibration.sample_rows) == ("cpu", 20_000)
    assert calibration.sample_bytes > 0 and calibration.seconds > 0
    assert "ms of server CPU time" in found.estimate.basis
    assert found.estimate.migration_s > 0


def test_a_session_that_used_a_temporary_table_still_calibrates_with_its_temp_buffers(
    fresh_db: Callable[..., str],
) -> None:
    url = make_legacy(fresh_db)
    with psycopg.connect(url, autocommit=True) as conn:
        before = conn.execute("SHOW temp_buffers").fetchone()
        conn.execute("CREATE TEMPORARY TABLE used (a int)")
        conn.execute("INSERT INTO used VALUES (1)")
        calibration = estimate.calibrate(conn, repeats=1)
        assert conn.execute("SHOW temp_buffers").fetchone() == before != (estimate.CALIBRATION_TEMP_BUFFERS,)
    assert calibration.sample_rows == 300 and calibration.sample_bytes > 0 and calibration.seconds > 0


def test_the_calibration_reads_the_table_once_however_many_copies_it_times(fresh_db: Callable[..., str]) -> None:
    """Each timed copy reads the sample from the backend's memory, not the table: timed from a large table, every copy
    read its pages from the operating system and started where the last scan had stopped (synchronize_seqscans), so
    its cost was the kernel cache's (bench/findings.md, "The calibration's source")."""
    url = make_legacy(fresh_db)
    with psycopg.connect(url, autocommit=True) as conn:
        with conn.transaction():  # the transaction's own counts of scans, copies rolled back included
            calibration = estimate.calibrate(conn, repeats=12, window_s=0)
            scans = conn.execute(
                "SELECT seq_scan, coalesce(idx_scan, 0) FROM pg_stat_xact_user_tables"
                " WHERE schemaname = 'mandate' AND relname = 'decision_events'"
            ).fetchone()
        assert conn.execute("SHOW synchronize_seqscans").fetchone() == ("on",)  # set for the sample's read only
    assert scans == (1, 0)
    assert calibration.sample_rows == 300 and calibration.sample_bytes > 0 and calibration.seconds > 0
    assert calibration.large_table is False  # 300 decisions fit in a quarter of shared_buffers


def test_a_template_copy_without_search_path_is_noted_with_the_command(fresh_db: Callable[..., str]) -> None:
    url = make_legacy(fresh_db)
    with psycopg.connect(url, autocommit=True) as conn:
        name = conn.info.dbname
        conn.execute(sql.SQL("ALTER DATABASE {} RESET search_path").format(sql.Identifier(name)))
        found = preflight.run(conn, backup_dir=None, allow_connections=True, needs_backup=False, settle_s=0)
        item = next(i for i in found.items if i.key == "search_path")
        assert item.status == "WARN" and item.measured == "not set"
        assert item.detail is not None and f'ALTER DATABASE "{name}" SET search_path = mandate, public' in item.detail
        conn.execute(sql.SQL("ALTER DATABASE {} SET search_path = mandate, public").format(sql.Identifier(name)))
        again = preflight.run(conn, backup_dir=None, allow_connections=True, needs_backup=False, settle_s=0)
    assert next(i for i in again.items if i.key == "search_path").status == "PASS"
