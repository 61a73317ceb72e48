"""Migrations 001-007 build exactly the legacy schema (LEGACY-SCHEMA.md), and legacy_data fills it.

The expected schema below is transcribed from LEGACY-SCHEMA.md: every table's columns in order (type, nullability,
default), every primary key, foreign key, unique and CHECK constraint, every index of the appendix, the enum
labels and the eight append-only triggers. The tests read the real catalog of a real PostgreSQL (pgserver's
embedded server), after applying the files with psql exactly as an operator would, and compare for equality:
anything missing *or extra* fails.

The same files are also run the way our migration runner runs them (backslash lines and the BEGIN;/COMMIT; lines
stripped, each file in a transaction of its own, through psycopg), and must give the same catalog.

The data tests check that the generated legacy data is clean (every legacy-problem query below returns no row),
and that each messy-data helper adds exactly the rows it promises and exactly the problem it is named after.
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pgserver
import psycopg
import pytest
from pgserver.postgres_server import PostgresServer, get_server
from psycopg import sql

from tests import legacy_data
from tests.legacy_data import GeneratedCounts

REPO_ROOT = Path(__file__).resolve().parents[2]
LEGACY_MIGRATIONS = sorted((REPO_ROOT / "migrations").glob("00[1-7]_*.sql"))
PSQL = Path(pgserver.__file__).parent / "pginstall" / "bin" / "psql"

# ---------------------------------------------------------------------------------------------------------------
# The legacy schema, transcribed from LEGACY-SCHEMA.md
# ---------------------------------------------------------------------------------------------------------------

APPEND_ONLY_TABLES = (
    "organizations",
    "domains",
    "scopes",
    "policy_snapshots",
    "decision_events",
    "verdict_events",
    "audit_timeline_entries",
    "mandate_specs",
)

# (name, type as format_type() prints it with search_path = pg_catalog, NOT NULL, default expression)
Column = tuple[str, str, bool, str | None]

UUID, TEXT, JSONB, TSTZ = "uuid", "text", "jsonb", "timestamp with time zone"
NEW_UUID = "gen_random_uuid()"
EMPTY_OBJECT = "'{}'::jsonb"
CREATED_AT: Column = ("created_at", TSTZ, True, "now()")
ORG_DOMAIN_REFS: list[Column] = [("organization_id", UUID, False, None), ("domain_id", UUID, False, None)]
SPEC_REFS: list[Column] = [("spec_id", TEXT, False, None), ("spec_version", TEXT, False, None)]

EXPECTED_COLUMNS: dict[str, list[Column]] = {
    "organizations": [
        ("organization_id", UUID, True, NEW_UUID),
        ("name", TEXT, True, None),
        ("description", TEXT, False, None),
        ("metadata", JSONB, True, EMPTY_OBJECT),
        CREATED_AT,
    ],
    "domains": [
        ("domain_id", UUID, True, NEW_UUID),
        ("organization_id", UUID, True, None),
        ("name", TEXT, True, None),
        ("description", TEXT, False, None),
        ("metadata", JSONB, True, EMPTY_OBJECT),
        CREATED_AT,
    ],
    "scopes": [
        ("scope_id", UUID, True, NEW_UUID),
        ("scope_domain", TEXT, False, None),
        ("service", TEXT, False, None),
        ("agent", TEXT, False, None),
        ("scope_system", TEXT, False, None),
        ("environment", TEXT, False, None),
        ("tenant", TEXT, False, None),
        CREATED_AT,
        *ORG_DOMAIN_REFS,
        ("owning_team", TEXT, False, None),
        ("owner_contact", TEXT, False, None),
        ("description", TEXT, False, None),
    ],
    "policy_snapshots": [
        ("snapshot_id", UUID, True, None),
        ("version", "integer", True, "1"),
        ("policies", JSONB, True, None),
        CREATED_AT,
        *ORG_DOMAIN_REFS,
    ],
    "decision_events": [
        ("decision_id", UUID, True, None),
        ("intent", TEXT, True, None),
        ("stage", "mandate.stage", True, None),
        ("actor", TEXT, True, None),
        ("target", TEXT, True, None),
        ("context", JSONB, True, EMPTY_OBJECT),
        ("scope", JSONB, True, EMPTY_OBJECT),
        ("timestamp", TSTZ, True, None),
        CREATED_AT,
        *ORG_DOMAIN_REFS,
        *SPEC_REFS,
    ],
    "verdict_events": [
        ("verdict_id", UUID, True, None),
        ("decision_id", UUID, True, None),
        ("snapshot_id", UUID, True, None),
        ("verdict", "mandate.verdict", True, None),
        ("matched_policy_ids", "text[]", True, "'{}'::text[]"),
        ("timestamp", TSTZ, True, None),
        CREATED_AT,
        *ORG_DOMAIN_REFS,
        *SPEC_REFS,
        ("scope_id", UUID, False, None),
        ("domain", TEXT, False, None),
        ("owning_team", TEXT, False, None),
    ],
    # Column order as in the original project (intent, stage, actor, target, summary); LEGACY-SCHEMA.md lists
    # the four TEXT columns together and the stage after them, grouping by type.
    "audit_timeline_entries": [
        ("entry_id", UUID, True, NEW_UUID),
        ("decision_id", UUID, True, None),
        ("intent", TEXT, True, None),
        ("stage", "mandate.stage", True, None),
        ("actor", TEXT, True, None),
        ("target", TEXT, True, None),
        ("summary", TEXT, True, None),
        ("details", JSONB, True, EMPTY_OBJECT),
        ("severity", TEXT, True, None),
        ("event_source", "mandate.event_source", True, None),
        ("authority_level", "mandate.authority_level", True, None),
        ("timestamp", TSTZ, True, None),
        CREATED_AT,
        *ORG_DOMAIN_REFS,
        *SPEC_REFS,
    ],
    "mandate_specs": [
        ("spec_id", TEXT, True, None),
        ("version", TEXT, True, None),
        ("organization_id", UUID, True, None),
        ("domain", TEXT, True, None),
        ("intent", TEXT, True, None),
        ("stage", "mandate.stage", True, None),
        ("allowed_verdicts", "mandate.verdict[]", True, None),
        ("signals", JSONB, True, None),
        ("enforcement", JSONB, True, None),
        ("status", TEXT, True, None),
        ("replaced_by", TEXT, False, None),
        CREATED_AT,
    ],
}

EXPECTED_ENUMS = {
    "stage": ["proposed", "pre_commit", "executed"],
    "verdict": ["ALLOW", "PAUSE", "BLOCK", "OBSERVE"],
    "event_source": ["system", "agent", "human"],
    "authority_level": ["system", "agent", "human"],
}

PRIMARY_KEYS = {
    "organizations": "organization_id",
    "domains": "domain_id",
    "scopes": "scope_id",
    "policy_snapshots": "snapshot_id",
    "decision_events": "decision_id",
    "verdict_events": "verdict_id",
    "audit_timeline_entries": "entry_id",
    "mandate_specs": "spec_id, version",
}

REFERENCED_KEY = {
    "organizations": "organization_id",
    "domains": "domain_id",
    "scopes": "scope_id",
    "policy_snapshots": "snapshot_id",
    "decision_events": "decision_id",
}

# (table, column, referenced table); every foreign key has PostgreSQL's default name <table>_<column>_fkey.
FOREIGN_KEYS = [
    ("domains", "organization_id", "organizations"),
    ("scopes", "organization_id", "organizations"),
    ("scopes", "domain_id", "domains"),
    ("policy_snapshots", "organization_id", "organizations"),
    ("policy_snapshots", "domain_id", "domains"),
    ("decision_events", "organization_id", "organizations"),
    ("decision_events", "domain_id", "domains"),
    ("verdict_events", "decision_id", "decision_events"),
    ("verdict_events", "snapshot_id", "policy_snapshots"),
    ("verdict_events", "organization_id", "organizations"),
    ("verdict_events", "domain_id", "domains"),
    ("verdict_events", "scope_id", "scopes"),
    ("audit_timeline_entries", "decision_id", "decision_events"),
    ("audit_timeline_entries", "organization_id", "organizations"),
    ("audit_timeline_entries", "domain_id", "domains"),
]

# (table, constraint name, definition as pg_get_constraintdef() prints it)
EXPECTED_CONSTRAINTS: set[tuple[str, str, str]] = (
    {(table, f"{table}_pkey", f"PRIMARY KEY ({columns})") for table, columns in PRIMARY_KEYS.items()}
    | {
        (table, f"{table}_{column}_fkey", f"FOREIGN KEY ({column}) REFERENCES mandate.{ref}({REFERENCED_KEY[ref]})")
        for table, column, ref in FOREIGN_KEYS
    }
    | {
        ("domains", "domains_unique_name_per_org", "UNIQUE (organization_id, name)"),
        ("policy_snapshots", "policy_snapshots_version_positive", "CHECK ((version > 0))"),
        ("policy_snapshots", "policy_snapshots_policies_array", "CHECK ((jsonb_typeof(policies) = 'array'::text))"),
        (
            "mandate_specs",
            "mandate_specs_status_check",
            "CHECK ((status = ANY (ARRAY['draft'::text, 'active'::text, 'deprecated'::text])))",
        ),
        ("mandate_specs", "spec_signals_is_array", "CHECK ((jsonb_typeof(signals) = 'array'::text))"),
        ("mandate_specs", "spec_enforcement_is_object", "CHECK ((jsonb_typeof(enforcement) = 'object'::text))"),
    }
)


def _index(name: str, table: str, keys: str, *, unique: bool = False, method: str = "btree", where: str = "") -> str:
    """An index definition exactly as pg_get_indexdef() prints it."""
    predicate = f" WHERE ({where})" if where else ""
    return f"CREATE {'UNIQUE ' if unique else ''}INDEX {name} ON mandate.{table} USING {method} ({keys}){predicate}"


def _plain_indexes(table: str, prefix: str, keys: Mapping[str, str]) -> dict[str, str]:
    return {f"{prefix}_{suffix}": _index(f"{prefix}_{suffix}", table, key) for suffix, key in keys.items()}


_SCOPES_UNIQUE_KEYS = ", ".join(
    f"COALESCE({column}, ''::text)"
    for column in ("scope_domain", "service", "agent", "scope_system", "environment", "tenant")
)

# Every index of the legacy schema: the appendix's named indexes plus those backing the primary keys and the
# domains_unique_name_per_org constraint.
EXPECTED_INDEXES: dict[str, str] = {
    **{f"{t}_pkey": _index(f"{t}_pkey", t, cols, unique=True) for t, cols in PRIMARY_KEYS.items()},
    # organizations
    "idx_organizations_name": _index("idx_organizations_name", "organizations", "name", unique=True),
    "idx_organizations_created_at": _index("idx_organizations_created_at", "organizations", "created_at DESC"),
    # domains
    "domains_unique_name_per_org": _index(
        "domains_unique_name_per_org", "domains", "organization_id, name", unique=True
    ),
    **_plain_indexes("domains", "idx_domains", {"organization_id": "organization_id", "name": "name"}),
    "idx_domains_created_at": _index("idx_domains_created_at", "domains", "created_at DESC"),
    # scopes
    "idx_scopes_unique": _index("idx_scopes_unique", "scopes", _SCOPES_UNIQUE_KEYS, unique=True),
    **_plain_indexes(
        "scopes",
        "idx_scopes",
        {
            "domain": "scope_domain",
            "service": "service",
            "environment": "environment",
            "tenant": "tenant",
            "organization_id": "organization_id",
            "domain_id": "domain_id",
            "owning_team": "owning_team",
        },
    ),
    # policy_snapshots
    "idx_policy_snapshots_created_at": _index("idx_policy_snapshots_created_at", "policy_snapshots", "created_at DESC"),
    **_plain_indexes(
        "policy_snapshots",
        "idx_policy_snapshots",
        {"organization_id": "organization_id", "domain_id": "domain_id"},
    ),
    # decision_events
    **_plain_indexes(
        "decision_events",
        "idx_decision_events",
        {
            "intent": "intent",
            "stage": "stage",
            "actor": "actor",
            "target": "target",
            "organization_id": "organization_id",
            "domain_id": "domain_id",
            "timestamp": '"timestamp" DESC',
            "created_at": "created_at DESC",
            "spec_id": "spec_id, spec_version",
        },
    ),
    "idx_decision_events_scope": _index("idx_decision_events_scope", "decision_events", "scope", method="gin"),
    "idx_decision_events_context": _index("idx_decision_events_context", "decision_events", "context", method="gin"),
    # verdict_events
    **_plain_indexes(
        "verdict_events",
        "idx_verdict_events",
        {
            "decision_id": "decision_id",
            "snapshot_id": "snapshot_id",
            "verdict": "verdict",
            "organization_id": "organization_id",
            "domain_id": "domain_id",
            "scope_id": "scope_id",
            "domain": "domain",
            "owning_team": "owning_team",
            "timestamp": '"timestamp" DESC',
            "created_at": "created_at DESC",
            "spec_id": "spec_id, spec_version",
        },
    ),
    "idx_verdict_events_matched_policies": _index(
        "idx_verdict_events_matched_policies", "verdict_events", "matched_policy_ids", method="gin"
    ),
    # audit_timeline_entries (indexes named idx_audit_timeline_*)
    **_plain_indexes(
        "audit_timeline_entries",
        "idx_audit_timeline",
        {
            "decision_id": "decision_id",
            "intent": "intent",
            "stage": "stage",
            "actor": "actor",
            "severity": "severity",
            "organization_id": "organization_id",
            "domain_id": "domain_id",
            "authority_level": "authority_level",
            "source": "event_source",
            "timestamp": '"timestamp" DESC',
            "created_at": "created_at DESC",
            "spec_id": "spec_id, spec_version",
        },
    ),
    "idx_audit_timeline_details": _index(
        "idx_audit_timeline_details", "audit_timeline_entries", "details", method="gin"
    ),
    # mandate_specs
    "idx_mandate_specs_active_unique": _index(
        "idx_mandate_specs_active_unique",
        "mandate_specs",
        "organization_id, domain, intent, stage",
        unique=True,
        where="status = 'active'::text",
    ),
    **_plain_indexes(
        "mandate_specs",
        "idx_mandate_specs",
        {
            "organization_id": "organization_id",
            "domain": "domain",
            "intent": "intent",
            "stage": "stage",
            "status": "status",
            "created_at": "created_at DESC",
        },
    ),
}

TRIGGER_NAMES = {
    table: "prevent_audit_timeline_mutation" if table == "audit_timeline_entries" else f"prevent_{table}_mutation"
    for table in APPEND_ONLY_TABLES
}
EXPECTED_TRIGGERS = {
    f"CREATE TRIGGER {name} BEFORE DELETE OR UPDATE ON mandate.{table} "
    "FOR EACH ROW EXECUTE FUNCTION mandate.prevent_mutation()"
    for table, name in TRIGGER_NAMES.items()
}

# ---------------------------------------------------------------------------------------------------------------
# Reading the catalog
# ---------------------------------------------------------------------------------------------------------------

Catalog = dict[str, Any]


def read_catalog(conn: psycopg.Connection[Any]) -> Catalog:
    """Everything about schema ``mandate`` that the legacy shape consists of, as plain comparable values.

    The connection's search_path must be ``pg_catalog`` so that type and table names print schema-qualified.
    """

    def rows(query: str) -> list[tuple[Any, ...]]:
        return conn.execute(query).fetchall()

    columns: dict[str, list[Column]] = {}
    for table, name, type_, not_null, default in rows(
        """
        SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
               pg_get_expr(d.adbin, d.adrelid)
        FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
        LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
        WHERE n.nspname = 'mandate' AND c.relkind IN ('r', 'p')
        ORDER BY c.relname, a.attnum
        """
    ):
        columns.setdefault(table, []).append((name, type_, not_null, default))

    enums: dict[str, list[str]] = {}
    for type_name, label in rows(
        """
        SELECT t.typname, e.enumlabel
        FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE n.nspname = 'mandate'
        ORDER BY t.typname, e.enumsortorder
        """
    ):
        enums.setdefault(type_name, []).append(label)

    return {
        "relations": sorted(
            rows(
                """
                SELECT c.relname, c.relkind::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname = 'mandate' AND c.relkind NOT IN ('i', 'S')
                """
            )
        ),
        "columns": columns,
        "constraints": {
            (table, name, definition)
            for table, name, definition in rows(
                """
                SELECT r.relname, c.conname, pg_get_constraintdef(c.oid)
                FROM pg_constraint c
                JOIN pg_namespace n ON n.oid = c.connamespace
                JOIN pg_class r ON r.oid = c.conrelid
                WHERE n.nspname = 'mandate' AND c.contype <> 't'
                """
            )
        },
        "indexes": dict(
            rows(
                """
                SELECT i.relname, pg_get_indexdef(i.oid)
                FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_namespace n ON n.oid = i.relnamespace
                WHERE n.nspname = 'mandate'
                """
            )
        ),
        "triggers": {
            definition
            for (definition,) in rows(
                """
                SELECT pg_get_triggerdef(t.oid)
                FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname = 'mandate' AND NOT t.tgisinternal
                """
            )
        },
        "enums": enums,
        "functions": sorted(
            rows(
                """
                SELECT p.proname, pg_get_function_result(p.oid), l.lanname, p.prosrc
                FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace JOIN pg_language l ON l.oid = p.prolang
                WHERE n.nspname = 'mandate'
                """
            )
        ),
        "database_settings": sorted(
            rows(
                """
                SELECT unnest(setconfig) FROM pg_db_role_setting
                WHERE setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database())
                  AND setrole = 0
                """
            )
        ),
    }


# ---------------------------------------------------------------------------------------------------------------
# Problems real legacy data has: each query returns the offending rows (no row = clean)
# ---------------------------------------------------------------------------------------------------------------


def _slug(expression: str) -> str:
    """SQL turning free text into a slug: lower case, runs of other characters to '-', no '-' at the ends."""
    return f"trim(both '-' from lower(regexp_replace({expression}, '[^A-Za-z0-9_-]+', '-', 'g')))"


PROBLEM_QUERIES: dict[str, str] = {
    "unattributed rows": """
        SELECT decision_id FROM mandate.decision_events WHERE organization_id IS NULL AND domain_id IS NULL
        UNION ALL
        SELECT verdict_id FROM mandate.verdict_events
        WHERE organization_id IS NULL AND domain_id IS NULL AND domain IS NULL AND scope_id IS NULL
        UNION ALL
        SELECT entry_id FROM mandate.audit_timeline_entries WHERE organization_id IS NULL AND domain_id IS NULL
    """,
    "verdicts without scope attribution": """
        SELECT verdict_id FROM mandate.verdict_events
        WHERE domain_id IS NOT NULL AND domain IS NULL AND scope_id IS NULL
    """,
    "non-slug domain names": "SELECT name FROM mandate.domains WHERE name !~ '^[a-z0-9_-]+$'",
    "domain names colliding as slugs": f"""
        SELECT organization_id, {_slug("name")} FROM mandate.domains
        GROUP BY 1, 2 HAVING count(*) > 1
    """,
    "scopes without owner": "SELECT scope_id FROM mandate.scopes WHERE owning_team IS NULL",
    "scope_domain disagreeing with domain_id": """
        SELECT s.scope_id FROM mandate.scopes s JOIN mandate.domains d ON d.domain_id = s.domain_id
        WHERE s.scope_domain IS DISTINCT FROM d.name
    """,
    "colliding derived scope ids": f"""
        SELECT concat_ws('.', {_slug("scope_domain")}, {_slug("environment")}, {_slug("service")},
                         {_slug("agent")}) AS derived_id
        FROM mandate.scopes GROUP BY 1 HAVING count(*) > 1
    """,
    "orphaned domain_id references": """
        SELECT scope_id FROM mandate.scopes s
        WHERE domain_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM mandate.domains d WHERE d.domain_id = s.domain_id)
        UNION ALL
        SELECT decision_id FROM mandate.decision_events e
        WHERE domain_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM mandate.domains d WHERE d.domain_id = e.domain_id)
        UNION ALL
        SELECT entry_id FROM mandate.audit_timeline_entries t
        WHERE domain_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM mandate.domains d WHERE d.domain_id = t.domain_id)
    """,
    "verdicts whose scope is missing": """
        SELECT verdict_id FROM mandate.verdict_events v
        WHERE scope_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM mandate.scopes s WHERE s.scope_id = v.scope_id)
    """,
    "verdicts whose decision is missing": """
        SELECT verdict_id FROM mandate.verdict_events v
        WHERE NOT EXISTS (SELECT 1 FROM mandate.decision_events e WHERE e.decision_id = v.decision_id)
    """,
}

Helper = Callable[[psycopg.Connection[Any]], Mapping[str, int]]

# helper -> {problem it shows: how many offending rows the problem query then returns}. Two names that slug to the
# same value cannot both be slugs already, so the colliding names also show a non-slug name.
MESSY_HELPERS: dict[Helper, dict[str, int]] = {
    legacy_data.add_unattributed_rows: {"unattributed rows": 9},
    legacy_data.add_verdicts_without_scope_attribution: {"verdicts without scope attribution": 2},
    legacy_data.add_non_slug_domains: {"non-slug domain names": 2},
    legacy_data.add_colliding_domain_names: {"domain names colliding as slugs": 1, "non-slug domain names": 1},
    legacy_data.add_scopes_without_owner: {"scopes without owner": 2},
    legacy_data.add_scope_domain_mismatch: {"scope_domain disagreeing with domain_id": 1},
    legacy_data.add_colliding_scopes: {"colliding derived scope ids": 1},
    legacy_data.add_orphaned_domain_refs: {"orphaned domain_id references": 3},
    legacy_data.add_verdicts_missing_scope: {"verdicts whose scope is missing": 1},
    legacy_data.add_verdicts_missing_decision: {"verdicts whose decision is missing": 1},
}


def problem_rows(conn: psycopg.Connection[Any], problem: str) -> list[tuple[Any, ...]]:
    return conn.execute(PROBLEM_QUERIES[problem]).fetchall()


def table_counts(conn: psycopg.Connection[Any]) -> dict[str, int]:
    counts = {}
    for table in APPEND_ONLY_TABLES:
        row = conn.execute(sql.SQL("SELECT count(*) FROM mandate.{}").format(sql.Identifier(table))).fetchone()
        assert row is not None
        counts[table] = int(row[0])
    return counts


def scalar(conn: psycopg.Connection[Any], query: str) -> Any:
    row = conn.execute(query).fetchone()
    assert row is not None
    return row[0]


# ---------------------------------------------------------------------------------------------------------------
# Fixtures: one embedded server for this module; databases built from the migration files
# ---------------------------------------------------------------------------------------------------------------


class LegacyServer:
    """The embedded PostgreSQL server of this module, and the databases made on it."""

    def __init__(self, server: PostgresServer) -> None:
        self.server = server
        self._names = itertools.count(1)

    def uri(self, dbname: str) -> str:
        return self.server.get_uri(dbname)

    def connect(self, dbname: str, *, catalog_view: bool = False, autocommit: bool = False) -> psycopg.Connection[Any]:
        """A connection; with catalog_view, search_path is pg_catalog so that names print schema-qualified."""
        options = "-c search_path=pg_catalog" if catalog_view else ""
        return psycopg.connect(self.uri(dbname), autocommit=autocommit, options=options)

    def create_database(self, *, template: str | None = None) -> str:
        name = f"legacy_{next(self._names)}"
        with self.connect("postgres", autocommit=True) as admin:
            statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
            if template is not None:
                statement += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
            admin.execute(statement)
        return name

    def drop_database(self, name: str) -> None:
        with self.connect("postgres", autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def _process_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture(scope="module")
def pg() -> Iterator[LegacyServer]:
    # Not under pytest's tmp_path: pytest may tighten its directories' permissions while the server (which runs
    # as another user when tests run as root) still needs them to shut down.
    data_root = Path(tempfile.mkdtemp(prefix="mandate-legacy-schema-"))
    server = get_server(data_root / "pgdata", cleanup_mode="stop")
    pid = server.get_pid()
    try:
        yield LegacyServer(server)
    finally:
        server.cleanup()  # pg_ctl stop on this data directory
        if pid is not None and _process_running(pid):  # pragma: no cover - only if pg_ctl failed to stop it
            os.kill(pid, signal.SIGTERM)
        shutil.rmtree(data_root, ignore_errors=True)


def apply_with_psql(pg: LegacyServer, dbname: str) -> None:
    """Apply 001-007 the way the checklist does: psql -v ON_ERROR_STOP=1 -f FILE, in order."""
    for path in LEGACY_MIGRATIONS:
        result = subprocess.run(
            [str(PSQL), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", pg.uri(dbname), "-f", str(path)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, f"{path.name} failed:\n{result.stderr}"
        assert result.stderr == "", f"{path.name} printed warnings or notices:\n{result.stderr}"


def strip_for_runner(text: str) -> str:
    """What our migration runner executes: the file without psql meta-commands and without BEGIN;/COMMIT;."""
    return "\n".join(
        line for line in text.splitlines() if not line.startswith("\\") and line.strip() not in ("BEGIN;", "COMMIT;")
    )


def apply_with_psycopg(pg: LegacyServer, dbname: str) -> None:
    """Apply 001-007 as the runner does: each stripped file inside one transaction of its own."""
    with pg.connect(dbname, autocommit=True) as conn:
        for path in LEGACY_MIGRATIONS:
            with conn.transaction():
                conn.execute(strip_for_runner(path.read_text()).encode())


@pytest.fixture(scope="module")
def psql_db(pg: LegacyServer) -> str:
    """A database at legacy version 007, built with psql. Also the template of every data test's database."""
    name = pg.create_database()
    apply_with_psql(pg, name)
    return name


