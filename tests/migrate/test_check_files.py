"""The operator's plain SQL check files for migration 008, run with psql exactly as the checklist writes them.

`psql -d mandate < migrations/008_PRE_MIGRATION_CHECKS.sql` must gate the migration: exit non-zero, naming the
check and the offending rows, exactly when migration 008 itself would refuse the database (each messy-data case
below is also migrated, to prove it), and pass once the operator's remedy rows are in place.
`008_POST_MIGRATION_VERIFICATION.sql` must pass on a migrated database and fail, cleanly and by name, on one that
is not migrated or was broken afterwards. Neither file may change the database, and the runbook's way of running
them (the text before the `-- @@gate@@` marker, through psycopg) must give the same statuses as psql printed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from mandate.errors import MigrationError
from mandate.migrate import catalog
from mandate.migrate.runner import Runner
from tests import legacy_data
from tests.helpers import MIGRATIONS, psql

PRE = MIGRATIONS / "008_PRE_MIGRATION_CHECKS.sql"
POST = MIGRATIONS / "008_POST_MIGRATION_VERIFICATION.sql"
GATE = "-- @@gate@@"
RESULTS_TABLE = (
    "CREATE TEMP TABLE m008_check_results (check_id text, section text, title text, status text CHECK (status IN "
    "('PASS','FAIL','WARN','INFO')), measured text, offending_count bigint, sample text[], remedy text) ON COMMIT DROP;"
)
_ROW = re.compile(r"^\|\s*((?:PRE|POST)-\d+)\s*\|\s*(PASS|FAIL|WARN|INFO)\s*\|", re.MULTILINE)
_INSERTED_ID = re.compile(r"^INSERT INTO m008_check_results\s+SELECT '((?:PRE|POST)-\d+)'", re.MULTILINE)

# The operator-remedy tables, as migration 008 creates them when absent.
REMEDY_TABLES = """
CREATE TABLE IF NOT EXISTS mandate.migration_008_domain_slugs (organization_id uuid, name text NOT NULL, slug text NOT NULL);
CREATE TABLE IF NOT EXISTS mandate.migration_008_scope_ids (legacy_scope_uuid uuid PRIMARY KEY, scope_id text NOT NULL);
CREATE TABLE IF NOT EXISTS mandate.migration_008_unattributed (organization_id uuid NOT NULL, domain text NOT NULL);
"""


# ---------------------------------------------------------------------------------------------------------------
# Running the files
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Report:
    """What one psql run of a check file printed, and how it ended."""

    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    @property
    def statuses(self) -> dict[str, str]:
        return dict(_ROW.findall(self.stdout))

    def with_status(self, status: str) -> set[str]:
        return {check for check, s in self.statuses.items() if s == status}

    def row(self, check_id: str) -> str:
        """The text psql printed for one check (title, measured, rows, remedy), its wrapped lines joined again."""
        lines = self.stdout.splitlines()
        start = next(i for i, line in enumerate(lines) if re.match(rf"^\|\s*{check_id}\s*\|", line))
        end = start + 1
        while end < len(lines) and re.match(r"^\|\s+\|", lines[end]):
            end += 1
        cells = [
            line.split("|", 4)[4].rstrip().removesuffix("|").rstrip().removesuffix("+").strip()
            for line in lines[start:end]
        ]
        return " ".join(cells)


def run_file(url: str, path: Path, *, as_file: bool = False) -> Report:
    """Run a check file with psql: `psql -d DB < FILE` (the checklist's form) or `psql -v ON_ERROR_STOP=1 -f`."""
    if as_file:
        result = psql(url, "-v", "ON_ERROR_STOP=1", "-f", str(path))
    else:
        result = psql(url, stdin=path.read_text(encoding="utf-8"))
    report = Report(result.returncode, result.stdout, result.stderr)
    # Whatever happened, the only error is the gate's own: never an SQL error from a check.
    errors = [line for line in report.stderr.splitlines() if "ERROR:" in line or "FATAL:" in line]
    if report.returncode == 0:
        assert errors == [], report.stderr
    else:
        assert report.returncode == 3, report.output
        gate = r"^(psql:[^ ]+: )?ERROR:  migration 008 (pre-checks|post-verification) FAILED: "
        assert len(errors) == 1 and re.match(gate, errors[0]), report.output
    assert "does not exist" not in report.output
    return report


def runbook_text(path: Path) -> str:
    """What the runbook executes: the file before the gate marker, after the first `BEGIN;` line (the runbook
    supplies the transaction), without psql meta-commands."""
    text = path.read_text(encoding="utf-8").split(GATE + "\n")[0]
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "BEGIN;")
    return "\n".join("" if line.lstrip().startswith("\\") else line for line in lines[start + 1 :]) + "\n"


