"""Least-privilege database roles: an owner role that runs migrations and owns schema `mandate`, and an application
role for `mandate serve` that may only read and append (docs/security.md lists the GRANTs).

The application role owns nothing, is no superuser and has no DDL, UPDATE, DELETE or TRUNCATE right, so it can
neither `ALTER TABLE … DISABLE TRIGGER` nor `SET session_replication_role` (both need ownership or superuser): the
append-only triggers hold whatever the server does. It gets SELECT on every table of `mandate`, INSERT on every
table but `NOT_FROM_THE_SERVER` (tokens and webhooks are configured by the CLI, migrations by the runner), USAGE
on its sequences, and — through default privileges — the same on tables the owner role creates in later
migrations. That is why `create_roles` refuses a schema without the `REQUIRED_FIRST` tables (migrate first):
created after the GRANTs, they would get INSERT for the application role too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from mandate.errors import SchemaTooOld

OWNER = "mandate_owner"
APP = "mandate_app"
REQUIRED_FIRST = ("migration_log", "api_tokens", "api_token_revocations")
NOT_FROM_THE_SERVER = (*REQUIRED_FIRST, "approval_webhooks", "decision_rollups", "decision_rollup_progress")
"""approval_webhooks and the rollups may come later: migrations 012 and 013 revoke the INSERT the default privileges
give on them. The server adds to the rollups only through `fold_decision_rollups` (SECURITY DEFINER)."""
FOLD_FUNCTION = "mandate.fold_decision_rollups(timestamptz, integer)"

_TRANSFER = """
DO $$
DECLARE
    owner text := current_setting('mandate.new_owner');
    r record;
BEGIN
    EXECUTE format('ALTER SCHEMA mandate OWNER TO %I', owner);
    FOR r IN
        SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'mandate' AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
          AND NOT (c.relkind = 'S' AND EXISTS (
              SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.classid = 'pg_class'::regclass
                AND d.deptype IN ('a', 'i')))
    LOOP
        EXECUTE format('ALTER %s mandate.%I OWNER TO %I',
                       CASE r.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
                                      WHEN 'S' THEN 'SEQUENCE' WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END,
                       r.relname, owner);
    END LOOP;
    FOR r IN SELECT p.oid::regprocedure AS routine FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
             WHERE n.nspname = 'mandate'
    LOOP
        EXECUTE format('ALTER ROUTINE %s OWNER TO %I', r.routine, owner);
    END LOOP;
    FOR r IN SELECT t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
             WHERE n.nspname = 'mandate' AND t.typtype IN ('e', 'd')
    LOOP
        EXECUTE format('ALTER TYPE mandate.%I OWNER TO %I', r.typname, owner);
    END LOOP;