@pytest.fixture(scope="module")
def catalog(pg: LegacyServer, psql_db: str) -> Catalog:
    with pg.connect(psql_db, catalog_view=True) as conn:
        return read_catalog(conn)


@pytest.fixture
def legacy_db(pg: LegacyServer, psql_db: str) -> Iterator[psycopg.Connection[Any]]:
    """A fresh, empty legacy database of its own (a copy of psql_db), connected."""
    name = pg.create_database(template=psql_db)
    try:
        with pg.connect(name) as conn:
            yield conn
    finally:
        pg.drop_database(name)


@pytest.fixture
def governed_db(legacy_db: psycopg.Connection[Any]) -> psycopg.Connection[Any]:
    """A fresh legacy database holding the sample governance and some clean generated events."""
    legacy_data.insert_sample_governance(legacy_db)
    legacy_data.generate_events(legacy_db, decisions=200)
    return legacy_db


@pytest.fixture(scope="module")
def populated_db(pg: LegacyServer, psql_db: str) -> Iterator[psycopg.Connection[Any]]:
    """One database with everything: sample governance, 2000 generated decisions and every messy helper."""
    name = pg.create_database(template=psql_db)
    try:
        with pg.connect(name) as conn:
            legacy_data.insert_sample_governance(conn)
            legacy_data.generate_events(conn, decisions=2000)
            for helper in MESSY_HELPERS:
                helper(conn)
            conn.commit()
            yield conn
    finally:
        pg.drop_database(name)


