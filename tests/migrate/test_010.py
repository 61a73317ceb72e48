"""Migrations 009 and 010 on what the original server wrote: its outcome reports survive, keyed to the decision
stage they belong to; databases that applied 009 as first released reach the same schema."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from mandate.errors import MigrationFailed
from mandate.migrate import baseline, catalog, runner
from mandate.migrate.files import load
from tests import legacy_data
from tests.helpers import released_chain, scalar

RELEASED_009 = "009_control_plane.sql"
EXPECTED_HEAD = Path(__file__).with_name("expected_head_schema.json")

_OUTCOMES = "SELECT count(*) FROM mandate.audit_timeline_entries WHERE intent = 'outcome' AND stage = 'executed'"


def _legacy_with_outcome_reports(fresh_db: Callable[..., str]) -> str:
    url = fresh_db(7)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE mandate.migration_log")
        legacy_data.insert_sample_governance(conn)
        legacy_data.generate_events(conn, decisions=300, organizations=2, domains_per_org=2, scopes_per_domain=3)
        legacy_data.add_original_server_history(conn)
        legacy_data.add_outcome_reports(conn)
    return url


def test_outcome_reports_survive_and_belong_to_the_pre_commit_decision(fresh_db: Callable[..., str]) -> None:
    url = _legacy_with_outcome_reports(fresh_db)
    with psycopg.connect(url, autocommit=True) as conn:
        reports = scalar(conn, _OUTCOMES)
        pre_commit = scalar(conn, "SELECT count(*) FROM mandate.decision_events WHERE stage = 'pre_commit'")
        assert reports == pre_commit > 100  # one per pre_commit decision, as the original example agent did
        with conn.transaction(force_rollback=True):
            before = baseline.capture(conn)
        applied = runner.Runner(conn).up()
        assert [a.version for a in applied] == [f.version for f in load() if f.version > 7]
        with conn.transaction(force_rollback=True):
            assert baseline.compare(before, baseline.capture(conn)) == []
        assert scalar(conn, _OUTCOMES) == reports
        by_kind = conn.execute(
            "SELECT intent = 'outcome', stage::text, decision_stage::text, count(*) "
            "FROM mandate.audit_timeline_entries GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
        ).fetchall()
        # Only the outcome reports name a decision stage of their own: the pre_commit decision they report on.
        assert [r for r in by_kind if r[2] is not None] == [(True, "executed", "pre_commit", reports)]
        assert all(r[0] is False for r in by_kind if r[2] is None)
        # The append-only guarantee is back on.
        with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
            conn.execute("UPDATE mandate.audit_timeline_entries SET severity = 'high' WHERE intent = 'outcome'")


def _entry(conn: psycopg.Connection[Any], decision_id: Any, stage: str) -> Any:
    return conn.execute(
        "INSERT INTO mandate.audit_timeline_entries (decision_id, intent, stage, actor, target, summary, severity, "
        "event_source, authority_level, timestamp, organization_id, domain) "
        "SELECT decision_id, intent, %s, actor, target, 'test', 'info', 'agent', 'agent', now(), organization_id, "
        "domain FROM mandate.decision_events WHERE decision_id = %s RETURNING decision_stage::text",
        (stage, decision_id),
    ).fetchone()


def test_every_new_timeline_entry_is_checked_against_its_decision_stage(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO mandate.organizations (organization_id, name) VALUES (%s, 'o')",
            (legacy_data.EXAMPLE_ORG_ID,),
        )
        conn.execute(
            "INSERT INTO mandate.domains (organization_id, domain) VALUES (%s, 'd')", (legacy_data.EXAMPLE_ORG_ID,)
        )
        decision_id = legacy_data.SAMPLE_SNAPSHOT_ID
        conn.execute(
            "INSERT INTO mandate.decision_events (decision_id, intent, stage, actor, target, timestamp, "
            "organization_id, domain) VALUES (%s, 'x.y', 'pre_commit', 'a', 't', now(), %s, 'd')",
            (decision_id, legacy_data.EXAMPLE_ORG_ID),
        )
        # Written without decision_stage (as the server writes): it is the entry's own stage, checked.
        assert _entry(conn, decision_id, "pre_commit") == ("pre_commit",)
        with pytest.raises(psycopg.errors.ForeignKeyViolation, match="audit_timeline_entries_decision_id_fkey"):
            _entry(conn, decision_id, "executed")


def test_a_database_that_applied_the_released_009_reaches_the_same_head(
    fresh_db: Callable[..., str], tmp_path: Path
) -> None:
    old = released_chain(tmp_path / "migrations", RELEASED_009)
    assert old[-1].checksum in runner.EARLIER_CHECKSUMS[9]
    url = fresh_db(empty=True)
    with psycopg.connect(url, autocommit=True) as conn:
        runner.Runner(conn, files=old).up()
        assert "(decision_id, stage)" in scalar(
            conn,
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'audit_timeline_entries_decision_id_fkey'",
        )
        st = runner.status(conn)
        assert st.changed == [], "the released 009 is an accepted earlier version of the file"
        assert [f.version for f in st.pending] == [f.version for f in load() if f.version > 9]
        runner.Runner(conn).up()
        assert runner.status(conn).pending == []
        comparison = catalog.compare(catalog.describe(conn), json.loads(EXPECTED_HEAD.read_text()))
    assert comparison.structural == []
    assert comparison.index_warnings == []


def test_an_unknown_checksum_of_009_is_still_reported(fresh_db: Callable[..., str]) -> None:
    url = fresh_db()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ALTER TABLE mandate.migration_log DISABLE TRIGGER USER")
        conn.execute("UPDATE mandate.migration_log SET checksum = repeat('0', 64) WHERE migration_version = 9")
        conn.execute("ALTER TABLE mandate.migration_log ENABLE TRIGGER USER")
        assert [a.version for a, _ in runner.status(conn).changed] == [9]


def test_the_released_009_names_itself_and_the_offending_key_when_it_fails(
    fresh_db: Callable[..., str], tmp_path: Path
) -> None:
    released = released_chain(tmp_path / "migrations", RELEASED_009)
    url = _legacy_with_outcome_reports(fresh_db)
    with psycopg.connect(url, autocommit=True) as conn:
        with pytest.raises(MigrationFailed) as failed:
            runner.Runner(conn, files=released).up()
        assert runner.status(conn, released).current_version == 8  # 008 committed on its own, 009 did not
    assert failed.value.label == "009_control_plane" and failed.value.sqlstate == "23503"
    assert failed.value.detail is not None and failed.value.detail.startswith("Key (decision_id, stage)=(")
    assert "executed) is not present" in failed.value.detail and f"DETAIL: {failed.value.detail}" in str(failed.value)
