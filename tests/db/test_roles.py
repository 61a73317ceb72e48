"""Least-privilege database roles, asserted against PostgreSQL: `mandate db roles create` on a scratch database
(migrated to 011, the tokens' migration, as a superuser would have), `mandate migrate up` to head as the owner
role, then the application role tries every way around the append-only guarantee
on every table of schema `mandate` and is refused by PostgreSQL itself (SQLSTATE 42501, insufficient_privilege) —
and `mandate serve` runs end to end as that role, while it warns when it connects as a superuser or the owner.

Role names are unique per test (roles are global to a PostgreSQL server) and dropped afterwards with the database.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import httpx
import psycopg
import pytest
from psycopg import sql

from mandate.apply import apply_bundle
from mandate.db import roles
from mandate.db import tokens as tq
from mandate.demo.scenarios import ORGANIZATION_ID
from mandate.governance.bundle import load_demo_bundle
from mandate.migrate import runner
from mandate.migrate.files import head_version
from mandate.tokens import Role, digest, new_secret
from tests.conftest import PREFIX, PgServer
from tests.helpers import run_cli
from tests.web.test_api import CRITICAL_DROP, flat

INSUFFICIENT_PRIVILEGE = "42501"


@dataclass
class Roles:
    database: str
    admin_url: str  # the superuser's URL of the scratch database
    owner: str
    app: str
    owner_url: str
    app_url: str


TOKENS_MIGRATION = 11


@contextmanager
def _scratch(pg: PgServer, template: str | None) -> Iterator[tuple[str, str, str, str]]:
    """A database (cloned from `template`, or empty) and two role names; all dropped afterwards."""
    suffix = uuid.uuid4().hex[:10]
    database, owner, app = f"{PREFIX}roles_{suffix}", f"mandate_owner_{suffix}", f"mandate_app_{suffix}"
    admin_url = pg.create(database, template=template)
    try:
        yield database, admin_url, owner, app
    finally:
        pg.drop(database)
        with pg.admin() as conn:
            for role in (app, owner):
                conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


@pytest.fixture
def scratch(pg: PgServer, templates: Callable[[int | None], str]) -> Iterator[Roles]:
    """A database at 011; `mandate db roles create` on it (as the superuser); `mandate migrate up` as the owner."""
    with _scratch(pg, templates(TOKENS_MIGRATION)) as (database, admin_url, owner, app):
        created = run_cli("db", "roles", "create", "--owner", owner, "--app", app, env={"DATABASE_URL": admin_url})
        assert created.returncode == 0, created.stderr
        urls = dict(line.split("=", 1) for line in created.stdout.splitlines() if "=" in line)
        owner_url, app_url = urls["MANDATE_OWNER_DATABASE_URL"], urls["DATABASE_URL"]
        assert urls.keys() == {"MANDATE_OWNER_DATABASE_URL", "DATABASE_URL"}
        assert f"{owner}:" in owner_url and f"{app}:" in app_url  # each with its password, shown once
        migrated = run_cli("migrate", "up", env={"DATABASE_URL": owner_url}, timeout=300)
        assert migrated.returncode == 0, migrated.stdout + migrated.stderr
        with psycopg.connect(owner_url, autocommit=True) as conn:
            assert runner.status(conn).current_version == head_version()
        yield Roles(database, admin_url, owner, app, owner_url, app_url)


def _tables(conn: psycopg.Connection[Any]) -> list[str]:
    rows = conn.execute(
        """SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname = 'mandate' AND c.relkind IN ('r', 'p') ORDER BY 1"""
    ).fetchall()
    return [r[0] for r in rows]


def _refused(conn: psycopg.Connection[Any], statement: sql.Composable | str) -> str:
    """Run `statement` (autocommit: its own transaction); PostgreSQL must refuse it. Its SQLSTATE."""
    with pytest.raises(psycopg.Error) as caught:
        conn.execute(statement)
    assert caught.value.sqlstate is not None
    return caught.value.sqlstate


def test_the_app_role_is_refused_every_bypass_on_every_table(scratch: Roles) -> None:
    with psycopg.connect(scratch.admin_url, autocommit=True) as admin:
        tables = _tables(admin)
        owners = {r[0] for r in admin.execute("SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname='mandate'")}
        attributes = admin.execute(
            "SELECT rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls FROM pg_roles WHERE rolname=%s",
            [scratch.app],
        ).fetchone()
        first_column = dict(
            admin.execute(
                """SELECT c.relname, (SELECT a.attname FROM pg_attribute a
                                      WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                                        AND a.attidentity = '' AND a.attgenerated = '' ORDER BY a.attnum LIMIT 1)
                   FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                   WHERE n.nspname = 'mandate' AND c.relkind IN ('r', 'p')"""
            ).fetchall()
        )
        routines = [
            r[0]
            for r in admin.execute(
                """SELECT p.oid::regprocedure::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                   WHERE n.nspname = 'mandate' ORDER BY 1"""
            ).fetchall()
        ]
    assert {"decision_events", "verdict_events", "audit_timeline_entries", "api_tokens", "migration_log"} <= set(tables)
    assert owners == {scratch.owner}, "migrated as the owner role: it owns every table"
    assert attributes == (False, False, False, False, False)
    assert routines, "the append-only trigger functions"

    refusals: dict[tuple[str, str], str] = {}
    with psycopg.connect(scratch.app_url, autocommit=True) as app:
        assert app.execute("SELECT current_user").fetchone() == (scratch.app,)
        # Nothing to bypass with: session_replication_role needs a superuser (it would skip every trigger).
        refusals[("*", "SET session_replication_role = replica")] = _refused(
            app, "SET session_replication_role = replica"
        )
        assert app.execute("SHOW session_replication_role").fetchone() == ("origin",)
        for table in tables:
            t = sql.Identifier("mandate", table)
            column = sql.Identifier(first_column[table])
            attempts: dict[str, sql.Composable] = {
                "UPDATE": sql.SQL("UPDATE {} SET {} = {}").format(t, column, column),
                "DELETE": sql.SQL("DELETE FROM {}").format(t),
                "TRUNCATE": sql.SQL("TRUNCATE {}").format(t),
                "ALTER TABLE": sql.SQL("ALTER TABLE {} ADD COLUMN bypass integer").format(t),
                "ALTER TABLE … DISABLE TRIGGER": sql.SQL("ALTER TABLE {} DISABLE TRIGGER ALL").format(t),
                "ALTER TABLE … OWNER TO": sql.SQL("ALTER TABLE {} OWNER TO {}").format(t, sql.Identifier(scratch.app)),
                "DROP TABLE": sql.SQL("DROP TABLE {} CASCADE").format(t),
                "CREATE TRIGGER": sql.SQL(
                    "CREATE TRIGGER bypass BEFORE INSERT ON {} FOR EACH ROW "
                    "EXECUTE FUNCTION suppress_redundant_updates_trigger()"
                ).format(t),
            }
            for what, statement in attempts.items():
                refusals[(table, what)] = _refused(app, statement)
            assert app.execute(sql.SQL("SELECT count(*) FROM {}").format(t)).fetchone() is not None  # may read
        for routine in routines:  # the trigger functions the append-only guarantee rests on
            refusals[(routine, "DROP ROUTINE")] = _refused(app, f"DROP ROUTINE {routine} CASCADE")
            refusals[(routine, "ALTER ROUTINE … OWNER TO")] = _refused(
                app,
                sql.SQL("ALTER ROUTINE {} OWNER TO {}").format(sql.SQL(routine), sql.Identifier(scratch.app)),
            )
        refusals[("schema mandate", "CREATE TABLE")] = _refused(app, "CREATE TABLE mandate.bypass (x integer)")
        # Tokens are issued by the CLI (the owner), never by the server's role.
        refusals[("api_tokens", "INSERT")] = _refused(
            app,
            sql.SQL(
                "INSERT INTO mandate.api_tokens (token_id, secret_sha256, name, organization_id, role) "
                "VALUES (gen_random_uuid(), {}, 'forged', gen_random_uuid(), 'admin')"
            ).format(sql.Literal(b"\0" * 32)),
        )

    wrong = {k: v for k, v in refusals.items() if v != INSUFFICIENT_PRIVILEGE}
    assert not wrong, f"refused, but not for lack of privilege: {wrong}"
    assert len(refusals) == 1 + 8 * len(tables) + 2 * len(routines) + 2
    with psycopg.connect(scratch.admin_url, autocommit=True) as admin:
        assert _tables(admin) == tables
        disabled = admin.execute(
            """SELECT count(*) FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid
               JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'mandate' AND g.tgenabled = 'D'"""
        ).fetchone()
        assert disabled == (0,)


def test_the_app_role_may_read_every_table_and_append_where_the_server_writes(scratch: Roles) -> None:
    with psycopg.connect(scratch.app_url, autocommit=True) as app:
        rows = app.execute(
            """SELECT c.relname, has_table_privilege(c.oid, 'SELECT'), has_table_privilege(c.oid, 'INSERT'),
                      has_table_privilege(c.oid, 'UPDATE'), has_table_privilege(c.oid, 'DELETE'),
                      has_table_privilege(c.oid, 'TRUNCATE'), has_table_privilege(c.oid, 'TRIGGER'),
                      has_table_privilege(c.oid, 'REFERENCES')
               FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE n.nspname = 'mandate' AND c.relkind IN ('r', 'p') ORDER BY 1"""
        ).fetchall()
    assert rows
    for table, select, insert, *others in rows:
        assert select, table
        assert insert == (table not in roles.NOT_FROM_THE_SERVER), table
        assert not any(others), (table, others)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(database_url: str) -> tuple[subprocess.Popen[str], str]:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "mandate", "serve", "--port", str(port)],
        env={**os.environ, "DATABASE_URL": database_url, "COLUMNS": "400"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(f"{url}/api/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    _stop(proc)
    raise AssertionError(f"mandate serve did not become healthy: {proc.communicate()[1][-3000:]}")


def _stop(proc: subprocess.Popen[str]) -> str:
    """SIGTERM (then SIGKILL) by PID; its stderr."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    _, stderr = proc.communicate()
    return stderr