# ---------------------------------------------------------------------------------------------------------------
# The migration files
# ---------------------------------------------------------------------------------------------------------------


def test_legacy_migrations_are_001_to_007() -> None:
    assert [path.name[:4] for path in LEGACY_MIGRATIONS] == [f"{n:03d}_" for n in range(1, 8)]


@pytest.mark.parametrize("path", LEGACY_MIGRATIONS, ids=lambda path: path.name)
def test_migration_file_has_header_and_one_transaction(path: Path) -> None:
    lines = path.read_text().splitlines()
    body = [line for line in lines if line.strip() and not line.lstrip().startswith("--")]

    assert lines[0].startswith("-- "), "a file starts with a comment header saying what and why"
    assert body[:2] == ["\\set ON_ERROR_STOP on", "BEGIN;"]
    assert body[-1] == "COMMIT;"
    outside_bodies = re.sub(r"\$\$.*?\$\$", "", "\n".join(body), flags=re.DOTALL)  # plpgsql has BEGIN/END too
    control = re.findall(
        r"(?im)^\s*(?:BEGIN|COMMIT|END|ROLLBACK|ABORT|START\s+TRANSACTION|SAVEPOINT|RELEASE)\b.*$", outside_bodies
    )
    assert control == ["BEGIN;", "COMMIT;"], "the runner strips BEGIN;/COMMIT; only: no other transaction control"
    assert "migration_log" not in path.read_text(), "the runner owns migration_log"


