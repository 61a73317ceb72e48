"""`mandate migrate run 008` in process, on real legacy databases: every gate, every remedy, every way it can stop.

Each test gets a legacy database (schema 007 without migration_log, the original sample governance and a few
hundred generated decisions, plus the kind of mess under test) and checks what the operator would: the outcome,
the message (rows named, remedy given), the report, and — whenever the run stops — that the database is exactly
as before (catalog, row counts, content checksums).
"""

from __future__ import annotations

import io
import json
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from rich.console import Console

from mandate.errors import CheckFailed, ConfigError
from mandate.migrate import baseline, catalog, preflight, runbook, runner, transaction
from mandate.migrate.remedies import Remedies
from mandate.migrate_commands import api_app
from tests import legacy_data
from tests.helpers import scalar

Snapshot = tuple[dict[str, Any], dict[str, baseline.TableState]]


def make_legacy(fresh_db: Callable[..., str], *messes: str, decisions: int = 300) -> str:
    """A real legacy database: 007 without migration_log, sample governance, generated events, the given messes."""
    url = fresh_db(7)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE mandate.migration_log")
        legacy_data.insert_sample_governance(conn)
        legacy_data.generate_events(conn, decisions=decisions, organizations=2, domains_per_org=2, scopes_per_domain=4)
        for mess in messes:
            getattr(legacy_data, mess)(conn)
    return url


def snapshot(url: str) -> Snapshot:
    """The catalog and every table's rows and content: what "the database is unchanged" compares."""
    with psycopg.connect(url, autocommit=True) as conn, conn.transaction(force_rollback=True):
        return catalog.describe(conn), baseline.capture(conn)


def book(url: str, tmp_path: Path, **options: Any) -> runbook.Runbook:
    options.setdefault("yes", True)
    options.setdefault("backup_dir", tmp_path / "backups")
    return runbook.Runbook(
        url,
        runbook.Options(**options),
        data_dir=tmp_path / "data",
        console=Console(file=io.StringIO(), width=200),
        live=False,
        lock_wait_s=5,
        api_app=api_app,
    )


def console_text(b: runbook.Runbook) -> str:
    file = b.console.file
    assert isinstance(file, io.StringIO)
    return file.getvalue()


def migration_log_8(url: str) -> dict[str, Any] | None:
    with psycopg.connect(url) as conn:
        if scalar(conn, "SELECT to_regclass('mandate.migration_log')") is None:
            return None
        row = conn.execute("SELECT row_to_json(l) FROM mandate.migration_log l WHERE migration_version = 8").fetchone()
        return row[0] if row else None


@pytest.fixture
def legacy(fresh_db: Callable[..., str]) -> str:
    return make_legacy(fresh_db)


# -- the whole run ---------------------------------------------------------------------------------------------------


def test_a_dry_run_rehearses_everything_and_leaves_no_trace(legacy: str, tmp_path: Path) -> None:
    # The free-space and visibility maps exist before the rehearsal: autovacuum creating them afterwards would grow
    # these tiny tables' total size by several per cent, and the estimate below scales with it.
    with psycopg.connect(legacy, autocommit=True) as conn:
        conn.execute("VACUUM")
    before = snapshot(legacy)
    b = book(legacy, tmp_path, dry_run=True, yes=False)
    outcome = b.run()
    assert outcome.status == "rehearsed", outcome.message
    assert snapshot(legacy) == before
    assert migration_log_8(legacy) is None
    data = outcome.data
    assert [p["number"] for p in data["phases"]] == list(range(1, 11))
    assert all(p["duration_s"] >= 0 for p in data["phases"])
    assert data["postchecks"]["results"] and not [r for r in data["postchecks"]["results"] if r["status"] == "FAIL"]
    assert data["constraints"]["passed"] and data["constraints"]["leftovers"] == 0
    assert data["baseline"]["differences"] == []
    assert data["smoke"] == {"skipped": "dry run: the migration was rolled back, there is nothing to serve"}
    assert "backup" not in data
    assert not list((tmp_path / "backups").rglob("*.dump"))
    assert outcome.report_markdown is not None and outcome.report_markdown.is_file()
    # The rehearsal is remembered: the next estimate is based on it, and it evidences "tested on staging".
    history = json.loads((tmp_path / "data" / "migration-008-runs.json").read_text())
    assert history[-1]["dry_run"] is True and history[-1]["outcome"] == "rehearsed"
    assert history[-1]["phases"].keys() == {str(n) for n in range(1, 11)}
    with psycopg.connect(legacy, autocommit=True) as conn:
        again = preflight.run(conn, backup_dir=None, allow_connections=False, data_dir=tmp_path / "data")
    assert again.estimate is not None and again.estimate.basis.startswith("rehearsal: the dry run of")
    assert again.estimate.migration_s == pytest.approx(history[-1]["migration_s"], rel=0.05)


