"""A legacy corpus with every shape of LEGACY-SCHEMA.md, taken to head the ways an operator would, then served.

The corpus (legacy_data.build_corpus): the original sample governance, a few thousand generated decisions over three
organizations whose domains share names, the original server's own history (outcome reports for every pre_commit
decision, NULL spec attribution, the placeholder owning team, on-the-fly scopes, spec-less policies), unattributed
rows, non-slug and colliding domain names, unowned scopes and a scope whose free-text domain disagrees. The
acceptance run at 50,000 decisions is `scripts/legacy_corpus_acceptance.py` (docs/operations.md).
"""

from __future__ import annotations

import io
import os
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from rich.console import Console

from mandate.migrate import baseline, files, runbook, runner
from mandate.migrate.files import load
from mandate.migrate.remedies import Remedies
from mandate.migrate_commands import api_app
from tests import legacy_data
from tests.helpers import MIGRATIONS, psql, run_cli, scalar

DECISIONS = 3000
RELEASED_009 = Path(__file__).with_name("released") / "009_control_plane.sql"


def make_corpus(fresh_db: Callable[..., str], decisions: int = DECISIONS) -> str:
    url = fresh_db(7)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE mandate.migration_log")
        with conn.transaction():
            legacy_data.build_corpus(conn, decisions=decisions)
    return url


def corpus_remedies() -> Remedies:
    r = legacy_data.corpus_remedies()
    return Remedies.from_options(r["domain_slug"], unattributed_to=r["unattributed_to"])


def capture(url: str) -> dict[str, baseline.TableState]:
    with psycopg.connect(url, autocommit=True) as conn, conn.transaction(force_rollback=True):
        return baseline.capture(conn)


def book(url: str, tmp_path: Path, **options: Any) -> runbook.Runbook:
    return runbook.Runbook(
        url,
        runbook.Options(yes=True, backup_dir=tmp_path / "backups", remedies=corpus_remedies(), **options),
        data_dir=tmp_path / "data",
        console=Console(file=io.StringIO(), width=200),
        live=False,
        lock_wait_s=5,
        api_app=api_app,
    )


def shapes(url: str) -> dict[str, int]:
    """How many rows of each legacy shape the database holds (the same before and after the migration)."""
    queries = {
        "outcome_reports": "SELECT count(*) FROM mandate.audit_timeline_entries "
        "WHERE intent = 'outcome' AND stage = 'executed' AND event_source = 'agent'",
        "decisions_without_spec": "SELECT count(*) FROM mandate.decision_events WHERE spec_id IS NULL",
        "verdicts_without_spec_version": "SELECT count(*) FROM mandate.verdict_events WHERE spec_version IS NULL",
        "placeholder_owning_team": "SELECT count(*) FROM mandate.verdict_events "
        f"WHERE owning_team = '{legacy_data.PLACEHOLDER_OWNING_TEAM}'",
        "unowned_scopes": "SELECT count(*) FROM mandate.scopes WHERE owning_team IS NULL",
        "spec_less_policies": "SELECT count(*) FROM mandate.policy_snapshots, jsonb_array_elements(policies) p "
        "WHERE NOT p ? 'spec_id'",
        "unscoped_policies": "SELECT count(*) FROM mandate.policy_snapshots, jsonb_array_elements(policies) p "
        "WHERE NOT p ? 'scope_id'",
        "organizations": "SELECT count(*) FROM mandate.organizations",
    }
    with psycopg.connect(url) as conn:
        return {name: int(scalar(conn, q)) for name, q in queries.items()}