# ---------------------------------------------------------------------------------------------------------------
# The catalog after 001-007 is the legacy schema
# ---------------------------------------------------------------------------------------------------------------


def test_schema_holds_exactly_the_eight_legacy_tables(catalog: Catalog) -> None:
    assert catalog["relations"] == sorted((table, "r") for table in APPEND_ONLY_TABLES)


@pytest.mark.parametrize("table", APPEND_ONLY_TABLES)
def test_columns_in_order_with_types_nullability_and_defaults(catalog: Catalog, table: str) -> None:
    assert catalog["columns"][table] == EXPECTED_COLUMNS[table]


def test_keys_unique_and_check_constraints(catalog: Catalog) -> None:
    assert catalog["constraints"] == EXPECTED_CONSTRAINTS


def test_indexes_are_exactly_those_of_the_appendix(catalog: Catalog) -> None:
    assert set(catalog["indexes"]) == set(EXPECTED_INDEXES), "missing or extra indexes"
    assert catalog["indexes"] == EXPECTED_INDEXES


def test_enum_types_and_labels_in_order(catalog: Catalog) -> None:
    assert catalog["enums"] == EXPECTED_ENUMS


def test_append_only_triggers_on_all_eight_tables(catalog: Catalog) -> None:
    assert catalog["triggers"] == EXPECTED_TRIGGERS