def runbook_statuses(url: str, path: Path) -> dict[str, str]:
    """Run the file the runbook's way (psycopg, one transaction, rolled back) and read m008_check_results."""
    with psycopg.connect(url) as conn:
        conn.execute(runbook_text(path))
        rows = conn.execute("SELECT check_id, status FROM m008_check_results ORDER BY check_id").fetchall()
        conn.rollback()
    return {check: status for check, status in rows}


def snapshot(url: str) -> tuple[dict[str, Any], dict[str, int], list[Any]]:
    """The schema description, the row count of every table and the database-level settings."""
    with psycopg.connect(url) as conn:
        schema = catalog.describe(conn)
        counts: dict[str, int] = {}
        for table in schema["tables"]:
            row = conn.execute(sql.SQL("SELECT count(*) FROM mandate.{}").format(sql.Identifier(table))).fetchone()
            assert row is not None
            counts[table] = row[0]
        settings = conn.execute(
            "SELECT setconfig FROM pg_db_role_setting WHERE setdatabase = "
            "(SELECT oid FROM pg_database WHERE datname = current_database()) ORDER BY setrole"
        ).fetchall()
    return schema, counts, settings


def file_check_ids(path: Path) -> list[str]:
    return _INSERTED_ID.findall(path.read_text(encoding="utf-8"))


# ---------------------------------------------------------------------------------------------------------------
# Databases
# ---------------------------------------------------------------------------------------------------------------


def legacy_with_data(fresh_db: Callable[..., str], *extra: Callable[[psycopg.Connection[Any]], Any]) -> str:
    """A legacy (007) database with the original sample governance, generated volume and `extra` messy data."""
    url = fresh_db(7)
    with psycopg.connect(url) as conn:
        legacy_data.insert_sample_governance(conn)
        legacy_data.generate_events(conn, decisions=120, organizations=2, domains_per_org=2, scopes_per_domain=6)
        for add in extra:
            add(conn)
    return url


def execute(url: str, *statements: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)


def migrate(url: str, to: int | None = None) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        Runner(conn).up(to=to)


@pytest.fixture
def legacy_url(fresh_db: Callable[..., str]) -> str:
    return legacy_with_data(fresh_db)


@pytest.fixture
def migrated_url(fresh_db: Callable[..., str]) -> str:
    """Legacy data, then every migration (008 and later) applied by the runner."""
    url = legacy_with_data(fresh_db)
    migrate(url)
    return url


# ---------------------------------------------------------------------------------------------------------------
# The shape of the files (the runbook relies on it)
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [PRE, POST], ids=["pre", "post"])
def test_file_has_the_shape_the_runbook_expects(path: Path) -> None:
    lines = path.read_text(encoding="utf-8").splitlines()
    begin = lines.index("BEGIN;")
    preamble = [line for line in lines[:begin] if line.strip() and not line.startswith("--")]
    assert preamble[0] == r"\set ON_ERROR_STOP on"
    assert all(line.startswith(("\\set ", "\\pset ")) for line in preamble)
    assert lines[begin + 1] == RESULTS_TABLE
    assert lines.count(GATE) == 1
    after_gate = "\n".join(lines[lines.index(GATE) + 1 :])
    assert after_gate.startswith("DO $$") and "RAISE EXCEPTION" in after_gate
    assert lines[-1] == "ROLLBACK;"
    body = "\n".join(lines[begin + 1 : lines.index(GATE)])
    assert not any(line.lstrip().startswith("\\") for line in body.splitlines())
    assert re.search(r"^\s*(COMMIT|ROLLBACK)\s*;", body, re.MULTILINE | re.IGNORECASE) is None
    assert body.rstrip().endswith("\nFROM m008_check_results r\nORDER BY r.check_id;")  # the report comes last
    ids = file_check_ids(path)
    assert len(ids) == len(set(ids)) == body.count("INSERT INTO m008_check_results")
    assert ids == sorted(ids)