def test_a_real_run_migrates_verifies_backs_up_and_reports(legacy: str, tmp_path: Path) -> None:
    before = snapshot(legacy)[1]
    b = book(legacy, tmp_path, backup_copy_to=tmp_path / "second", verify_restore=True)
    outcome = b.run()
    assert outcome.status == "succeeded", outcome.message
    data = outcome.data
    with psycopg.connect(legacy, autocommit=True) as conn:
        assert runner.status(conn).pending == []
        with conn.transaction(force_rollback=True):
            assert baseline.compare(before, baseline.capture(conn)) == []
    log = migration_log_8(legacy)
    assert log is not None
    assert log["details"]["runbook"]["backup"]["sha256"] == data["backup"]["sha256"]
    assert log["details"]["remedies"] == {"domain_slugs": [], "scope_ids": [], "unattributed_to": None}
    # verified before and after COMMIT
    assert data["postchecks"]["results"] and data["postchecks_after_commit"]["results"]
    assert data["constraints_after_commit"]["passed"]
    assert data["baseline"]["differences_after_commit"] == []
    # the backup: read back, hashed, copied
    backup = Path(data["backup"]["path"])
    assert backup.is_file() and data["backup"]["verification"]["ok"]
    assert (tmp_path / "second" / backup.name).is_file()
    assert data["backup"]["copies"][0]["verified"] is True
    assert "DROP SCHEMA IF EXISTS mandate CASCADE" in data["restore_command"]
    # restored into a scratch database, compared with the baseline, dropped again
    assert data["restore_test"]["passed"] is True, data["restore_test"]
    with psycopg.connect(legacy) as conn:
        assert (
            scalar(conn, "SELECT count(*) FROM pg_database WHERE datname = %s", (data["restore_test"]["database"],))
            == 0
        )
    assert data["evidence"]["backup.restore_test"]["status"] == "pass"
    # the smoke tests ran against Mandate's own API, in process, on the migrated database
    assert data["smoke"]["in_process"] and data["smoke"]["passed"], data["smoke"]
    assert {t["key"] for t in data["smoke"]["tests"]} == {"health", "decisions", "verdicts", "domain"}
    assert data["analyze"]["tables"]
    # the report names the estimate next to the actual times
    text = outcome.report_markdown.read_text() if outcome.report_markdown else ""
    assert "## Estimate and actual" in text and "SUCCEEDED" in text
    # a second run is a no-op that says so, and writes nothing
    again = book(legacy, tmp_path / "again").run()
    assert again.status == "already_applied" and "already applied" in again.message
    assert not (tmp_path / "again").exists()


# -- the gate: each kind of mess stops the run before anything changes -------------------------------------------------

# (mess, the check that fails, the remedy its message must name, a query for the rows it must name)
GATED = [
    (
        "add_unattributed_rows",
        "PRE-15",
        "--unattributed-to",
        "SELECT decision_id::text FROM mandate.decision_events WHERE domain_id IS NULL",
    ),
    ("add_non_slug_domains", "PRE-11", "--domain-slug", "SELECT 'Customer Support'"),
    ("add_colliding_domain_names", "PRE-12", "--domain-slug", "SELECT 'customer-support'"),
    ("add_colliding_scopes", "PRE-26", "--scope-id-map", "SELECT 'payments.production.billing-api.invoice-bot'"),
    (
        "add_orphaned_domain_refs",
        "PRE-14",
        "restore the missing domains",
        "SELECT e.decision_id::text FROM mandate.decision_events e "
        "WHERE NOT EXISTS (SELECT 1 FROM mandate.domains d WHERE d.domain_id = e.domain_id)",
    ),
    (
        "add_verdicts_missing_scope",
        "PRE-21",
        "restore the scopes",
        "SELECT v.verdict_id::text FROM mandate.verdict_events v "
        "WHERE v.scope_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM mandate.scopes s WHERE s.scope_id = v.scope_id)",
    ),
    (
        "add_verdicts_missing_decision",
        "PRE-20",
        "restore the decisions",
        "SELECT v.verdict_id::text FROM mandate.verdict_events v "
        "WHERE NOT EXISTS (SELECT 1 FROM mandate.decision_events e WHERE e.decision_id = v.decision_id)",
    ),
]