def test_the_server_runs_end_to_end_as_the_app_role(scratch: Roles) -> None:
    secret = new_secret()
    with psycopg.connect(scratch.owner_url, autocommit=True) as owner:  # governance and tokens: the owner's work
        apply_bundle(owner, load_demo_bundle())
        token_id = tq.issue(
            owner,
            secret_sha256=digest(secret),
            name="roles-test",
            organization_id=UUID(ORGANIZATION_ID),
            domains=None,
            role=Role.ADMIN,
            expires_at=None,
        )
    proc, url = _serve(scratch.app_url)
    try:
        headers = {"authorization": f"Bearer {secret}"}
        health = httpx.get(f"{url}/api/health", timeout=10)
        assert health.status_code == 200 and health.json()["status"] == "ok", health.text
        body = flat(*CRITICAL_DROP)
        posted = httpx.post(f"{url}/api/decisions", json=body, headers=headers, timeout=30)
        assert posted.status_code in (200, 201), posted.text
        assert posted.json()["verdict"] == "BLOCK"
        decision = httpx.get(f"{url}/api/decisions/{body['decision_id']}", headers=headers, timeout=10)
        assert decision.status_code == 200, decision.text
        assert decision.json()["decision_id"] == body["decision_id"]
        assert decision.json()["token_id"] == str(token_id)
        timeline = httpx.get(f"{url}/api/decisions/{body['decision_id']}/timeline", headers=headers, timeout=10)
        assert timeline.status_code == 200, timeline.text
        entries = timeline.json()
        entries = entries.get("entries", entries) if isinstance(entries, dict) else entries
        assert len(entries) >= 2, entries
        assert httpx.get(f"{url}/api/decisions", headers={}, timeout=10).status_code == 401
    finally:
        stderr = _stop(proc)
    with psycopg.connect(scratch.admin_url, autocommit=True) as admin:
        stored = admin.execute(
            "SELECT count(*) FROM mandate.decision_events WHERE decision_id = %s", [body["decision_id"]]
        ).fetchone()
    assert stored == (1,)
    assert "warning:" not in stderr, stderr  # the app role is neither a superuser nor an owner