# ---------------------------------------------------------------------------------------------------------------
# Pre-migration checks
# ---------------------------------------------------------------------------------------------------------------


def test_pre_checks_pass_on_clean_legacy_data(legacy_url: str) -> None:
    report = run_file(legacy_url, PRE)
    assert report.returncode == 0, report.output
    assert set(report.statuses) == set(file_check_ids(PRE))
    assert report.with_status("FAIL") == set()
    assert report.with_status("WARN") == set()
    assert report.with_status("INFO") == {"PRE-01", "PRE-02", "PRE-03", "PRE-07"}
    assert "migration 008 pre-checks passed" in report.stderr
    assert "organizations 3, domains 5, scopes 28" in report.row("PRE-03")


def test_pre_checks_pass_on_a_legacy_database_without_migration_log(legacy_url: str) -> None:
    execute(legacy_url, "DROP TABLE mandate.migration_log")
    report = run_file(legacy_url, PRE, as_file=True)
    assert report.returncode == 0, report.output
    assert "migration_log: absent" in report.row("PRE-06")


def test_pre_checks_on_an_already_migrated_database_say_so(migrated_url: str) -> None:
    report = run_file(migrated_url, PRE)
    assert report.returncode == 3
    assert report.with_status("FAIL") == {"PRE-06"}
    assert "already migrated" in report.row("PRE-06")
    assert set(report.statuses) == {"PRE-01", "PRE-02", "PRE-03", "PRE-04", "PRE-05", "PRE-06"}


def test_pre_checks_on_a_database_without_mandate_say_so(fresh_db: Callable[..., str]) -> None:
    report = run_file(fresh_db(empty=True), PRE)
    assert report.returncode == 3
    assert report.with_status("FAIL") == {"PRE-06"}
    assert "there is no schema mandate" in report.row("PRE-06")


def test_other_sessions_are_a_warning_not_a_failure(legacy_url: str) -> None:
    with psycopg.connect(legacy_url, application_name="billing-worker") as other:
        other.execute("SELECT 1")  # now idle in transaction
        report = run_file(legacy_url, PRE)
    assert report.returncode == 0, report.output
    assert report.with_status("WARN") == {"PRE-04", "PRE-05"}
    assert "application billing-worker" in report.row("PRE-04")
    assert "application billing-worker, idle in transaction" in report.row("PRE-05")


def _one_scope_of(service: str) -> str:
    return f"SELECT scope_id FROM mandate.scopes WHERE service = '{service}'"


@dataclass(frozen=True)
class Messy:
    """One kind of messy legacy data: the checks it must fail, a row the report must show, and the remedy."""

    add: Callable[[psycopg.Connection[Any]], Any]
    failing: frozenset[str]
    shown: str
    remedy: tuple[str, ...] = ()


def _add_scope_with_duplicate_selectors(conn: psycopg.Connection[Any]) -> None:
    # The legacy unique index includes the free-text scope_domain, the new one (organization, domain) instead.
    conn.execute(
        "INSERT INTO mandate.scopes (scope_id, scope_domain, service, agent, scope_system, environment, "
        "organization_id, domain_id, owning_team) "
        "SELECT '00000000-0000-4000-8000-00000000d0b1', 'Config Management', service, agent, scope_system, "
        "environment, organization_id, domain_id, 'dba-team' FROM mandate.scopes WHERE scope_id = %s",
        (legacy_data.DB_ADMIN_SCOPE_ID,),
    )


def _add_verdict_missing_snapshot(conn: psycopg.Connection[Any]) -> None:
    with conn.transaction():
        conn.execute("SET LOCAL session_replication_role = replica")
        conn.execute(
            "INSERT INTO mandate.verdict_events (verdict_id, decision_id, snapshot_id, verdict, timestamp, "
            "organization_id, domain_id) SELECT '00000000-0000-4000-8000-0000000005a1', decision_id, "
            "'00000000-0000-4000-8000-0000000005a2', 'OBSERVE', now(), organization_id, domain_id "
            "FROM mandate.decision_events ORDER BY decision_id LIMIT 1"
        )
        conn.execute("SET LOCAL session_replication_role = origin")