@pytest.mark.parametrize(("mess", "check", "remedy", "rows"), GATED, ids=[g[0] for g in GATED])
def test_the_gate_stops_before_anything_changes_naming_rows_and_remedy(
    fresh_db: Callable[..., str], tmp_path: Path, mess: str, check: str, remedy: str, rows: str
) -> None:
    url = make_legacy(fresh_db, mess)
    with psycopg.connect(url) as conn:
        expected = [r[0] for r in conn.execute(rows)]
    assert expected
    before = snapshot(url)
    outcome = book(url, tmp_path).run()
    assert outcome.status == "refused"
    failure = outcome.data["failure"]
    assert failure["step"] == "pre-migration checks"
    assert check in failure["message"] and remedy in failure["message"], failure["message"]
    failed = {r["check_id"]: r for r in outcome.data["prechecks"]["results"] if r["status"] == "FAIL"}
    assert check in failed
    assert failed[check]["offending_count"] >= 1
    assert any(e in sample for e in expected for sample in failed[check]["sample"]), (expected, failed[check])
    assert any(e in failure["message"] for e in expected), "the message names the offending rows"
    assert failure["database_changed"] is False
    assert snapshot(url) == before
    assert not list((tmp_path / "backups").rglob("*.dump")), "no backup is taken when the gate fails"
    assert "migration" not in {s["name"] for s in outcome.data["steps"]}
    assert outcome.report_markdown is not None and check in outcome.report_markdown.read_text()


def test_warnings_do_not_gate_and_are_reported(fresh_db: Callable[..., str], tmp_path: Path) -> None:
    url = make_legacy(fresh_db, "add_scopes_without_owner", "add_scope_domain_mismatch")
    outcome = book(url, tmp_path).run()
    assert outcome.status == "succeeded", outcome.message
    warned = {r["check_id"] for r in outcome.data["prechecks"]["results"] if r["status"] == "WARN"}
    assert {"PRE-28", "PRE-29"} <= warned
    assert any("Scopes without an owning team" in w for w in outcome.data["warnings"])
    assert outcome.data["evidence"]["prechecks.warnings"]["text"].count("PRE-2") >= 2


# -- every remedy: the run completes, and the choice is recorded ---------------------------------------------------------


def _scope_map(url: str, path: Path, fmt: str) -> Path:
    with psycopg.connect(url) as conn:
        colliding = [
            str(r[0]) for r in conn.execute("SELECT scope_id FROM mandate.scopes WHERE service ILIKE 'billing%api'")
        ]
    if fmt == "csv":
        path.write_text(
            "legacy_scope_uuid,scope_id\n" + "".join(f"{u},payments.billing-api-{n}\n" for n, u in enumerate(colliding))
        )
    else:
        path.write_text("".join(f"{u}: payments.billing-api-{n}\n" for n, u in enumerate(colliding)))
    return path