def test_prevent_mutation_is_the_only_function(catalog: Catalog) -> None:
    [(name, result, language, source)] = catalog["functions"]
    assert (name, result, language) == ("prevent_mutation", "trigger", "plpgsql")
    assert "RAISE EXCEPTION 'Mutations are not allowed on append-only table %', TG_TABLE_NAME" in source


def test_database_default_search_path_includes_mandate(pg: LegacyServer, psql_db: str, catalog: Catalog) -> None:
    assert catalog["database_settings"] == [("search_path=mandate, public",)]
    with pg.connect(psql_db) as conn:  # a new session picks the default up: plain table names work
        assert scalar(conn, "SHOW search_path") == "mandate, public"
        assert scalar(conn, "SELECT count(*) FROM organizations") == 0


def test_runner_style_application_gives_the_same_catalog(pg: LegacyServer, catalog: Catalog) -> None:
    name = pg.create_database()
    try:
        apply_with_psycopg(pg, name)
        with pg.connect(name, catalog_view=True) as conn:
            runner_catalog = read_catalog(conn)
    finally:
        pg.drop_database(name)
    # The database name differs, the setting does not.
    assert runner_catalog == catalog


# ---------------------------------------------------------------------------------------------------------------
# Append-only
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("table", APPEND_ONLY_TABLES)
@pytest.mark.parametrize("statement", ["UPDATE mandate.{} SET created_at = created_at", "DELETE FROM mandate.{}"])
def test_update_and_delete_are_refused(populated_db: psycopg.Connection[Any], table: str, statement: str) -> None:
    conn = populated_db
    before = table_counts(conn)[table]
    assert before > 0, "the trigger only fires on existing rows"

    with (
        pytest.raises(psycopg.errors.RaiseException, match=f"Mutations are not allowed on append-only table {table}"),
        conn.transaction(),
    ):
        conn.execute(sql.SQL(statement).format(sql.Identifier(table)))

    assert table_counts(conn)[table] == before