END
$$"""


@dataclass(frozen=True)
class RolesCreated:
    owner: str
    app: str
    owner_created: bool
    app_created: bool
    insert_tables: list[str]

    @property
    def app_rights(self) -> str:
        """What the application role may do, in the words of the GRANTs."""
        return (
            f"SELECT, and INSERT on {len(self.insert_tables)} tables; no UPDATE, DELETE, TRUNCATE, DDL or trigger"
            " control"
        )


def _role_exists(conn: psycopg.Connection[Any], name: str) -> bool:
    return conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [name]).fetchone() is not None


def _login_role(conn: psycopg.Connection[Any], name: str, password: str | None) -> bool:
    """Create (or bring back to these attributes) a plain login role; True when created."""
    created = not _role_exists(conn, name)
    attributes = sql.SQL("LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOINHERIT")
    verb = sql.SQL("CREATE ROLE" if created else "ALTER ROLE")
    statement = sql.SQL("{} {} {}").format(verb, sql.Identifier(name), attributes)
    if password is not None:
        statement += sql.SQL(" PASSWORD {}").format(sql.Literal(password))
    conn.execute(statement)
    return created


def create_roles(
    conn: psycopg.Connection[Any],
    *,
    owner: str = OWNER,
    app: str = APP,
    owner_password: str | None = None,
    app_password: str | None = None,
) -> RolesCreated:
    """Create or update both roles, give schema `mandate` (and the database) to the owner, and grant the app role
    exactly what the server needs. One transaction; run it as a superuser (or the current owner with CREATEROLE)."""
    if owner == app:
        raise ValueError("the owner role and the application role must differ")
    with conn.transaction():
        _require_tables(conn)
        owner_created = _login_role(conn, owner, owner_password)
        app_created = _login_role(conn, app, app_password)
        database = conn.execute("SELECT current_database()").fetchone()
        assert database is not None
        db, o, a = sql.Identifier(database[0]), sql.Identifier(owner), sql.Identifier(app)
        conn.execute(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(db, o))
        conn.execute("SELECT set_config('mandate.new_owner', %s, true)", [owner])
        conn.execute(_TRANSFER)
        tables = [
            r[0]
            for r in conn.execute(
                """SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                   WHERE n.nspname = 'mandate' AND c.relkind IN ('r', 'p') ORDER BY 1"""
            ).fetchall()
        ]
        inserts = [t for t in tables if t not in NOT_FROM_THE_SERVER]
        for statement in (
            "REVOKE CREATE ON SCHEMA mandate FROM PUBLIC",
            "REVOKE ALL ON DATABASE {db} FROM {a}",
            "GRANT CONNECT, TEMPORARY ON DATABASE {db} TO {a}",
            "GRANT USAGE ON SCHEMA mandate TO {a}",
            "REVOKE ALL ON ALL TABLES IN SCHEMA mandate FROM {a}",
            "GRANT SELECT ON ALL TABLES IN SCHEMA mandate TO {a}",
            "GRANT USAGE ON ALL SEQUENCES IN SCHEMA mandate TO {a}",
            "ALTER DEFAULT PRIVILEGES FOR ROLE {o} IN SCHEMA mandate GRANT SELECT, INSERT ON TABLES TO {a}",
            "ALTER DEFAULT PRIVILEGES FOR ROLE {o} IN SCHEMA mandate GRANT USAGE ON SEQUENCES TO {a}",
        ):
            conn.execute(sql.SQL(statement).format(db=db, o=o, a=a))
        for table in inserts:
            conn.execute(sql.SQL("GRANT INSERT ON mandate.{} TO {}").format(sql.Identifier(table), a))
        if conn.execute("SELECT to_regprocedure(%s)", [FOLD_FUNCTION]).fetchone() not in (None, (None,)):
            conn.execute(sql.SQL("GRANT EXECUTE ON FUNCTION {} TO {}").format(sql.SQL(FOLD_FUNCTION), a))
    return RolesCreated(owner, app, owner_created, app_created, inserts)


def _require_tables(conn: psycopg.Connection[Any]) -> None:
    """The tables the app role must not write exist: granted later, by the default privileges, it could."""
    found = {
        r[0]
        for r in conn.execute(
            """SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE n.nspname = 'mandate' AND c.relkind IN ('r', 'p') AND c.relname = ANY(%s)""",
            [list(REQUIRED_FIRST)],
        ).fetchall()
    }
    missing = [t for t in REQUIRED_FIRST if t not in found]
    if missing:
        raise SchemaTooOld(
            f"schema mandate has no {', '.join(missing)} yet: run `mandate migrate up` on this database first (the "
            "application role must not get INSERT on them, as it would on tables created after its GRANTs), "
            "then `mandate db roles create`; later migrations run as the owner role"
        )


def privilege_warnings(conn: psycopg.Connection[Any]) -> list[str]:
    """Why the connected role could switch the append-only guarantee off: superuser, or owner of Mandate's tables."""
    row = conn.execute(
        """SELECT current_user, r.rolsuper,
                  (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                   WHERE n.nspname = 'mandate' AND c.relkind IN ('r', 'p')
                     AND pg_has_role(current_user, c.relowner, 'USAGE')) AS owned
           FROM pg_roles r WHERE r.rolname = current_user"""
    ).fetchone()
    if row is None:
        return []
    user, superuser, owned = row
    warnings = []
    if superuser:
        warnings.append(
            f"the server connects as {user}, a superuser: it could disable the append-only triggers "
            "(SET session_replication_role, ALTER TABLE … DISABLE TRIGGER)"
        )
    elif owned:
        warnings.append(
            f"the server connects as {user}, which owns {owned} of Mandate's tables: it could disable their "
            "append-only triggers (ALTER TABLE … DISABLE TRIGGER)"
        )
    return warnings