@pytest.fixture
def corpus(fresh_db: Callable[..., str]) -> str:
    return make_corpus(fresh_db)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serving(db_url: str) -> Iterator[str]:
    """`mandate serve` in a subprocess (its own), healthy within 30 s, ended afterwards. On loopback without
    authentication: the corpus spans several organizations, and what is tested here is the data, not the tokens."""
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "mandate", "serve", "--port", str(port), "--insecure-no-auth"],
        env={**os.environ, "DATABASE_URL": db_url},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    tick = threading.Event()
    try:
        for _ in range(600):
            if proc.poll() is not None:
                err = proc.stderr.read() if proc.stderr else ""
                raise AssertionError(f"mandate serve exited with {proc.returncode}:\n{err[-3000:]}")
            try:
                if httpx.get(f"{base}/api/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            tick.wait(0.05)
        else:
            raise AssertionError("mandate serve did not become healthy within 30 s")
        yield base
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()


def test_the_corpus_has_every_legacy_shape(corpus: str) -> None:
    found = shapes(corpus)
    with psycopg.connect(corpus) as conn:
        pre_commit = scalar(conn, "SELECT count(*) FROM mandate.decision_events WHERE stage = 'pre_commit'")
        names = {r[0] for r in conn.execute("SELECT name FROM mandate.domains")}
        unattributed = scalar(conn, "SELECT count(*) FROM mandate.decision_events WHERE domain_id IS NULL")
    assert found["outcome_reports"] == pre_commit > DECISIONS // 2
    assert found["decisions_without_spec"] > 0 and found["verdicts_without_spec_version"] > 0
    assert found["placeholder_owning_team"] > 0 and found["unowned_scopes"] >= 4
    assert found["spec_less_policies"] > 0 and found["unscoped_policies"] > 0
    assert found["organizations"] >= 5 and unattributed > 0
    assert {"Customer Support", "customer-support", "Finance", "finance"} <= names


def test_the_default_runbook_takes_the_corpus_to_head_and_it_is_served(corpus: str, tmp_path: Path) -> None:
    before, shapes_before = capture(corpus), shapes(corpus)
    outcome = book(corpus, tmp_path).run()
    assert outcome.status == "succeeded", outcome.message
    data = outcome.data
    with psycopg.connect(corpus, autocommit=True) as conn:
        assert runner.status(conn).pending == []
        outcome_decision = scalar(
            conn, "SELECT decision_id FROM mandate.audit_timeline_entries WHERE intent = 'outcome' LIMIT 1"
        )
        sample = [r[0] for r in conn.execute("SELECT decision_id FROM mandate.decision_events ORDER BY 1 LIMIT 25")]
    assert data["migration"]["applied"] == [f.label for f in load() if f.version >= 8]
    assert baseline.compare(before, capture(corpus)) == []
    assert shapes(corpus) == shapes_before
    assert data["smoke"]["passed"] and len(data["smoke"]["tests"]) == 4
    assert data["chain_rehearsal"] == {
        "chain": "008_rfc002_domain_identity_migration→" + load()[-1].label,
        "ran": True,
        "passed": True,
        "duration_s": data["chain_rehearsal"]["duration_s"],
    }
    with serving(corpus) as base:
        assert httpx.get(f"{base}/api/health").json()["status"] == "ok"
        timeline = httpx.get(f"{base}/api/decisions/{outcome_decision}/timeline")
        assert timeline.status_code == 200, timeline.text
        entries = timeline.json()["entries"]
        reports = [e for e in entries if e["intent"] == "outcome"]
        assert [(e["stage"], e["decision_stage"]) for e in reports] == [("executed", "pre_commit")]
        page = httpx.get(f"{base}/decisions/{outcome_decision}")
        assert page.status_code == 200 and "of pre_commit" in page.text
        for decision_id in sample:
            answer = httpx.get(f"{base}/api/decisions/{decision_id}/replay", timeout=30)
            assert answer.status_code == 200, answer.text
            for stage in answer.json()["stages"]:
                # Legacy decisions no evaluator of ours decided replay as "not replayable", never as an error.
                assert stage.get("identical") is True or (stage.get("replayable") is False and stage["reason"]), stage


def test_to_8_stops_at_008_says_smoke_is_not_applicable_and_up_finishes(corpus: str, tmp_path: Path) -> None:
    before = capture(corpus)
    outcome = book(corpus, tmp_path, to=8).run()
    assert outcome.status == "succeeded", outcome.message
    smoke = outcome.data["smoke"]
    assert smoke["not_applicable"] is True and "mandate migrate up" in smoke["skipped"]
    assert outcome.report_markdown is not None
    assert "not applicable" in outcome.report_markdown.read_text()
    with psycopg.connect(corpus, autocommit=True) as conn:
        assert runner.status(conn).current_version == 8
    refused = run_cli("migrate", "smoke", "008", env={"DATABASE_URL": corpus})
    assert refused.returncode != 0 and "mandate migrate up" in refused.stderr + refused.stdout
    up = run_cli("migrate", "up", env={"DATABASE_URL": corpus})
    assert up.returncode == 0, up.stderr
    with psycopg.connect(corpus, autocommit=True) as conn:
        assert runner.status(conn).pending == []
    assert baseline.compare(before, capture(corpus)) == []
    smoke_now = run_cli("migrate", "smoke", "008", env={"DATABASE_URL": corpus})
    assert smoke_now.returncode == 0, smoke_now.stdout + smoke_now.stderr


def _remedy_sql() -> str:
    """The remedies as an operator fills them by hand before running 008 with psql (docs/migrations.md)."""
    r = corpus_remedies()
    rows = [
        f"INSERT INTO mandate.migration_008_domain_slugs VALUES ("
        f"{'NULL' if s.organization_id is None else repr(str(s.organization_id))}, {s.name!r}, {s.slug!r});"
        for s in r.domain_slugs
    ]
    assert r.unattributed_to is not None
    rows.append(
        f"INSERT INTO mandate.migration_008_unattributed VALUES "
        f"('{r.unattributed_to.organization_id}', '{r.unattributed_to.domain}');"
    )
    return (
        "CREATE TABLE mandate.migration_008_domain_slugs (organization_id uuid, name text NOT NULL, slug text NOT NULL);"
        "CREATE TABLE mandate.migration_008_scope_ids (legacy_scope_uuid uuid PRIMARY KEY, scope_id text NOT NULL);"
        "CREATE TABLE mandate.migration_008_unattributed (organization_id uuid NOT NULL, domain text NOT NULL);"
        + "".join(rows)
    )


def test_the_checklists_psql_commands_then_migrate_up_reach_head(corpus: str) -> None:
    before = capture(corpus)
    filled = psql(corpus, "-v", "ON_ERROR_STOP=1", "-c", _remedy_sql())
    assert filled.returncode == 0, filled.stderr
    pre = psql(corpus, "-v", "ON_ERROR_STOP=1", "-f", str(MIGRATIONS / "008_PRE_MIGRATION_CHECKS.sql"))
    assert pre.returncode == 0, pre.stdout[-3000:] + pre.stderr
    migrated = psql(corpus, stdin=(MIGRATIONS / "008_rfc002_domain_identity_migration.sql").read_text())
    assert migrated.returncode == 0, migrated.stderr
    post = psql(corpus, "-v", "ON_ERROR_STOP=1", "-f", str(MIGRATIONS / "008_POST_MIGRATION_VERIFICATION.sql"))
    assert post.returncode == 0, post.stdout[-3000:] + post.stderr
    up = run_cli("migrate", "up", env={"DATABASE_URL": corpus})
    assert up.returncode == 0, up.stderr
    with psycopg.connect(corpus, autocommit=True) as conn:
        assert runner.status(conn).pending == []
        assert scalar(conn, "SELECT count(*) FROM mandate.audit_timeline_entries WHERE decision_stage IS NOT NULL") > 0
    assert baseline.compare(before, capture(corpus)) == []


def test_a_later_migration_that_would_fail_is_foreseen_before_anything_changes(
    corpus: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With 009 as first released (it rejects outcome reports), the rehearsal of 008→009 fails before the backup:
    the report names 009 (not a phase of 008), PostgreSQL's DETAIL, and what can actually be done."""
    shipped = tmp_path / "migrations"
    shipped.mkdir()
    for f in load(MIGRATIONS):
        if f.version <= 8:
            shutil.copy(f.path, shipped / f.path.name)
    shutil.copy(RELEASED_009, shipped / RELEASED_009.name)
    monkeypatch.setattr(files, "migrations_dir", lambda: shipped)
    before = capture(corpus)
    outcome = book(corpus, tmp_path).run()
    assert outcome.status == "refused", outcome.message
    failure = outcome.data["failure"]
    assert failure["step"] == "pre-migration checks" and failure["database_changed"] is False
    assert "009_control_plane cannot apply" in failure["message"]
    assert (
        "DETAIL: Key (decision_id, stage)=(" in failure["message"] and "executed) is not present" in failure["message"]
    )
    rehearsal = outcome.data["chain_rehearsal"]
    assert rehearsal["failed_migration"] == "009_control_plane" and rehearsal["sqlstate"] == "23503"
    assert any("009_control_plane" in n and "do not edit historical rows" in n for n in failure["next"])
    assert not any("remedy each failed check" in n for n in failure["next"])
    assert "backup" not in outcome.data and not list((tmp_path / "backups").rglob("*.dump"))
    assert (
        outcome.report_markdown is not None
        and "DETAIL: Key (decision_id, stage)" in outcome.report_markdown.read_text()
    )
    assert baseline.compare(before, capture(corpus)) == []
    with psycopg.connect(corpus) as conn:
        assert scalar(conn, "SELECT to_regclass('mandate.migration_log')") is None