def _add_domain_of_missing_organization(conn: psycopg.Connection[Any]) -> None:
    with conn.transaction():
        conn.execute("SET LOCAL session_replication_role = replica")
        conn.execute(
            "INSERT INTO mandate.domains (domain_id, organization_id, name) VALUES "
            "('00000000-0000-4000-8000-0000000000d1', '00000000-0000-4000-8000-0000000000a1', 'ghost')"
        )
        conn.execute("SET LOCAL session_replication_role = origin")


def _add_spec_of_unknown_domain(conn: psycopg.Connection[Any]) -> None:
    conn.execute(
        "INSERT INTO mandate.mandate_specs (spec_id, version, organization_id, domain, intent, stage, "
        "allowed_verdicts, signals, enforcement, status) VALUES ('spec-orphan-v1', '1', %s, 'No Such Domain', "
        "'file.read', 'executed', '{OBSERVE}', '[]', '{}', 'active')",
        (legacy_data.EXAMPLE_ORG_ID,),
    )


def _add_unattributed_decision_of_another_organization(conn: psycopg.Connection[Any]) -> None:
    legacy_data.add_unattributed_rows(conn)
    conn.execute(
        "INSERT INTO mandate.decision_events (decision_id, intent, stage, actor, target, timestamp, organization_id) "
        "SELECT '00000000-0000-4000-8000-0000000000e1', 'config.update', 'executed', 'old-agent', 'x', now(), "
        "organization_id FROM mandate.organizations WHERE organization_id <> %s ORDER BY organization_id LIMIT 1",
        (legacy_data.EXAMPLE_ORG_ID,),
    )


def _add_scopes_whose_selectors_collide_despite_a_scope_id_map(conn: psycopg.Connection[Any]) -> None:
    _add_scope_with_duplicate_selectors(conn)
    conn.execute(REMEDY_TABLES)
    conn.execute(
        "INSERT INTO mandate.migration_008_scope_ids VALUES ('00000000-0000-4000-8000-00000000d0b1', "
        "'config-management.db-admin-duplicate')"
    )


def _add_two_active_specs_that_become_one_domain(conn: psycopg.Connection[Any]) -> None:
    """'Customer Support' is mapped to the slug customer-support: a spec naming the domain by its old name and one
    naming it by the slug then govern the same (organization, domain, intent, stage)."""
    legacy_data.add_non_slug_domains(conn)
    conn.execute(REMEDY_TABLES)
    conn.execute(_SLUG + "(NULL, 'Customer Support', 'customer-support'), (NULL, 'Finance', 'finance')")
    for spec_id, domain in (("spec-ticket-close-v1", "Customer Support"), ("spec-ticket-close-v2", "customer-support")):
        conn.execute(
            "INSERT INTO mandate.mandate_specs (spec_id, version, organization_id, domain, intent, stage, "
            "allowed_verdicts, signals, enforcement, status) SELECT %s, '1', organization_id, %s, 'ticket.close', "
            "'executed', '{OBSERVE}', '[]', '{}', 'active' FROM mandate.domains WHERE name = 'Customer Support'",
            (spec_id, domain),
        )


_SLUG = "INSERT INTO mandate.migration_008_domain_slugs (organization_id, name, slug) VALUES "
_UNATTRIBUTED = (
    f"INSERT INTO mandate.migration_008_unattributed VALUES ('{legacy_data.EXAMPLE_ORG_ID}', 'legacy-history')"
)