# ---------------------------------------------------------------------------------------------------------------
# Sample governance
# ---------------------------------------------------------------------------------------------------------------


def test_sample_governance_has_the_original_identifiers(legacy_db: psycopg.Connection[Any]) -> None:
    conn = legacy_db
    legacy_data.insert_sample_governance(conn)

    assert table_counts(conn) == {
        "organizations": 1,
        "domains": 1,
        "scopes": 4,
        "policy_snapshots": 1,
        "decision_events": 0,
        "verdict_events": 0,
        "audit_timeline_entries": 0,
        "mandate_specs": 5,
    }
    assert conn.execute("SELECT organization_id::text, name FROM mandate.organizations").fetchall() == [
        ("550e8400-e29b-41d4-a716-446655440000", "example-org")
    ]
    assert conn.execute("SELECT domain_id::text, name FROM mandate.domains").fetchall() == [
        ("550e8400-e29b-41d4-a716-446655440001", "config-management")
    ]
    scopes = conn.execute(
        """
        SELECT right(scope_id::text, 6), scope_domain, service, agent, environment, scope_system, owning_team
        FROM mandate.scopes WHERE domain_id = '550e8400-e29b-41d4-a716-446655440001' ORDER BY scope_id
        """
    ).fetchall()
    assert scopes == [
        ("440002", "config-management", None, None, None, None, "config-team"),
        ("440100", "config-management", "config-writer", "pre-commit-agent", "production", "prod", "config-team"),
        ("440101", "config-management", "db-admin-tool", "pause-escalation-agent", "production", "prod", "dba-team"),
        ("440102", "config-management", "audit-logger", "observe-agent", "production", "prod", "audit-team"),
    ]
    specs = conn.execute(
        "SELECT spec_id, intent, stage::text, allowed_verdicts::text FROM mandate.mandate_specs ORDER BY spec_id"
    ).fetchall()
    every_verdict = "{ALLOW,PAUSE,BLOCK,OBSERVE}"
    assert specs == [
        ("spec-executed-config-update-v1", "config.update", "executed", "{OBSERVE}"),
        ("spec-executed-data-export-v1", "data.export", "executed", "{OBSERVE}"),
        ("spec-executed-user-login-v1", "user.login", "executed", "{OBSERVE}"),
        ("spec-pre-commit-database-drop-table-v1", "database.drop_table", "pre_commit", every_verdict),
        ("spec-pre-commit-file-write-v1", "file.write", "pre_commit", every_verdict),
    ]
    assert conn.execute(
        "SELECT DISTINCT version, status, domain, organization_id::text FROM mandate.mandate_specs"
    ).fetchall() == [("1", "active", "config-management", "550e8400-e29b-41d4-a716-446655440000")]