@pytest.mark.parametrize("case", ["unattributed", "non_slug", "colliding_names", "colliding_scopes_csv"])
def test_each_remedy_lets_the_run_complete_and_is_recorded(
    fresh_db: Callable[..., str], tmp_path: Path, case: str
) -> None:
    org = str(legacy_data.EXAMPLE_ORG_ID)
    if case == "unattributed":
        url = make_legacy(fresh_db, "add_unattributed_rows")
        remedies = Remedies.from_options(unattributed_to=f"{org}/unattributed")
    elif case == "non_slug":
        url = make_legacy(fresh_db, "add_non_slug_domains")
        slugs = tmp_path / "slugs.yaml"
        slugs.write_text("Finance: finance\n")
        remedies = Remedies.from_options(["Customer Support=customer-support"], slugs)
    elif case == "colliding_names":
        url = make_legacy(fresh_db, "add_colliding_domain_names")
        remedies = Remedies.from_options(["Customer Support=customer-support-legacy"])
    else:
        url = make_legacy(fresh_db, "add_colliding_scopes")
        fmt = case.rsplit("_", 1)[1]
        remedies = Remedies.from_options(scope_id_map=_scope_map(url, tmp_path / f"map.{fmt}", fmt))
    before = snapshot(url)[1]
    outcome = book(url, tmp_path, remedies=remedies).run()
    assert outcome.status == "succeeded", outcome.message
    log = migration_log_8(url)
    assert log is not None
    recorded = log["details"]["remedies"]
    assert outcome.data["remedies"] == recorded
    text = outcome.report_markdown.read_text() if outcome.report_markdown else ""
    with psycopg.connect(url) as conn:
        if case == "unattributed":
            assert recorded["unattributed_to"] == {"organization_id": org, "domain": "unattributed"}
            assert scalar(conn, "SELECT count(*) FROM mandate.decision_events WHERE domain = 'unattributed'") == 3
            assert "unattributed history →" in text
        elif case == "non_slug":
            assert {r["slug"] for r in recorded["domain_slugs"]} == {"customer-support", "finance"}
            assert "'Customer Support'→customer-support" in text
        elif case == "colliding_names":
            assert [r["slug"] for r in recorded["domain_slugs"]] == ["customer-support-legacy"]
            domains = {r[0] for r in conn.execute("SELECT domain FROM mandate.domains")}
            assert {"customer-support", "customer-support-legacy"} <= domains
        else:
            assert len(recorded["scope_ids"]) == 2
            ids = {
                r[0]
                for r in conn.execute(
                    "SELECT scope_id FROM mandate.scopes WHERE scope_id LIKE 'payments.billing-api-%'"
                )
            }
            assert ids == {"payments.billing-api-0", "payments.billing-api-1"}
            assert "2 scope id(s) from the map" in text
        with conn.transaction(force_rollback=True):
            after = baseline.capture(conn)
    assert baseline.compare(before, after) == []


def test_a_remedy_naming_an_unknown_organization_is_refused_before_anything(legacy: str, tmp_path: Path) -> None:
    remedies = Remedies.from_options(unattributed_to=f"{uuid.uuid4()}/unattributed")
    with pytest.raises(ConfigError, match="does not exist in this database"):
        book(legacy, tmp_path, remedies=remedies).run()
    assert not (tmp_path / "backups").exists()


# -- verification failing before COMMIT rolls everything back ----------------------------------------------------------


def test_a_failed_verification_before_commit_rolls_everything_back(
    fresh_db: Callable[..., str], tmp_path: Path
) -> None:
    # A database our own 001-007 made (it has a migration_log), where someone once disabled the append-only trigger
    # of organizations and forgot it. Nothing before the migration looks at triggers; 008 keeps that table (it only
    # rebuilds the seven others); the post-verification refuses it (POST-10) — before COMMIT.
    url = fresh_db(7)
    with psycopg.connect(url, autocommit=True) as conn:
        legacy_data.insert_sample_governance(conn)
        legacy_data.generate_events(conn, decisions=100, organizations=1, domains_per_org=1, scopes_per_domain=3)
        conn.execute("ALTER TABLE mandate.organizations DISABLE TRIGGER prevent_organizations_mutation")
    before = snapshot(url)
    outcome = book(url, tmp_path).run()
    assert outcome.status == "failed", outcome.message
    failure = outcome.data["failure"]
    assert failure["step"] == "post-verification"
    assert "POST-10" in failure["message"] and "rolled back" in failure["message"]
    assert "prevent_organizations_mutation (DISABLED)" in failure["message"]
    assert failure["database_changed"] is False
    assert any("no restore is needed" in n for n in failure["next"])
    assert snapshot(url) == before
    assert migration_log_8(url) is None
    assert outcome.data["evidence"]["services.not_restarted_on_failure"]["status"] == "pass"
    assert outcome.data["evidence"]["post.triggers"]["status"] == "fail"


# -- pre-flight refusals -----------------------------------------------------------------------------------------------