MESSY: dict[str, Messy] = {
    "non-slug-domains": Messy(
        legacy_data.add_non_slug_domains,
        frozenset({"PRE-11"}),
        "'Customer Support' (organization",
        (_SLUG + "(NULL, 'Customer Support', 'customer-support'), (NULL, 'Finance', 'finance')",),
    ),
    "colliding-domain-names": Messy(
        legacy_data.add_colliding_domain_names,
        frozenset({"PRE-11", "PRE-12"}),
        "'Customer Support' (no slug yet), 'customer-support' -> customer-support",
        (_SLUG + "(NULL, 'Customer Support', 'customer-support-legacy')",),
    ),
    "unattributed-rows": Messy(
        legacy_data.add_unattributed_rows,
        frozenset({"PRE-15"}),
        "decision_events 3, verdict_events 3, audit_timeline_entries 3",
        (_UNATTRIBUTED,),
    ),
    "orphaned-domain-refs": Messy(
        legacy_data.add_orphaned_domain_refs, frozenset({"PRE-14"}), "scopes 1, decision_events 1"
    ),
    "verdicts-missing-scope": Messy(legacy_data.add_verdicts_missing_scope, frozenset({"PRE-21"}), "-> scope "),
    "verdicts-missing-decision": Messy(
        legacy_data.add_verdicts_missing_decision, frozenset({"PRE-20"}), "-> decision "
    ),
    "colliding-scopes": Messy(
        legacy_data.add_colliding_scopes,
        frozenset({"PRE-26"}),
        "payments.production.billing-api.invoice-bot <- ",
        (
            "INSERT INTO mandate.migration_008_scope_ids SELECT scope_id, 'payments.production.billing-api-v1.invoice-bot' "
            "FROM mandate.scopes WHERE service = 'Billing API'",
        ),
    ),
    "duplicate-selectors": Messy(
        _add_scope_with_duplicate_selectors,
        frozenset({"PRE-26", "PRE-27"}),
        "domain config-management, service 'db-admin-tool', agent 'pause-escalation-agent'",
    ),
    "verdict-missing-snapshot": Messy(
        _add_verdict_missing_snapshot, frozenset({"PRE-23"}), "-> snapshot 00000000-0000-4000-8000-0000000005a2"
    ),
    "domain-of-missing-organization": Messy(
        _add_domain_of_missing_organization,
        frozenset({"PRE-13"}),
        "'ghost' (domain_id 00000000-0000-4000-8000-0000000000d1) -> organization",
    ),
    "duplicate-selectors-despite-scope-id-map": Messy(
        _add_scopes_whose_selectors_collide_despite_a_scope_id_map,
        frozenset({"PRE-27"}),
        "00000000-0000-4000-8000-00000000d0b1, 550e8400-e29b-41d4-a716-446655440101",
    ),
    "active-specs-colliding-after-slugging": Messy(
        _add_two_active_specs_that_become_one_domain,
        frozenset({"PRE-19"}),
        "ticket.close/executed: spec-ticket-close-v1@1, spec-ticket-close-v2@1",
    ),
    "spec-of-unknown-domain": Messy(
        _add_spec_of_unknown_domain, frozenset({"PRE-18"}), "spec-orphan-v1@1 (organization"
    ),
    "unattributed-row-of-another-organization": Messy(
        _add_unattributed_decision_of_another_organization,
        frozenset({"PRE-15"}),
        "decision_events 00000000-0000-4000-8000-0000000000e1 (organization_id",
    ),
}


@pytest.mark.parametrize("case", list(MESSY), ids=list(MESSY))
def test_pre_checks_fail_on_messy_data_exactly_as_migration_008_refuses_it(
    fresh_db: Callable[..., str], case: str
) -> None:
    messy = MESSY[case]
    url = legacy_with_data(fresh_db, messy.add)
    before = snapshot(url)

    report = run_file(url, PRE)
    assert report.returncode == 3
    assert report.with_status("FAIL") == messy.failing
    assert f"FAILED: {', '.join(sorted(messy.failing))}" in report.stderr
    assert any(messy.shown in report.row(check) for check in messy.failing), report.output
    assert runbook_statuses(url, PRE) == report.statuses
    assert snapshot(url) == before

    with pytest.raises(MigrationError, match="failed and was rolled back"):
        migrate(url, to=8)