def test_sample_policies_have_the_legacy_json_shape(legacy_db: psycopg.Connection[Any]) -> None:
    conn = legacy_db
    legacy_data.insert_sample_governance(conn)
    policies = scalar(conn, "SELECT policies FROM mandate.policy_snapshots")

    assert [(p["id"], p["verdict"]) for p in policies] == [
        ("policy-allow-small-files-v1", "ALLOW"),
        ("policy-pause-large-files-v1", "PAUSE"),
        ("policy-block-unbackedup-drops-v1", "BLOCK"),
        ("policy-pause-critical-db-ops-v1", "PAUSE"),
        ("policy-allow-low-risk-drops-v1", "ALLOW"),
        ("policy-observe-user-login-v1", "OBSERVE"),
        ("policy-observe-data-exports-v1", "OBSERVE"),
        ("policy-observe-config-updates-v1", "OBSERVE"),
    ]
    for policy in policies:
        assert set(policy) == {"id", "name", "description", "spec_id", "scope_id", "scope", "conditions", "verdict"}
        assert {"domain", "service", "agent", "environment"} <= set(policy["scope"])
        for condition in policy["conditions"]:
            assert set(condition) == {"field", "operator", "value"}
    # Every policy names an existing spec and an existing scope (by UUID), whose selectors its scope object copies.
    mismatched = conn.execute(
        """
        SELECT p->>'id'
        FROM mandate.policy_snapshots ps, jsonb_array_elements(ps.policies) AS p
        WHERE NOT EXISTS (SELECT 1 FROM mandate.mandate_specs s WHERE s.spec_id = p->>'spec_id')
           OR NOT EXISTS (SELECT 1 FROM mandate.scopes s
                          WHERE s.scope_id::text = p->>'scope_id'
                            AND s.scope_domain = p->'scope'->>'domain'
                            AND s.service = p->'scope'->>'service'
                            AND s.agent = p->'scope'->>'agent')
        """
    ).fetchall()
    assert mismatched == []
    by_scope = conn.execute(
        """
        SELECT right(p->>'scope_id', 6), count(*)
        FROM mandate.policy_snapshots ps, jsonb_array_elements(ps.policies) AS p GROUP BY 1 ORDER BY 1
        """
    ).fetchall()
    assert by_scope == [("440100", 2), ("440101", 3), ("440102", 3)]


# ---------------------------------------------------------------------------------------------------------------
# Generated events
# ---------------------------------------------------------------------------------------------------------------


def test_generate_events_counts(legacy_db: psycopg.Connection[Any]) -> None:
    counts = legacy_data.generate_events(legacy_db, decisions=2000)

    assert counts == GeneratedCounts(
        organizations=3,
        domains=9,
        scopes=180,
        mandate_specs=27,
        policy_snapshots=9,
        decision_events=2000,
        verdict_events=2000,
        audit_timeline_entries=4000,
    )
    assert table_counts(legacy_db) == {
        "organizations": 3,
        "domains": 9,
        "scopes": 180,
        "policy_snapshots": 9,
        "decision_events": 2000,
        "verdict_events": 2000,
        "audit_timeline_entries": 4000,
        "mandate_specs": 27,
    }


def test_generated_organizations_share_domain_names(legacy_db: psycopg.Connection[Any]) -> None:
    legacy_data.generate_events(legacy_db, decisions=10)

    names = legacy_db.execute("SELECT name, count(DISTINCT organization_id) FROM mandate.domains GROUP BY 1 ORDER BY 1")
    assert names.fetchall() == [("customer-support", 3), ("finance", 3), ("hr", 3)]


def test_every_generated_decision_has_one_attributed_verdict_and_two_timeline_entries(
    legacy_db: psycopg.Connection[Any],
) -> None:
    conn = legacy_db
    legacy_data.generate_events(conn, decisions=2000)

    incomplete = conn.execute(
        """
        SELECT e.decision_id
        FROM mandate.decision_events e
        LEFT JOIN mandate.verdict_events v ON v.decision_id = e.decision_id
        LEFT JOIN mandate.scopes s ON s.scope_id = v.scope_id
        LEFT JOIN mandate.domains d ON d.domain_id = e.domain_id
        WHERE v.verdict_id IS NULL
           OR (SELECT count(*) FROM mandate.verdict_events w WHERE w.decision_id = e.decision_id) <> 1
           OR (SELECT count(*) FROM mandate.audit_timeline_entries t WHERE t.decision_id = e.decision_id) <> 2
           OR (SELECT count(*) FROM mandate.audit_timeline_entries t
               WHERE t.decision_id = e.decision_id AND t.details->>'scope_id' = v.scope_id::text) <> 1
           OR v.domain IS DISTINCT FROM d.name
           OR s.scope_domain IS DISTINCT FROM d.name
           OR s.domain_id IS DISTINCT FROM e.domain_id
           OR v.owning_team IS DISTINCT FROM s.owning_team
           OR v.organization_id IS DISTINCT FROM e.organization_id
           OR e.scope->>'service' IS DISTINCT FROM s.service
           OR e.scope->>'agent' IS DISTINCT FROM s.agent
           OR e.spec_id IS NULL
        """
    ).fetchall()
    assert incomplete == []


