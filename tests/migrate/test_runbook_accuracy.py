"""What the runbook's report claims is what it measured: rows created by remedies are shown, rows never counted are
not called equal, the estimate does not swing between two pre-flights (even while another process keeps a core busy),
and a missing search_path is noted."""

from __future__ import annotations

import copy
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
from psycopg import sql

from mandate.migrate import preflight, report
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


def test_two_pre_flights_of_one_database_estimate_within_20_percent_even_with_a_core_taken(
    fresh_db: Callable[..., str],
) -> None:
    """Two pre-flights on a quiet machine and two while another process keeps a core busy (a shared machine): every
    estimate within ±20 % of their median."""
    url = make_legacy(fresh_db, decisions=20_000)
    estimates: list[tuple[str, float]] = []
    with psycopg.connect(url, autocommit=True) as conn:
        # A database settled as an operator's is: freshly written, autovacuum would otherwise set its hint bits,
        # visibility and free-space maps and statistics between the pre-flights (their copies then get faster).
        conn.execute("VACUUM ANALYZE")
        for loaded in (False, True, False, True):
            hog = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if loaded else None
            try:
                if hog is not None:
                    time.sleep(0.2)  # the spinner is running before the calibration starts
                found = preflight.run(conn, backup_dir=None, allow_connections=True, needs_backup=False, settle_s=0)
            finally:
                if hog is not None:
                    hog.kill()
                    hog.wait(timeout=10)
            assert found.estimate is not None and found.estimate.calibration is not None
            assert hog is None or hog.returncode is not None
            estimates.append(("core taken" if loaded else "quiet", found.estimate.migration_s))
    middle = statistics.median(e for _, e in estimates)
    assert all(abs(e - middle) <= 0.2 * middle for _, e in estimates), estimates


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