@pytest.mark.parametrize("case", [c for c in MESSY if MESSY[c].remedy], ids=[c for c in MESSY if MESSY[c].remedy])
def test_pre_checks_pass_with_the_operators_remedy_and_008_then_migrates(
    fresh_db: Callable[..., str], case: str
) -> None:
    messy = MESSY[case]
    url = legacy_with_data(fresh_db, messy.add)
    execute(url, REMEDY_TABLES, *messy.remedy)

    report = run_file(url, PRE)
    assert report.returncode == 0, report.output
    assert report.with_status("FAIL") == set()
    assert "=> none" not in report.row("PRE-07")
    assert runbook_statuses(url, PRE) == report.statuses

    migrate(url, to=8)
    post = run_file(url, POST)
    assert post.returncode == 0, post.output


def test_unattributed_rows_of_an_organization_other_than_the_destination_fail(fresh_db: Callable[..., str]) -> None:
    url = legacy_with_data(fresh_db, _add_unattributed_decision_of_another_organization)
    execute(url, REMEDY_TABLES, _UNATTRIBUTED)
    report = run_file(url, PRE)
    assert report.with_status("FAIL") == {"PRE-16"}
    assert "decision_events 00000000-0000-4000-8000-0000000000e1: organization_id" in report.row("PRE-16")
    with pytest.raises(MigrationError, match="organization_id differs from their domain's organization"):
        migrate(url, to=8)


def test_a_remedy_that_maps_two_names_to_one_slug_fails(fresh_db: Callable[..., str]) -> None:
    url = legacy_with_data(fresh_db, legacy_data.add_colliding_domain_names)
    execute(url, REMEDY_TABLES, _SLUG + "(NULL, 'Customer Support', 'customer-support')")
    report = run_file(url, PRE)
    assert report.with_status("FAIL") == {"PRE-12"}
    with pytest.raises(MigrationError, match="map to the same slug"):
        migrate(url, to=8)


def test_malformed_remedies_fail(fresh_db: Callable[..., str]) -> None:
    url = legacy_with_data(fresh_db, legacy_data.add_non_slug_domains, legacy_data.add_colliding_scopes)
    execute(
        url,
        REMEDY_TABLES,
        _SLUG + "(NULL, 'Customer Support', 'Customer_Support'), (NULL, 'Finance', 'finance')",
        f"INSERT INTO mandate.migration_008_scope_ids SELECT scope_id, 'billing.api' FROM ({_one_scope_of('Billing API')}) s",
        f"INSERT INTO mandate.migration_008_unattributed VALUES ('{legacy_data.EXAMPLE_ORG_ID}', 'Old History'), "
        "('00000000-0000-4000-8000-0000000000a9', 'old')",
    )
    report = run_file(url, PRE)
    assert {"PRE-08", "PRE-25"} <= report.with_status("FAIL")
    assert "'Customer Support' -> 'Customer_Support'" in report.row("PRE-08")
    assert "2 targets" in report.row("PRE-08")
    assert "'billing.api' (domain payments, from the operator map)" in report.row("PRE-25")


def test_unused_remedies_are_a_warning(legacy_url: str) -> None:
    execute(legacy_url, REMEDY_TABLES, _SLUG + "(NULL, 'Finanse', 'finance')", _UNATTRIBUTED)
    report = run_file(legacy_url, PRE)
    assert report.returncode == 0, report.output
    assert report.with_status("WARN") == {"PRE-09"}
    assert "'Finanse' (organization any) names no domain" in report.row("PRE-09")
    assert "no row has a NULL domain_id" in report.row("PRE-09")


@pytest.mark.parametrize(
    ("add", "warned"),
    [
        (legacy_data.add_scopes_without_owner, {"PRE-28"}),
        (legacy_data.add_scope_domain_mismatch, {"PRE-29"}),
        (legacy_data.add_verdicts_without_scope_attribution, {"PRE-30", "PRE-31"}),
    ],
    ids=["scopes-without-owner", "scope-domain-mismatch", "verdicts-without-scope-attribution"],
)
def test_what_008_accepts_is_only_a_warning(
    fresh_db: Callable[..., str], add: Callable[[psycopg.Connection[Any]], Any], warned: set[str]
) -> None:
    url = legacy_with_data(fresh_db, add)
    report = run_file(url, PRE)
    assert report.returncode == 0, report.output
    assert report.with_status("WARN") == warned
    assert runbook_statuses(url, PRE) == report.statuses
    migrate(url, to=8)
    assert run_file(url, POST).returncode == 0