def test_generated_verdicts_are_those_of_their_snapshot(legacy_db: psycopg.Connection[Any]) -> None:
    conn = legacy_db
    legacy_data.generate_events(conn, decisions=2000)

    # A matched policy is in the verdict's snapshot, bound to the verdict's scope and spec, with its verdict.
    inconsistent = conn.execute(
        """
        SELECT v.verdict_id
        FROM mandate.verdict_events v CROSS JOIN LATERAL unnest(v.matched_policy_ids) AS matched (policy_id)
        WHERE NOT EXISTS (
            SELECT 1 FROM mandate.policy_snapshots s, jsonb_array_elements(s.policies) AS p
            WHERE s.snapshot_id = v.snapshot_id AND p->>'id' = matched.policy_id
              AND p->>'scope_id' = v.scope_id::text AND p->>'spec_id' = v.spec_id
              AND p->>'verdict' = v.verdict::text
              AND EXISTS (SELECT 1 FROM mandate.mandate_specs m
                          WHERE m.spec_id = v.spec_id AND m.domain = v.domain AND v.verdict = ANY (m.allowed_verdicts))
        )
        """
    ).fetchall()
    assert inconsistent == []
    verdicts = dict(conn.execute("SELECT verdict::text, count(*) FROM mandate.verdict_events GROUP BY 1").fetchall())
    assert set(verdicts) == {"ALLOW", "PAUSE", "BLOCK", "OBSERVE"}


def test_generated_context_is_realistically_sized(legacy_db: psycopg.Connection[Any]) -> None:
    legacy_data.generate_events(legacy_db, decisions=500)

    smallest, largest = legacy_db.execute(
        "SELECT min(length(context::text)), max(length(context::text)) FROM mandate.decision_events"
    ).fetchall()[0]
    assert 150 <= smallest <= largest <= 300


def _content_checksums(conn: psycopg.Connection[Any]) -> dict[str, str]:
    checksums = {}
    for table in APPEND_ONLY_TABLES:
        query = sql.SQL("SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM mandate.{} t")
        checksums[table] = scalar(conn, query.format(sql.Identifier(table)).as_string(conn))
    return checksums


def test_generate_events_is_reproducible(pg: LegacyServer, psql_db: str) -> None:
    checksums = []
    for _ in range(2):
        name = pg.create_database(template=psql_db)
        try:
            with pg.connect(name) as conn:
                legacy_data.generate_events(conn, decisions=300, organizations=2, domains_per_org=2)
                checksums.append(_content_checksums(conn))
        finally:
            pg.drop_database(name)
    assert checksums[0] == checksums[1]


def test_generate_events_with_another_seed_adds_disjoint_rows(legacy_db: psycopg.Connection[Any]) -> None:
    first = legacy_data.generate_events(legacy_db, decisions=100, seed=1)
    second = legacy_data.generate_events(legacy_db, decisions=100, seed=2)

    assert table_counts(legacy_db)["decision_events"] == first.decision_events + second.decision_events
    for problem in PROBLEM_QUERIES:
        assert problem_rows(legacy_db, problem) == [], problem


def test_generate_events_rejects_nonsense(legacy_db: psycopg.Connection[Any]) -> None:
    with pytest.raises(ValueError, match="scopes_per_domain must be >= 1"):
        legacy_data.generate_events(legacy_db, decisions=1, scopes_per_domain=0)


# ---------------------------------------------------------------------------------------------------------------
# Clean data versus messy data
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("problem", PROBLEM_QUERIES)
def test_sample_and_generated_data_is_clean(governed_db: psycopg.Connection[Any], problem: str) -> None:
    assert problem_rows(governed_db, problem) == []


@pytest.mark.parametrize("helper", MESSY_HELPERS, ids=lambda helper: helper.__name__)
def test_messy_helper_adds_its_rows_and_exactly_its_problem(
    governed_db: psycopg.Connection[Any], helper: Helper
) -> None:
    conn = governed_db
    before = table_counts(conn)

    inserted = helper(conn)

    after = table_counts(conn)
    added = {table: after[table] - before[table] for table in APPEND_ONLY_TABLES if after[table] != before[table]}
    assert added == dict(inserted)
    shown = {problem: len(problem_rows(conn, problem)) for problem in PROBLEM_QUERIES}
    assert {problem: count for problem, count in shown.items() if count} == MESSY_HELPERS[helper]
    assert scalar(conn, "SHOW session_replication_role") == "origin"
    conn.commit()  # the rows are committable: nothing deferred is left to fail


def test_all_messy_helpers_combine_in_one_database(populated_db: psycopg.Connection[Any]) -> None:
    expected: dict[str, int] = {}
    for problems in MESSY_HELPERS.values():
        for problem, count in problems.items():
            expected[problem] = expected.get(problem, 0) + count
    shown = {problem: len(problem_rows(populated_db, problem)) for problem in PROBLEM_QUERIES}
    assert shown == expected


@pytest.mark.parametrize(
    "helper",
    [
        legacy_data.add_orphaned_domain_refs,
        legacy_data.add_verdicts_missing_scope,
        legacy_data.add_verdicts_missing_decision,
    ],
    ids=lambda helper: helper.__name__,
)
def test_foreign_keys_are_enforced_again_after_a_bypass(governed_db: psycopg.Connection[Any], helper: Helper) -> None:
    conn = governed_db
    helper(conn)

    with pytest.raises(psycopg.errors.ForeignKeyViolation), conn.transaction():
        conn.execute(
            """
            INSERT INTO mandate.decision_events (decision_id, intent, stage, actor, target, timestamp, domain_id)
            VALUES (gen_random_uuid(), 'x', 'executed', 'a', 't', now(), gen_random_uuid())
            """
        )