@pytest.fixture
def other_session(legacy: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(legacy, autocommit=True, application_name="billing-service") as conn:
        yield conn


def test_other_sessions_refuse_the_run_unless_allowed(
    legacy: str, tmp_path: Path, other_session: psycopg.Connection[Any]
) -> None:
    before = snapshot(legacy)
    refused = book(legacy, tmp_path / "one").run()
    assert refused.status == "refused"
    assert refused.data["failure"]["step"] == "pre-flight"
    message = refused.data["failure"]["message"]
    assert f"pid {other_session.info.backend_pid}" in message and "'billing-service'" in message
    assert "--allow-connections" in message
    assert snapshot(legacy) == before
    allowed = book(legacy, tmp_path / "two", allow_connections=True).run()
    assert allowed.status == "succeeded", allowed.message
    assert any("other sessions" in w for w in allowed.data["warnings"])
    assert allowed.data["evidence"]["preflight.connections"]["status"] == "fail"


def test_an_idle_in_transaction_session_holding_a_lock_is_retried_then_refused(
    legacy: str, tmp_path: Path, other_session: psycopg.Connection[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(transaction, "RETRY_BACKOFF_S", 0.05)
    before = snapshot(legacy)
    with other_session.transaction():
        other_session.execute("SELECT count(*) FROM mandate.decision_events")  # holds ACCESS SHARE until the end
        outcome = book(legacy, tmp_path, allow_connections=True, lock_timeout="200ms", lock_retries=2).run()
    assert outcome.status == "failed"
    assert f"pid {other_session.info.backend_pid}" in outcome.data["failure"]["message"]
    assert "could not be locked" in outcome.data["failure"]["message"]
    assert [a["attempt"] for a in outcome.data["migration"]["lock_attempts"]] == [1, 2]
    idle = next(i for i in outcome.data["preflight"]["items"] if i["key"] == "connections")
    assert "idle in transaction" in idle["measured"]
    assert snapshot(legacy) == before


def test_a_lock_released_during_the_backoff_lets_the_next_attempt_through(
    legacy: str, tmp_path: Path, other_session: psycopg.Connection[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(transaction, "RETRY_BACKOFF_S", 0.5)
    other_session.execute("BEGIN")
    other_session.execute("SELECT count(*) FROM mandate.verdict_events")
    b = book(legacy, tmp_path, allow_connections=True, lock_timeout="100ms", lock_retries=3)

    def release_after_first_attempt() -> None:
        # The condition: the first lock attempt has failed (recorded), then the session ends its transaction.
        for _ in range(2000):
            if b.data.get("migration", {}).get("lock_attempts"):
                break
            threading.Event().wait(0.005)
        other_session.execute("ROLLBACK")

    releaser = threading.Thread(target=release_after_first_attempt)
    releaser.start()
    outcome = b.run()
    releaser.join(timeout=30)
    assert outcome.status == "succeeded", outcome.message
    assert [a["attempt"] for a in outcome.data["migration"]["lock_attempts"]] == [1]


def test_another_runner_holding_the_migration_lock_refuses_the_run(legacy: str, tmp_path: Path) -> None:
    with (
        psycopg.connect(legacy, autocommit=True, application_name="mandate migrate up") as holder,
        runner.MigrationLock(holder, wait_s=1),
    ):
        outcome = book(legacy, tmp_path, allow_connections=True).run()
    assert outcome.status == "refused"
    assert "migration lock" in outcome.data["failure"]["message"]
    assert "'mandate migrate up'" in outcome.data["failure"]["message"]


def test_a_view_on_a_table_008_replaces_is_named_before_anything_changes(legacy: str, tmp_path: Path) -> None:
    with psycopg.connect(legacy, autocommit=True) as conn:
        conn.execute(
            "CREATE VIEW public.finance_dashboard AS SELECT decision_id, domain_id FROM mandate.decision_events"
        )
    before = snapshot(legacy)
    outcome = book(legacy, tmp_path).run()
    assert outcome.status == "refused"
    assert "view public.finance_dashboard" in outcome.data["failure"]["message"]
    assert snapshot(legacy) == before


def test_an_unwritable_backup_dir_is_refused_before_anything(legacy: str, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(ConfigError, match=r"--backup-dir: .*is not a folder"):
        book(legacy, tmp_path, backup_dir=blocker / "backups").run()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


def test_without_a_terminal_a_real_run_needs_yes(legacy: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="pass --yes"):
        book(legacy, tmp_path, yes=False).run()


def test_a_declined_confirmation_changes_nothing(legacy: str, tmp_path: Path) -> None:
    before = snapshot(legacy)
    b = book(legacy, tmp_path, yes=False)
    questions: list[str] = []

    def decline(question: str) -> bool:
        questions.append(question)
        return False

    b.confirm = decline
    outcome = b.run()
    assert outcome.status == "refused" and "declined" in outcome.data["failure"]["message"]
    assert len(questions) == 1 and "backup" in questions[0]
    assert snapshot(legacy)[1] == before[1]


def test_an_empty_database_is_refused(fresh_db: Callable[..., str], tmp_path: Path) -> None:
    with pytest.raises(CheckFailed, match="the database is empty"):
        book(fresh_db(empty=True), tmp_path).run()


# -- the operator's service commands -----------------------------------------------------------------------------------


def test_stop_command_runs_first_and_the_run_waits_for_the_sessions_to_go(legacy: str, tmp_path: Path) -> None:
    # The "service": a session that ends when its flag file disappears (the stop command removes it).
    flag = tmp_path / "service-running"
    flag.write_text("")
    holder = psycopg.connect(legacy, autocommit=True, application_name="mandate-api")

    def service() -> None:
        while flag.exists():
            holder.execute("SELECT pg_sleep(0.05)")
        holder.close()

    thread = threading.Thread(target=service)
    thread.start()
    try:
        outcome = book(legacy, tmp_path, stop_command=f"rm {flag}", stop_wait_s=30).run()
    finally:
        flag.unlink(missing_ok=True)
        thread.join(timeout=30)
    assert outcome.status == "succeeded", outcome.message
    assert outcome.data["services"]["stop"]["exit_code"] == 0
    assert outcome.data["services"]["sessions_gone_s"] >= 0
    assert outcome.data["evidence"]["services.stopped"]["status"] == "pass"


def test_a_failing_stop_command_refuses_the_run(legacy: str, tmp_path: Path) -> None:
    outcome = book(legacy, tmp_path, stop_command="exit 3").run()
    assert outcome.status == "refused"
    assert "exit status 3" in outcome.data["failure"]["message"]


@pytest.mark.slow
def test_twenty_thousand_decisions_rehearsed_then_migrated(fresh_db: Callable[..., str], tmp_path: Path) -> None:
    url = fresh_db(7)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE mandate.migration_log")
        legacy_data.insert_sample_governance(conn)
        legacy_data.generate_events(conn, decisions=20_000)
    before = snapshot(url)
    dry = book(url, tmp_path, dry_run=True).run()
    assert dry.status == "rehearsed", dry.message
    assert snapshot(url) == before
    real = book(url, tmp_path).run()
    assert real.status == "succeeded", real.message
    assert real.data["baseline"]["before"]["decision_events"]["rows"] == 20_000 + 0
    # The real run's estimate came from the rehearsal, and the report shows it next to the actual time.
    assert real.data["estimate"]["basis"].startswith("rehearsal: the dry run of")
    rehearsal, actual = dry.data["migration"]["duration_s"], real.data["migration"]["duration_s"]
    print(
        f"\n20k decisions: dry run {rehearsal:.2f} s, real {actual:.2f} s (migration transaction); "
        f"whole runs {dry.data['duration_s']:.1f} s / {real.data['duration_s']:.1f} s"
    )


def test_too_little_free_space_refuses_naming_what_is_needed(legacy: str, tmp_path: Path) -> None:
    huge = 10**18  # no disk has 1.5 EB free: the rule, measured against the real free space
    pf = preflight.Preflight(
        db_bytes=huge, tables={"decision_events": {"rows": 0, "heap": 0, "indexes": 0, "total": huge}}
    )
    with psycopg.connect(legacy, autocommit=True) as conn:
        preflight._space(pf, conn, tmp_path, True)
    disk = pf.get("disk_space")
    assert disk is not None and disk.status == "FAIL"
    assert "need" in disk.measured and "150 % of" in disk.measured
    rewrite = pf.get("tablespace_space")
    assert rewrite is not None and rewrite.status in ("FAIL", "INFO")  # INFO when the server's disk is not visible
    assert "until COMMIT" in rewrite.measured