def test_a_timeline_scope_uuid_naming_no_scope_fails_the_gate_and_008(fresh_db: Callable[..., str]) -> None:
    """008 could not convert it (the UUID names no scope): the pre-checks and 008 itself refuse it."""
    url = legacy_with_data(fresh_db)
    execute(
        url,
        "INSERT INTO mandate.audit_timeline_entries (decision_id, intent, stage, actor, target, summary, details, "
        "severity, event_source, authority_level, timestamp, organization_id, domain_id) "
        "SELECT decision_id, intent, stage, actor, target, 'note', "
        "'{\"scope_id\": \"00000000-0000-4000-8000-0000000000f1\"}', 'info', 'system', 'system', now(), "
        "organization_id, domain_id FROM mandate.decision_events ORDER BY decision_id LIMIT 1",
    )
    report = run_file(url, PRE)
    assert report.returncode == 3, report.output
    assert report.with_status("FAIL") == {"PRE-32"}
    with pytest.raises(MigrationError, match="scope references that would not start with their row's domain"):
        migrate(url, to=8)


def test_a_verdict_bound_to_a_scope_of_another_domain_fails_the_gate_and_008(
    fresh_db: Callable[..., str],
) -> None:
    url = legacy_with_data(fresh_db)
    execute(
        url,
        "INSERT INTO mandate.verdict_events (verdict_id, decision_id, snapshot_id, verdict, timestamp, "
        "organization_id, domain_id, scope_id, domain) "
        "SELECT '00000000-0000-4000-8000-0000000000c1', d.decision_id, v.snapshot_id, 'OBSERVE', now(), "
        "d.organization_id, d.domain_id, s.scope_id, v.domain "
        "FROM mandate.decision_events d JOIN mandate.verdict_events v USING (decision_id) "
        "JOIN mandate.scopes s ON s.domain_id <> d.domain_id "
        "ORDER BY d.decision_id, s.scope_id LIMIT 1",
    )
    report = run_file(url, PRE)
    assert report.returncode == 3, report.output
    assert report.with_status("FAIL") == {"PRE-33"}
    assert "verdict 00000000-0000-4000-8000-0000000000c1" in report.row("PRE-33")
    with pytest.raises(MigrationError, match="verdict 00000000-0000-4000-8000-0000000000c1"):
        migrate(url, to=8)


# ---------------------------------------------------------------------------------------------------------------
# Post-migration verification
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("to", [8, None], ids=["at-008", "at-head"])
def test_post_verification_passes_on_a_migrated_database(fresh_db: Callable[..., str], to: int | None) -> None:
    url = legacy_with_data(fresh_db)
    migrate(url, to=to)
    report = run_file(url, POST)
    assert report.returncode == 0, report.output
    assert set(report.statuses) == set(file_check_ids(POST))
    assert report.with_status("FAIL") == report.with_status("WARN") == set()
    assert report.with_status("INFO") == {"POST-12"}
    assert "refused: GOVERNANCE VIOLATION" in report.row("POST-19")
    assert "domains_domain_slug" in report.row("POST-20")
    assert "scopes_organization_domain_fkey" in report.row("POST-21")
    assert "migration 008 post-verification passed" in report.stderr
    assert runbook_statuses(url, POST) == report.statuses


def test_post_verification_fails_cleanly_on_a_database_not_migrated(legacy_url: str) -> None:
    report = run_file(legacy_url, POST)
    assert report.returncode == 3
    failed = report.with_status("FAIL")
    assert {"POST-01", "POST-02", "POST-04", "POST-05", "POST-13", "POST-19", "POST-22"} <= failed
    assert "not verifiable, the schema is not migrated" in report.row("POST-13")
    assert "domains.domain_id (uuid)" in report.row("POST-01")
    assert runbook_statuses(legacy_url, POST) == report.statuses


