"""Migration 008 on legacy data: nothing lost, every identity converted, every guarantee re-established."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from mandate.migrate import catalog
from mandate.migrate.runner import Runner
from tests import legacy_data
from tests.helpers import MIGRATIONS, psql, scalar

M008 = MIGRATIONS / "008_rfc002_domain_identity_migration.sql"
TABLES = (
    "organizations",
    "domains",
    "scopes",
    "policy_snapshots",
    "decision_events",
    "verdict_events",
    "audit_timeline_entries",
    "mandate_specs",
)
# Content of each historical table apart from the identity columns 008 converts.
CONTENT = {
    "decision_events": "SELECT md5(string_agg(concat_ws('|', decision_id, intent, stage, actor, target, context, scope, "
    "\"timestamp\", created_at, organization_id, spec_id, spec_version), ',' ORDER BY decision_id)) "
    "FROM mandate.decision_events",
    "verdict_events": "SELECT md5(string_agg(concat_ws('|', verdict_id, decision_id, snapshot_id, verdict, "
    "matched_policy_ids, \"timestamp\", created_at, spec_id, spec_version, owning_team), ',' ORDER BY verdict_id)) "
    "FROM mandate.verdict_events",
    "audit_timeline_entries": "SELECT md5(string_agg(concat_ws('|', entry_id, decision_id, intent, stage, actor, target, "
    "summary, details - 'scope_id', severity, event_source, authority_level, \"timestamp\", created_at, spec_id, "
    "spec_version), ',' ORDER BY entry_id)) FROM mandate.audit_timeline_entries",
    "policy_snapshots": "SELECT md5(string_agg(concat_ws('|', snapshot_id, version, "
    "(SELECT jsonb_agg(p - 'scope_id') FROM jsonb_array_elements(policies) p), created_at), ',' ORDER BY snapshot_id)) "
    "FROM mandate.policy_snapshots",
    "scopes": "SELECT md5(string_agg(concat_ws('|', service, agent, scope_system, environment, tenant, created_at, "
    "owning_team, owner_contact, description), ',' ORDER BY created_at, service, agent)) FROM mandate.scopes",
}


def _counts(conn: psycopg.Connection[Any]) -> dict[str, int]:
    return {t: scalar(conn, f"SELECT count(*) FROM mandate.{t}") for t in TABLES}


def _content(conn: psycopg.Connection[Any]) -> dict[str, str]:
    return {t: scalar(conn, q) for t, q in CONTENT.items()}


@pytest.fixture
def legacy_url(fresh_db: Callable[..., str]) -> str:
    """A real legacy database: schema 007 without migration_log, the original sample data and generated events."""
    url = fresh_db(7)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE mandate.migration_log")
        legacy_data.insert_sample_governance(conn)
        legacy_data.generate_events(conn, decisions=3000, organizations=3, domains_per_org=3, scopes_per_domain=10)
        legacy_data.add_scopes_without_owner(conn)
        legacy_data.add_scope_domain_mismatch(conn)
        legacy_data.add_verdicts_without_scope_attribution(conn)
    return url


@pytest.mark.parametrize("to", [8, None], ids=["at-008", "at-head"])
def test_008_keeps_every_row_and_its_content(legacy_url: str, to: int | None) -> None:
    with psycopg.connect(legacy_url, autocommit=True) as conn:
        counts, content = _counts(conn), _content(conn)
        assert counts["decision_events"] >= 3000
        Runner(conn).up(to=to)
        assert _counts(conn) == counts
        assert _content(conn) == content


def test_008_rewrites_every_scope_reference(legacy_url: str) -> None:
    with psycopg.connect(legacy_url, autocommit=True) as conn:
        before_verdicts = dict(conn.execute("SELECT verdict_id, scope_id::text FROM mandate.verdict_events").fetchall())
        before_details = dict(
            conn.execute(
                "SELECT entry_id, details->>'scope_id' FROM mandate.audit_timeline_entries WHERE details ? 'scope_id'"
            ).fetchall()
        )
        before_policies = conn.execute(
            "SELECT ps.snapshot_id, p->>'id', p->>'scope_id' FROM mandate.policy_snapshots ps, "
            "jsonb_array_elements(ps.policies) p"
        ).fetchall()
        Runner(conn).up()
        mapping = dict(conn.execute("SELECT legacy_scope_uuid::text, scope_id FROM mandate.scopes").fetchall())
        assert len(mapping) == scalar(conn, "SELECT count(*) FROM mandate.scopes")
        after_verdicts = dict(conn.execute("SELECT verdict_id, scope_id FROM mandate.verdict_events").fetchall())
        assert after_verdicts == {v: (mapping[s] if s else None) for v, s in before_verdicts.items()}
        after_details = dict(
            conn.execute(
                "SELECT entry_id, details->>'scope_id' FROM mandate.audit_timeline_entries WHERE details ? 'scope_id'"
            ).fetchall()
        )
        assert before_details and after_details == {e: mapping[s] for e, s in before_details.items()}
        after_policies = conn.execute(
            "SELECT ps.snapshot_id, p->>'id', p->>'scope_id' FROM mandate.policy_snapshots ps, "
            "jsonb_array_elements(ps.policies) p"
        ).fetchall()
        assert sorted(after_policies) == sorted((s, p, mapping[u]) for s, p, u in before_policies)


def test_008_gives_the_original_sample_scopes_readable_ids(legacy_url: str) -> None:
    with psycopg.connect(legacy_url, autocommit=True) as conn:
        Runner(conn).up()
        rows = conn.execute(
            "SELECT legacy_scope_uuid::text, scope_id, owning_team FROM mandate.scopes "
            "WHERE legacy_scope_uuid::text LIKE '550e8400-%' ORDER BY 1"
        ).fetchall()
    assert [(r[0][-3:], r[1], r[2]) for r in rows] == [
        ("002", "config-management.all", "config-team"),
        ("100", "config-management.production.prod.config-writer.pre-commit-agent", "config-team"),
        ("101", "config-management.production.prod.db-admin-tool.pause-escalation-agent", "dba-team"),
        ("102", "config-management.production.prod.audit-logger.observe-agent", "audit-team"),
    ]


def test_after_008_the_schema_holds_every_invariant(legacy_url: str) -> None:
    with psycopg.connect(legacy_url, autocommit=True) as conn:
        Runner(conn).up()
        assert (
            scalar(
                conn,
                "SELECT count(*) FROM information_schema.columns "
                "WHERE table_schema = 'mandate' AND column_name = 'domain_id'",
            )
            == 0
        )
        domain_columns = conn.execute(
            "SELECT table_name, data_type, is_nullable FROM information_schema.columns "
            "WHERE table_schema = 'mandate' AND column_name = 'domain' ORDER BY 1"
        ).fetchall()
        domain_columns = [c for c in domain_columns if c[0] in TABLES]
        assert {t for t, _, _ in domain_columns} == set(TABLES) - {"organizations"}
        assert all(typ == "text" and nullable == "NO" for _, typ, nullable in domain_columns)
        scope_columns = conn.execute(
            "SELECT DISTINCT data_type FROM information_schema.columns "
            "WHERE table_schema = 'mandate' AND column_name = 'scope_id'"
        ).fetchall()
        assert scope_columns == [("text",)]
        for table in ("scopes", "verdict_events"):
            assert (
                scalar(
                    conn,
                    f"SELECT count(*) FROM mandate.{table} "
                    "WHERE scope_id IS NOT NULL AND left(scope_id, length(domain) + 1) <> domain || '.'",
                )
                == 0
            )
        assert scalar(conn, "SELECT count(*) FROM mandate.decision_events WHERE organization_id IS NULL") == 0
        # The database's default search_path lets operators write plain table names.
        with psycopg.connect(legacy_url) as fresh:
            assert "mandate" in scalar(fresh, "SHOW search_path")


@pytest.mark.parametrize("table", [*TABLES, "migration_log"])
def test_after_008_every_table_refuses_update_delete_and_truncate(legacy_url: str, table: str) -> None:
    with psycopg.connect(legacy_url, autocommit=True) as conn:
        Runner(conn).up()
        assert scalar(conn, f"SELECT count(*) FROM mandate.{table}") > 0
        column = scalar(
            conn,
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'mandate' AND table_name = %s "
            "AND data_type IN ('text', 'timestamp with time zone') ORDER BY ordinal_position LIMIT 1",
            (table,),
        )
        for statement in (
            f"UPDATE mandate.{table} SET {column} = {column}",
            f"DELETE FROM mandate.{table}",
            f"TRUNCATE mandate.{table} CASCADE",
        ):
            with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
                conn.execute(statement)


def _org_with_finance(conn: psycopg.Connection[Any]) -> str:
    org = scalar(conn, "INSERT INTO mandate.organizations (name) VALUES ('acme') RETURNING organization_id")
    conn.execute("INSERT INTO mandate.domains (organization_id, domain) VALUES (%s, 'finance')", (org,))
    return str(org)


def test_the_checklist_constraint_tests_behave_as_written(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        org = _org_with_finance(conn)
    bad_slug = psql(
        db_url,
        stdin=f"-- This should FAIL\nINSERT INTO domains (organization_id, domain)\nVALUES ('{org}', 'Bad-Domain');\n",
    )
    assert "violates check constraint" in bad_slug.stderr
    wrong_prefix = psql(
        db_url,
        stdin="INSERT INTO scopes (scope_id, domain, organization_id, owning_team)\n"
        f"VALUES ('wrong.prod.system', 'finance', '{org}', 'Team');\n",
    )
    assert "GOVERNANCE VIOLATION" in wrong_prefix.stderr
    valid = psql(
        db_url,
        stdin="INSERT INTO scopes (scope_id, domain, organization_id, owning_team)\n"
        f"VALUES ('finance.prod.system', 'finance', '{org}', 'Team');\n",
    )
    assert valid.returncode == 0 and "INSERT 0 1" in valid.stdout, valid.stderr


def test_a_prefix_that_only_matches_as_a_like_pattern_is_refused(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        org = _org_with_finance(conn)
        conn.execute("INSERT INTO mandate.domains (organization_id, domain) VALUES (%s, 'hr_ops')", (org,))
        with pytest.raises(psycopg.errors.CheckViolation, match="GOVERNANCE VIOLATION"):
            conn.execute(
                "INSERT INTO mandate.scopes (scope_id, domain, organization_id, owning_team) "
                "VALUES ('hrxops.prod', 'hr_ops', %s, 'Team')",
                (org,),
            )


def test_new_scopes_need_an_owning_team(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        org = _org_with_finance(conn)
        with pytest.raises(psycopg.errors.CheckViolation, match="scopes_owning_team_required"):
            conn.execute(
                "INSERT INTO mandate.scopes (scope_id, domain, organization_id) VALUES ('finance.x', 'finance', %s)",
                (org,),
            )


def test_008_through_psql_as_the_checklist_runs_it(legacy_url: str) -> None:
    result = psql(legacy_url, stdin=M008.read_text())
    assert result.returncode == 0, result.stderr
    assert "BEGIN" in result.stdout and "COMMIT" in result.stdout
    assert "phase 10/10" in result.stderr
    with psycopg.connect(legacy_url, autocommit=True) as conn:
        log = conn.execute(
            "SELECT migration_version, baseline, tool_version, checksum FROM mandate.migration_log ORDER BY 1"
        ).fetchall()
        assert log == [(v, True, "psql", None) for v in range(1, 8)] + [(8, False, "psql", None)]
        # The runner sees 008 as applied and never records it twice.
        Runner(conn).up()
        assert scalar(conn, "SELECT count(*) FROM mandate.migration_log WHERE migration_version = 8") == 1
    again = psql(legacy_url, stdin=M008.read_text())
    assert again.returncode == 0
    assert "already applied" in again.stdout
    assert "BEGIN" not in again.stdout


def test_008_through_psql_stops_at_the_first_error_and_changes_nothing(fresh_db: Callable[..., str]) -> None:
    url = fresh_db(7)
    with psycopg.connect(url, autocommit=True) as conn:
        legacy_data.insert_sample_governance(conn)
        legacy_data.add_unattributed_rows(conn)
        before = catalog.describe(conn), _counts(conn)
    result = psql(url, stdin=M008.read_text())  # no -v ON_ERROR_STOP=1: the file turns it on itself
    assert result.returncode != 0
    assert "rows with NULL domain_id (unattributed history)" in result.stderr
    assert "--unattributed-to" in result.stderr
    assert "COMMIT" not in result.stdout
    with psycopg.connect(url) as conn:
        assert (catalog.describe(conn), _counts(conn)) == before


def test_008_applies_operator_remedies_and_records_them(fresh_db: Callable[..., str]) -> None:
    url = fresh_db(7)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE mandate.migration_log")
        legacy_data.insert_sample_governance(conn)
        legacy_data.add_unattributed_rows(conn)
        legacy_data.add_non_slug_domains(conn)
        legacy_data.add_colliding_scopes(conn)
        counts = _counts(conn)
        colliding = [
            r[0] for r in conn.execute("SELECT scope_id FROM mandate.scopes WHERE service ILIKE 'billing%api'")
        ]
        conn.execute(
            "CREATE TABLE mandate.migration_008_domain_slugs (organization_id uuid, name text NOT NULL, slug text NOT NULL);"
            "CREATE TABLE mandate.migration_008_scope_ids (legacy_scope_uuid uuid PRIMARY KEY, scope_id text NOT NULL);"
            "CREATE TABLE mandate.migration_008_unattributed (organization_id uuid NOT NULL, domain text NOT NULL)"
        )
        conn.execute(
            "INSERT INTO mandate.migration_008_domain_slugs (name, slug) "
            "VALUES ('Customer Support', 'customer-support'), ('Finance', 'finance')"
        )
        conn.execute(
            "INSERT INTO mandate.migration_008_unattributed VALUES ('550e8400-e29b-41d4-a716-446655440000', 'unattributed')"
        )
        conn.execute(
            "INSERT INTO mandate.migration_008_scope_ids SELECT s.scope_id, 'payments.billing-api-' || n "
            "FROM unnest(%s::uuid[]) WITH ORDINALITY s(scope_id, n)",
            (colliding,),
        )
    result = psql(url, stdin=M008.read_text())
    assert result.returncode == 0, result.stderr
    with psycopg.connect(url) as conn:
        after = _counts(conn)
        assert after == {**counts, "domains": counts["domains"] + 1}  # + the unattributed target domain
        assert scalar(conn, "SELECT count(*) FROM mandate.decision_events WHERE domain = 'unattributed'") == 3
        assert {r[0] for r in conn.execute("SELECT domain FROM mandate.domains")} >= {"customer-support", "finance"}
        remedies = scalar(conn, "SELECT details->'remedies' FROM mandate.migration_log WHERE migration_version = 8")
        assert remedies["unattributed_to"]["domain"] == "unattributed"
        assert {r["slug"] for r in remedies["domain_slugs"]} == {"customer-support", "finance"}
        assert len(remedies["scope_ids"]) == 2
        assert scalar(conn, "SELECT to_regclass('mandate.migration_008_scope_ids')") is None