@pytest.mark.parametrize("who", ["superuser", "owner"])
def test_serve_warns_when_it_connects_as_a_superuser_or_the_table_owner(scratch: Roles, who: str) -> None:
    database_url = scratch.admin_url if who == "superuser" else scratch.owner_url
    proc, _ = _serve(database_url)
    stderr = " ".join(_stop(proc).split())  # rich wraps long lines
    expected = "a superuser" if who == "superuser" else "which owns"
    assert "warning:" in stderr and expected in stderr, stderr
    assert "mandate db roles create" in stderr
    with psycopg.connect(database_url, autocommit=True) as conn:
        assert any(expected in w for w in roles.privilege_warnings(conn))
    with psycopg.connect(scratch.app_url, autocommit=True) as conn:
        assert roles.privilege_warnings(conn) == []


def test_roles_create_is_refused_without_the_right_to_create_roles(scratch: Roles) -> None:
    refused = run_cli("db", "roles", "create", "--owner", scratch.owner, "--app", scratch.app,
                      env={"DATABASE_URL": scratch.app_url})  # fmt: skip
    assert refused.returncode == 1, refused.stderr
    assert refused.stdout == ""  # no password printed for roles that were not changed
    assert "permission denied" in refused.stderr or "must be" in refused.stderr, refused.stderr


def test_roles_create_refuses_a_database_without_the_token_tables(pg: PgServer) -> None:
    """Created after the GRANTs, api_tokens would get INSERT for the app role (default privileges): migrate first."""
    with _scratch(pg, None) as (_, admin_url, owner, app):
        refused = run_cli("db", "roles", "create", "--owner", owner, "--app", app, env={"DATABASE_URL": admin_url})
        assert refused.returncode == 1
        assert "mandate migrate up" in refused.stderr and "api_tokens" in refused.stderr, refused.stderr
        assert refused.stdout == ""
        with pg.admin() as conn:
            exists = conn.execute("SELECT count(*) FROM pg_roles WHERE rolname IN (%s, %s)", [owner, app]).fetchone()
        assert exists == (0,), "nothing was created"