@pytest.mark.parametrize(
    ("breakage", "failing", "shown"),
    [
        (
            ["ALTER TABLE mandate.verdict_events DISABLE TRIGGER prevent_verdict_events_mutation"],
            {"POST-10"},
            "prevent_verdict_events_mutation (DISABLED)",
        ),
        (["DROP INDEX mandate.idx_audit_timeline_org_domain"], {"POST-07"}, "audit_timeline_entries (organization_id"),
        (
            ["ALTER TABLE mandate.scopes DISABLE TRIGGER enforce_scope_domain_prefix"],
            {"POST-08", "POST-19"},
            "enforce_scope_domain_prefix: BEFORE INSERT, DISABLED",
        ),
        (
            ["ALTER TABLE mandate.verdict_events DROP CONSTRAINT verdict_events_domain_slug"],
            {"POST-09"},
            "verdict_events: none",
        ),
        (
            ["ALTER TABLE mandate.domains DROP CONSTRAINT domains_domain_slug"],
            {"POST-09", "POST-20"},
            "domains: none",
        ),
        (
            [
                "ALTER TABLE mandate.scopes DROP CONSTRAINT scopes_organization_domain_fkey",
                "ALTER TABLE mandate.scopes ADD CONSTRAINT scopes_organization_domain_fkey FOREIGN KEY "
                "(organization_id, domain) REFERENCES mandate.domains (organization_id, domain) NOT VALID",
            ],
            {"POST-06", "POST-16"},
            "scopes_organization_domain_fkey (NOT VALID)",
        ),
        (
            ["ALTER TABLE mandate.scopes DROP CONSTRAINT scopes_organization_domain_fkey"],
            {"POST-06", "POST-21"},
            "scopes: none",
        ),
        (
            [
                "INSERT INTO mandate.audit_timeline_entries (decision_id, intent, stage, actor, target, summary, "
                "details, severity, event_source, authority_level, timestamp, organization_id, domain) "
                "SELECT decision_id, intent, stage, actor, target, 'note', "
                "'{\"scope_id\": \"config-management.no-such-scope\"}', 'info', 'system', 'system', now(), "
                "organization_id, domain FROM mandate.decision_events ORDER BY decision_id LIMIT 1"
            ],
            {"POST-15"},
            "details.scope_id 'config-management.no-such-scope'",
        ),
        (["ALTER DATABASE {database} RESET search_path"], {"POST-23"}, "no default search_path"),
    ],
    ids=[
        "append-only-trigger-disabled",
        "composite-index-dropped",
        "scope-prefix-trigger-disabled",
        "slug-check-dropped",
        "domains-slug-check-dropped",
        "composite-fk-not-valid",
        "composite-fk-dropped",
        "unknown-scope-in-timeline",
        "search-path-reset",
    ],
)
def test_post_verification_names_what_was_broken(
    migrated_url: str, breakage: list[str], failing: set[str], shown: str
) -> None:
    database = psycopg.conninfo.conninfo_to_dict(migrated_url)["dbname"]
    execute(migrated_url, *(statement.replace("{database}", f'"{database}"') for statement in breakage))
    report = run_file(migrated_url, POST)
    assert report.returncode == 3
    assert report.with_status("FAIL") == failing
    assert f"FAILED: {', '.join(sorted(failing))}" in report.stderr
    assert any(shown in report.row(check) for check in failing), report.output
    assert runbook_statuses(migrated_url, POST) == report.statuses


# ---------------------------------------------------------------------------------------------------------------
# Nothing is ever changed
# ---------------------------------------------------------------------------------------------------------------


@pytest.fixture(params=["legacy-clean", "legacy-messy", "migrated", "not-migrated-post"])
def checked_database(request: pytest.FixtureRequest, fresh_db: Callable[..., str]) -> Iterator[tuple[str, Path]]:
    if request.param == "legacy-clean":
        yield legacy_with_data(fresh_db), PRE
    elif request.param == "legacy-messy":
        url = legacy_with_data(fresh_db, legacy_data.add_unattributed_rows, legacy_data.add_colliding_scopes)
        execute(url, REMEDY_TABLES, _UNATTRIBUTED)
        yield url, PRE
    elif request.param == "migrated":
        url = legacy_with_data(fresh_db)
        migrate(url)
        yield url, POST
    else:
        yield legacy_with_data(fresh_db), POST


def test_the_files_never_change_the_database(checked_database: tuple[str, Path]) -> None:
    url, path = checked_database
    before = snapshot(url)
    run_file(url, path)
    run_file(url, path, as_file=True)
    runbook_statuses(url, path)
    assert snapshot(url) == before
